import type { Rt1Action } from './action.js';

/** One camera frame (and optional proprioception) as the planner receives it. */
export interface Observation {
  /** RGB, row-major height x width x 3, 0..255. */
  image: Uint8Array;
  height: number;
  width: number;
  proprio?: Float32Array;
  /** Capture time, milliseconds (epoch or monotonic; consistent within a stream). */
  stamp: number;
}

/** A goal: one or more goal images (the last is the final goal). */
export interface Goal {
  images: Observation[];
  instruction?: string;
  /** Whether the gripper is open or closed in the (last) goal picture, when the goal giver knows it. */
  gripper?: 'open' | 'closed';
}

export interface Plan {
  /** The action chunk to execute, first action first. */
  actions: Rt1Action[];
  cost: number;
  iterations: number;
  candidatesEvaluated: number;
  latencyMs: number;
  /** Stamp of the observation the plan was made from. */
  observationStamp: number;
  /** True when this is the safe action emitted for a missed deadline or an error. */
  safe: boolean;
  /** Why a safe action was emitted. */
  reason?: string;
  /** The chosen sequence in normalised action space (horizon x action dim, [-1, 1]); the next plan's warm start. */
  sequence?: Float32Array;
  /** Imagined frames for the chosen plan, RGB uint8 each (height x width x 3). */
  imagined?: Uint8Array[];
}

/**
 * A planner in RxJS form: plans from the latest observation only and the latest goal.
 * Every robot link and the evaluation drive one of these.
 */
export type Planner = (
  observations$: import('rxjs').Observable<Observation>,
  goals$: import('rxjs').Observable<Goal>,
) => import('rxjs').Observable<Plan>;
