/**
 * Hands the planner one goal picture at a time from a storyboard of subgoals (src/sim/goals.ts),
 * as an operator would: the next picture once the robot's camera looks like the current one, and
 * the first picture of the next stage as soon as the robot reports a stage done.
 *
 * "Looks like" is judged by an image distance d (the share of pixels that differ): the current
 * subgoal k counts as reached when d(obs, g_k) <= reachRatio * d(g_{k-1}, g_k), i.e. most of what
 * separated it from the previous picture is gone. (A test "as close to g_{k+1} as g_k is" was
 * dropped: while the moving part overlaps neither picture every distance is the same, so it fired
 * at once.) A subgoal that is not reached within its patience (a multiple of the expert's own steps) is
 * passed over; the last subgoal of a stage that runs out of patience restarts the stage's
 * storyboard, since the stage is not done.
 *
 * With `pose` set, a subgoal also counts as reached once the robot's reported gripper (its
 * proprioception) is within `pose` metres of the picture's (or the picture's own tolerance, if
 * tighter: the demonstrator came down onto a knob more precisely than it moved above it) and its
 * fingers within `finger` metres of the picture's opening: from one camera a gripper at the goal
 * can still look unlike it, and every picture the looks test misses waits out its patience.
 */
import type { Subgoal } from '../sim/goals.js';
import { distance, fingerOpening, gripperPosition } from './gripper-position.js';
import type { Observation } from '../core/types.js';

export interface GoalSequenceOptions {
  reachRatio: number;
  /** Patience per subgoal: max(minPatience, patienceFactor x the expert's steps to it). */
  patienceFactor: number;
  minPatience: number;
  /** Gripper handover (metres; off when absent): position and finger-opening tolerances. */
  pose?: PoseHandover;
  /**
   * Where the handover finds a picture's gripper: absent, the position and opening recorded with
   * it (and the recorded tolerance of its phase); given, what this reads off the picture alone.
   */
  readPicture?: (picture: Observation) => Observation;
}

export interface PoseHandover {
  pose: number;
  finger: number;
}

/** Whether `obs` holds the gripper where `goal` has it, fingers included; false when either lacks proprioception. */
export function gripperAt(obs: Observation, goal: Observation, tol: PoseHandover): boolean {
  const p = gripperPosition(obs);
  const q = gripperPosition(goal);
  const f = fingerOpening(obs);
  const g = fingerOpening(goal);
  if (!p || !q || f === undefined || g === undefined) return false;
  return distance(p, q) <= tol.pose && Math.abs(f - g) <= tol.finger;
}

export const DEFAULT_GOAL_SEQUENCE: GoalSequenceOptions = { reachRatio: 0.3, patienceFactor: 2, minPatience: 6 };

export type ImageDistance = (a: Observation, b: Observation) => number;

export type GoalEvent = { kind: 'reached' | 'passed' | 'restarted' | 'stage'; from: number; to: number };

export class GoalSequence {
  private k = 0;
  private steps = 0;
  /** d(g_{k-1}, g_k): how far the current subgoal is from where it starts. */
  private span: number;

  constructor(
    private board: Subgoal[],
    private readonly distance: ImageDistance,
    start: Observation,
    private readonly o: GoalSequenceOptions = DEFAULT_GOAL_SEQUENCE,
  ) {
    if (!board.length) throw new Error('goal sequence: no subgoals');
    this.span = distance(start, board[0]!.observation);
  }

  get subgoals(): readonly Subgoal[] {
    return this.board;
  }

  /**
   * Replaces the pictures of stage `stage` and later with `later` (a storyboard redone from the
   * scene as it now is); call before the `update` that reports the stage.
   */
  restage(stage: number, later: Subgoal[]): void {
    if (!later.length || later.some((g) => g.stage < stage))
      throw new Error(`goal sequence: a restaged storyboard must hold pictures of stage ${stage} and later only`);
    if (this.board[this.k]!.stage >= stage)
      throw new Error(`goal sequence: restage stage ${stage} before the current picture's stage is done`);
    this.board = [...this.board.filter((g) => g.stage < stage), ...later];
  }

  get index(): number {
    return this.k;
  }

  get current(): Subgoal {
    return this.board[this.k]!;
  }

  private go(to: number, from: Observation): void {
    this.k = to;
    this.steps = 0;
    this.span = this.distance(from, this.board[to]!.observation);
  }

  /** After each executed step: the new observation and how many stages the robot reports done. */
  update(obs: Observation, stagesDone: number): GoalEvent | undefined {
    const from = this.k;
    const g = this.board;
    if (stagesDone > g[this.k]!.stage) {
      const next = g.findIndex((s) => s.stage >= stagesDone);
      if (next < 0) return undefined; // every stage done: nothing left to show
      this.go(next, obs);
      return { kind: 'stage', from, to: next };
    }
    this.steps++;
    const sameStageNext = this.k + 1 < g.length && g[this.k + 1]!.stage === g[this.k]!.stage;
    if (sameStageNext) {
      const goal = g[this.k]!.observation;
      const read = this.o.readPicture;
      const pose = this.o.pose && {
        ...this.o.pose,
        pose: Math.min(this.o.pose.pose, read ? Infinity : (g[this.k]!.tolerance ?? Infinity)),
      };
      if (this.distance(obs, goal) <= this.o.reachRatio * this.span || (pose && gripperAt(obs, read ? read(goal) : goal, pose))) {
        this.go(this.k + 1, g[this.k]!.observation);
        return { kind: 'reached', from, to: this.k };
      }
    }
    if (this.steps > Math.max(this.o.minPatience, this.o.patienceFactor * g[this.k]!.expertSteps)) {
      if (sameStageNext) {
        this.go(this.k + 1, obs);
        return { kind: 'passed', from, to: this.k };
      }
      const first = g.findIndex((s) => s.stage === g[this.k]!.stage);
      this.go(first, obs);
      return { kind: 'restarted', from, to: first };
    }
    return undefined;
  }
}
