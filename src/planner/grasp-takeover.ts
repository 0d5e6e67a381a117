/**
 * The action policy takes over after an empty grasp (preset field `policyGrasp.takeover`), judged
 * from the robot's own finger opening alone.
 *
 * Why: when fingers close on nothing (a grasp beside the object, or one that slipped out), the
 * storyboard goes on to its lift, carry and placement pictures with empty fingers, and a restart
 * sends the search back to where the object was, not where it now lies (docs/results.md, items 21
 * and 22). The policy sees the object in the current picture and knows the task from the
 * instruction, so from then on it takes every goal, until it has held something and let it go
 * again (a placement or a released handle), which hands the storyboard back to the search.
 *
 * With `handBack` 'hold' the storyboard goes back to the search as soon as the policy's fingers
 * hold something: a regrasp. The policy then only redoes the grasp, and the search carries the
 * object where the goal pictures say, which the policy cannot tell from a "move X near Y"
 * instruction (its move-near is 33 % alone). A grasp that slips out later takes the same way again,
 * and a regrasp that closes on nothing opens and tries again.
 *
 * The policy learnt from demonstrations whose closed fingers always hold something, so it carries
 * empty shut fingers about as if they held the object: the takeover first opens them (the
 * `reopen` phase, until the opening passes `openAbove`), and only then lets the policy act.
 *
 * Fingers are empty when their opening falls to `emptyBelow` metres or less from above it (fingers
 * already shut when the episode starts do not count). They hold something while it stays between
 * `emptyBelow` and `openAbove`, moving by no more than 0.8 mm a step, for two steps in a row (a
 * closing on nothing passes through that band; fingers on an object stop at its width), and they
 * have let go when it then reaches `openAbove`.
 *
 * `emptyAt` says when empty fingers start a takeover. 'closing' (the default): as soon as they
 * close on nothing. But a push with closed fingers (a drawer shut by its front) also closes them
 * on nothing, on purpose. 'lift': only when the storyboard asks to lift what they should hold (a
 * picture read closed, at least `lift` metres above the gripper, comes while they are empty), or
 * when something slips out of them: they shut after holding, or after they closed fast into the
 * band, stopped on something and slid off its edge for two steps or more (a block taken by its
 * corner). A push comes with no lift, and the policy closes slowly on nothing, so it is left alone.
 */
import type { Goal, Observation } from '../core/types.js';
import { fingerOpening, goalGripperPosition, gripperPosition } from './gripper-position.js';

/** Steps in a row the opening must stay in the holding band, steady, before a hold counts. */
const HELD_STEPS = 2;
/** Metres the opening may move in a step and still count as steady: fingers on an object stop at its width. */
const STEADY = 0.0008;
/** Metres a step's closing into the band must take to count as stopped by something (the policy also closes slowly on nothing). */
const FAST = 0.005;

/** Who acts: the preset's own choice, the policy with the fingers pinned open, or the policy. */
export type TakeoverPhase = 'off' | 'reopen' | 'policy';

/** When the policy hands the storyboard back: once it has let go of what it held, or as soon as it holds something. */
export const HAND_BACKS = ['release', 'hold'] as const;
export type HandBack = (typeof HAND_BACKS)[number];

/** When empty fingers start a takeover: as soon as they close on nothing, or at a lift (or a slip). */
export const EMPTY_ATS = ['closing', 'lift'] as const;
export type EmptyAt = (typeof EMPTY_ATS)[number];

/** Preset section `policyGrasp.takeover`. */
export interface TakeoverSettings {
  /** Finger opening (m) at or below which the fingers are empty. */
  emptyBelow: number;
  /** Finger opening (m) above which they are open: the reopening's target, and a release. */
  openAbove: number;
  /** 'release' (default): the search takes the storyboard back once the policy has held something and let go; 'hold': as soon as it holds. */
  handBack?: HandBack;
  /** 'closing' (default): empty fingers start a takeover as soon as they close on nothing; 'lift': at a lift picture, or a slip. */
  emptyAt?: EmptyAt;
}

export interface TakeoverOptions extends TakeoverSettings {
  /** With emptyAt 'lift': metres a closed picture must lie above the gripper to be a lift (the preset's policyGrasp.drop). */
  lift: number;
}

export class GraspTakeover {
  private phase: TakeoverPhase = 'off';
  /** Steps in a row the fingers have stayed steady in the holding band (counted afresh when a takeover starts). */
  private held = 0;
  /** Whether the last opening was empty (unknown before the first): only a change to empty counts. */
  private wasEmpty: boolean | undefined;
  /** The goal of the last update: a lift is judged when its picture first comes. */
  private lastGoal: Goal | undefined;
  /** The opening at the last update. */
  private lastOpening: number | undefined;
  /** Steps in the band since the fingers closed fast into it and stopped there: on something, maybe sliding off it. */
  private touched = 0;

  constructor(readonly o: TakeoverOptions) {}

  /** After each step's observation, with the (read) goal the plan is for: who acts next. */
  update(obs: Observation, goal?: Goal): TakeoverPhase {
    const f = fingerOpening(obs);
    const newGoal = goal !== this.lastGoal;
    this.lastGoal = goal;
    if (f === undefined) return this.phase;
    const { emptyBelow, openAbove } = this.o;
    const empty = f <= emptyBelow;
    const inBand = !empty && f < openAbove;
    const last = this.lastOpening;
    const holding = inBand && last !== undefined && Math.abs(f - last) <= STEADY;
    const touched = this.touched;
    this.touched = !inBand ? 0 : touched > 0 ? touched + 1 : last !== undefined && last - f >= FAST ? 1 : 0;
    this.lastOpening = f;
    if (this.phase === 'off') {
      const closed = empty && this.wasEmpty === false;
      const slipped = closed && (this.held >= HELD_STEPS || touched >= HELD_STEPS);
      const lift = empty && this.wasEmpty !== undefined && newGoal && this.isLift(obs, goal);
      const start = (this.o.emptyAt ?? 'closing') === 'closing' ? closed : slipped || lift;
      this.held = holding ? this.held + 1 : 0;
      if (start) {
        this.phase = 'reopen';
        this.held = 0;
      }
    } else if (this.phase === 'reopen') {
      if (f >= openAbove) this.phase = 'policy';
    } else if (empty) {
      // A regrasp that closed on nothing again opens and tries again; the policy would carry empty shut fingers.
      if (this.o.handBack === 'hold' && this.wasEmpty === false) this.phase = 'reopen';
      this.held = 0;
    } else if (holding) {
      if (++this.held >= HELD_STEPS && this.o.handBack === 'hold') this.phase = 'off';
    } else if (inBand) {
      if (this.held < HELD_STEPS) this.held = 0; // still closing (or opening): not a hold yet
    } else if (this.held >= HELD_STEPS) this.phase = 'off';
    else this.held = 0;
    // Fingers shut from the first step stay unknown until they first open: they never count as empty fingers.
    this.wasEmpty = this.wasEmpty === undefined && empty ? undefined : empty;
    return this.phase;
  }

  /** A picture read closed, at least `lift` above the gripper. */
  private isLift(obs: Observation, goal: Goal | undefined): boolean {
    const at = gripperPosition(obs);
    const to = goal && goalGripperPosition(goal);
    return goal?.gripper === 'closed' && !!at && !!to && to[2] - at[2] >= this.o.lift;
  }

  reset(): void {
    this.phase = 'off';
    this.held = 0;
    this.wasEmpty = undefined;
    this.lastGoal = undefined;
    this.lastOpening = undefined;
    this.touched = 0;
  }
}
