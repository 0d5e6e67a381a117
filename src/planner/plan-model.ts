/**
 * The seam of the optimising planner (src/planner/optimizing-planner.ts), in types only:
 *
 * - a PlanModel predicts the futures of candidate action sequences from one observation and
 *   goal (the world model imagines frames, the simulator oracle renders them);
 * - the cost (src/planner/cost.ts) scores those futures against the goal with a preset's weights;
 * - together they make the per-plan PlanCost the optimiser searches with.
 *
 * Candidate sequences are n x H x A normalised actions in [-1, 1] (src/planner/sequence.ts).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';
import type { ProposalSource, SequenceCost } from './sequence.js';
import type { Goal, Observation } from '../core/types.js';

/** A preset's cost weights (section `cost`). */
export interface CostWeights {
  /** Representation-space distance (1 - cosine of teacher features), per token; only a model with features of its own has it. */
  representation: number;
  /** Pixel MSE in [-1, 1] units. */
  pixel: number;
  /** Multi-scale pixel MSE (src/planner/image-distance.ts): keeps a gradient while parts do not overlap yet. */
  pyramid: number;
  /** Change-map distance to the goal relative to the current frame (src/planner/image-distance.ts): contrast-free. */
  change: number;
  /** Distance between the centres of the candidate's and the goal's change maps (src/planner/image-distance.ts): pulls towards far goals. */
  reach: number;
  /** Metres from the candidate's gripper to the goal picture's, when the goal carries it (src/planner/gripper-position.ts). */
  pose: number;
  /** Mean squared normalised action. */
  actionMagnitude: number;
  /** 1 = only the last predicted step counts; 0 = every step equally. */
  terminal: number;
}

/** What a model predicts for n candidates of horizon H. */
export interface Futures {
  /** Frames [n, H, h, w, 3] in [-1, 1] at the model's resolution. */
  frames: tf.Tensor5D;
  /** Gripper positions, n x H x 3 (metres), when the model can tell them; asked for only when the pose term counts. */
  positions?: () => Float64Array | undefined;
  /** The model's own representation distance to the goal per step [n, H]; asked for only when its weight counts. */
  representation?: () => tf.Tensor2D;
}

/**
 * Which rows of an iteration's batch one call predicts: rows offset .. offset + n - 1 of `total`.
 * A model that samples (the world model's flow noise) gives each row the noise of its index in the
 * whole batch, so a batch split into shares (src/planner/parallel-scorer.ts) predicts what the whole batch would.
 */
export interface BatchShare {
  offset: number;
  total: number;
}

/** One plan's view of a model: its context set from one observation and goal. */
export interface Rollout {
  /** Futures of n candidates (n x horizon x A normalised), by default rows 0 .. n - 1 of the batch; called inside a tf.tidy, which frees its tensors. */
  predict(candidates: Float32Array, n: number, share?: BatchShare): Futures;
  /** Candidate sequences from the model's own policy, mixed in at the preset's proposal fraction. */
  proposals?: ProposalSource;
  /** Frames predicted for the chosen sequence (RGB uint8, h x w x 3 each), attached to the plan. */
  imagine?(best: Float32Array): Uint8Array[];
  /** Frees what this plan's context holds. */
  dispose(): void;
}

export interface PlanModel {
  /** Resolution of the predicted frames; the cost compares the goal and the current frame at it. */
  readonly imageHeight: number;
  readonly imageWidth: number;
  /** Sets the context for one plan of `horizon` steps. `rng` is the planner's stream: a model may draw its rollout seed from it. */
  rollout(obs: Observation, goal: Goal, horizon: number, rng: Rng): Rollout;
}

/** One plan's cost, made for one (observation, goal) by a CostFactory and disposed after the plan. */
export interface PlanCost {
  /** Batched cost of candidate sequences (n x H x A, normalised actions). */
  cost: SequenceCost;
  /** Candidate sequences from the model's own policy query, mixed in at the preset's fraction. */
  proposals?: ProposalSource;
  /** Frames imagined for the chosen sequence (RGB uint8, h x w x 3 each), attached to the plan. */
  imagine?: (best: Float32Array) => Promise<Uint8Array[]>;
  /** Frees what the cost holds (tensors, caches). Called once per plan, after the optimiser has stopped. */
  dispose(): void;
}

/** Makes the cost of one plan; `rng` is the planner's random stream (see PlanModel.rollout). */
export type CostFactory = (obs: Observation, goal: Goal, rng: Rng) => PlanCost | Promise<PlanCost>;

/** A normalised value for one action dimension, applied to every step of every candidate. */
export interface PinnedDim {
  index: number;
  value: number;
}

/** What a preset takes out of the search for one (observation, goal) (src/planner/pinned-actions.ts). */
export interface PlanConstraints {
  /** Action dimensions held at fixed values in every candidate. */
  pinned?: readonly PinnedDim[];
  /** Applied to every candidate after the pins, before scoring (e.g. a speed limit). */
  constrain?: (seqs: Float32Array) => void;
  /** One sequence (H x A) scored in the first iteration (e.g. the straight move to the goal's gripper position). */
  include?: Float32Array;
}
