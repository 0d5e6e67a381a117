/**
 * The messages between the planner's thread and its scoring workers (src/planner/score-worker.ts,
 * src/planner/parallel-scorer.ts). A worker holds its own copy of the world model; per plan it is
 * sent the plan's context, then per optimiser iteration a share of the candidates to score.
 *
 * planner -> worker:
 *   { type: 'context', context }                    the context of plan `context.plan`
 *   { type: 'score', id, plan, candidates, n, share } score n candidates, rows share.offset.. of the batch
 * worker -> planner:
 *   { type: 'ready' }                               once, after loading
 *   { type: 'fatal', message }                      loading failed; the worker exits
 *   { type: 'costs', id, costs }                    the answer to `score` request `id`
 *   { type: 'error', id, message }
 */
import type { Goal, Observation } from '../core/types.js';
import type { BatchShare, CostWeights } from './plan-model.js';
import type { Integrator } from '../flow/sampler.js';

/** What a worker loads once: the run's weights and the rollout settings of the preset. */
export interface ScoreWorkerData {
  checkpoint: string;
  backend?: string;
  flowSteps: number;
  integrator: Integrator;
  /** Action guidance weight of the preset's rollout (src/flow/imagine.ts). */
  actionGuidance?: number;
  /** Whether goals need the representation features (the preset's representation weight is above 0). */
  representation: boolean;
}

/** The world model's context of one plan, as the planner's own model has it. */
export interface SharedContext {
  /** Context frames K x h x w x 3 in [-1, 1] at the model's resolution, oldest first. */
  frames: Float32Array;
  contextFrames: number;
  instruction?: string;
  /** Changes whenever the goal or the instruction does: the worker re-encodes the goal's features then. */
  goalKey: number;
  /** The observation planned from (the cost's current frame and the gripper's start position). */
  obs: Observation;
  goal: Goal;
  /** The flow-noise seed of this plan. */
  seed: number;
  horizon: number;
}

export interface ScoringContext extends SharedContext {
  plan: number;
  weights: CostWeights;
}

export type ToScoreWorker =
  | { type: 'context'; context: ScoringContext }
  | { type: 'score'; id: number; plan: number; candidates: Float32Array; n: number; share: BatchShare };

export type FromScoreWorker =
  | { type: 'ready' }
  | { type: 'fatal'; message: string }
  | { type: 'costs'; id: number; costs: Float32Array }
  | { type: 'error'; id: number; message: string };
