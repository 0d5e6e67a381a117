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
 * The policy learnt from demonstrations whose closed fingers always hold something, so it carries
 * empty shut fingers about as if they held the object: the takeover first opens them (the
 * `reopen` phase, until the opening passes `openAbove`), and only then lets the policy act.
 *
 * Fingers are empty when their opening falls to `emptyBelow` metres or less from above it (fingers
 * already shut when the episode starts do not count). They hold something while it stays between
 * `emptyBelow` and `openAbove` for two steps in a row (a closing on nothing passes through that
 * band in one step), and they have let go when it then reaches `openAbove`.
 */
import type { Observation } from '../core/types.js';
import { fingerOpening } from './gripper-position.js';

/** Steps in a row the opening must stay in the holding band before a hold counts. */
const HELD_STEPS = 2;

/** Who acts: the preset's own choice, the policy with the fingers pinned open, or the policy. */
export type TakeoverPhase = 'off' | 'reopen' | 'policy';

export class GraspTakeover {
  private phase: TakeoverPhase = 'off';
  private held = 0;
  /** Whether the last opening was empty (unknown before the first): only a change to empty counts. */
  private wasEmpty: boolean | undefined;

  constructor(
    readonly emptyBelow: number,
    readonly openAbove: number,
  ) {}

  /** After each step's observation: who acts next. */
  update(obs: Observation): TakeoverPhase {
    const f = fingerOpening(obs);
    if (f === undefined) return this.phase;
    const empty = f <= this.emptyBelow;
    if (this.phase === 'off') {
      if (empty && this.wasEmpty === false) {
        this.phase = 'reopen';
        this.held = 0;
      }
    } else if (this.phase === 'reopen') {
      if (f >= this.openAbove) this.phase = 'policy';
    } else if (empty) this.held = 0;
    else if (f < this.openAbove) this.held++;
    else if (this.held >= HELD_STEPS) this.phase = 'off';
    else this.held = 0;
    this.wasEmpty = empty;
    return this.phase;
  }

  reset(): void {
    this.phase = 'off';
    this.held = 0;
    this.wasEmpty = undefined;
  }
}
