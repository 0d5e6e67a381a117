/**
 * Scores candidate action sequences by imagining their futures with the world model and
 * comparing them with a goal image: (a) in the model's own representation space (EMA-teacher
 * raw features at the self-distillation block, per token, cosine), (b) in pixel space (MSE),
 * plus an action-magnitude term; per-step costs are mixed between terminal and accumulated.
 */
import * as tf from '@tensorflow/tfjs';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { proposeActions } from '../flow/policy-query.js';
import type { Integrator } from '../flow/sampler.js';
import type { WorldModelConfig } from '../model/config.js';
import type { Params } from '../model/layers.js';
import { encodeContext, type ContextCache, type WorldModelConditioning } from '../model/world-model.js';
import { changeDistance, pyramidDistance, reachDistance } from './image-distance.js';

export interface CostWeights {
  /** Representation-space distance (1 - cosine of teacher features), per token. */
  representation: number;
  /** Pixel MSE in [-1, 1] units. */
  pixel: number;
  /** Multi-scale pixel MSE (src/planner/image-distance.ts): keeps a gradient while parts do not overlap yet. */
  pyramid: number;
  /** Change-map distance to the goal relative to the current frame (src/planner/image-distance.ts): contrast-free. */
  change: number;
  /** Distance between the centres of the candidate's and the goal's change maps (src/planner/image-distance.ts): pulls towards far goals. */
  reach: number;
  /** Metres from the candidate's gripper to the goal picture's, when the goal carries it (src/planner/gripper-position.ts); not imagined, so the scorer leaves it to the planner. */
  pose: number;
  /** Mean squared normalised action. */
  actionMagnitude: number;
  /** 1 = only the last imagined frame counts; 0 = every frame equally. */
  terminal: number;
}

export interface RolloutSettings {
  flowSteps: number;
  integrator: Integrator;
  seed: number;
}

export interface ScoreResult {
  costs: Float32Array;
  /** Imagined frames of every candidate [N, H, h, w, 3] when kept (for display); caller disposes. */
  frames?: tf.Tensor5D;
}

/** Features of clean frames [M, h, w, 3], each encoded on its own as frame 0: [M, N, D]. */
function frameFeatures(p: Params, cfg: WorldModelConfig, frames: tf.Tensor4D, layer: number, cond: WorldModelConditioning): tf.Tensor3D {
  return tf.tidy(() => {
    const m = frames.shape[0];
    const ctx: ContextCache = encodeContext(p, cfg, frames.expandDims(1) as tf.Tensor5D, tf.zeros([m, 0, cfg.actionDim]) as tf.Tensor3D, expandCond(cond, m), layer);
    const raw = ctx.raw!;
    disposeContext({ ...ctx, raw: undefined });
    return raw.squeeze([1]) as tf.Tensor3D;
  });
}

function expandCond(cond: WorldModelConditioning, n: number): WorldModelConditioning {
  return { language: cond.language && cond.language.shape[0] === 1 && n > 1 ? (tf.tile(cond.language, [n, 1]) as tf.Tensor2D) : cond.language, y: cond.y };
}

/** Per-step cost weights: the terminal fraction on the last step, the rest spread evenly. */
export function stepWeights(horizon: number, terminal: number): number[] {
  return Array.from({ length: horizon }, (_, j) => (1 - terminal) / horizon + (j === horizon - 1 ? terminal : 0));
}

export class WorldModelScorer {
  private ctx?: ContextCache;
  /** The newest context frame (what change maps are relative to). */
  private currentFrame?: tf.Tensor3D;
  private goalImage?: tf.Tensor3D;
  private goalFeatures?: tf.Tensor2D;

  constructor(
    readonly params: Params,
    readonly cfg: WorldModelConfig,
    readonly weights: CostWeights,
    readonly rollout: RolloutSettings,
    private cond: WorldModelConditioning = {},
  ) {}

  /** Language conditioning [1, languageDim] (or none); takes effect from the next setContext. */
  setLanguage(language: tf.Tensor2D | undefined): void {
    this.cond.language?.dispose();
    this.cond = { ...this.cond, language: language ? tf.keep(language) : undefined };
  }

  /** Context frames [K, h, w, 3] (oldest first) in [-1, 1]; the cache is reused until the next call. */
  setContext(frames: tf.Tensor4D): void {
    this.disposeContext();
    const k = frames.shape[0];
    this.currentFrame = tf.keep(frames.slice([k - 1, 0, 0, 0], [1, -1, -1, -1]).squeeze([0]) as tf.Tensor3D);
    const seq = frames.expandDims(0) as tf.Tensor5D;
    const actions = tf.zeros([1, k - 1, this.cfg.actionDim]) as tf.Tensor3D;
    this.ctx = contextCache(this.params, this.cfg, seq, actions, this.cond);
    tf.dispose([seq, actions]);
  }

  setGoal(goal: tf.Tensor3D): void {
    this.goalImage?.dispose();
    this.goalFeatures?.dispose();
    this.goalImage = tf.keep(goal.clone());
    this.goalFeatures = this.weights.representation > 0 ? tf.keep(frameFeatures(this.params, this.cfg, goal.expandDims(0) as tf.Tensor4D, this.cfg.teacherLayer, this.cond).squeeze([0]) as tf.Tensor2D) : undefined;
  }

  get ready(): boolean {
    return Boolean(this.ctx && this.goalImage);
  }

  /** Policy-query proposals [n, H, A] from the current context. */
  propose(n: number, horizon: number, seed: number): Float32Array {
    if (!this.ctx) throw new Error('WorldModelScorer: no context set');
    const t = proposeActions(this.params, this.cfg, this.ctx, n, horizon, this.cond, this.rollout.flowSteps, seed);
    const out = t.dataSync().slice() as Float32Array;
    t.dispose();
    return out;
  }

  /** Imagined frames [n, H, h, w, 3] of candidates (n x H x A normalised actions) from the context; caller disposes. */
  imagineFrames(candidates: Float32Array, n: number, horizon: number, seed = this.rollout.seed): tf.Tensor5D {
    if (!this.ctx) throw new Error('WorldModelScorer: no context set');
    const ctx = this.ctx;
    return tf.tidy(() => {
      const actions = tf.tensor3d(candidates.subarray(0, n * horizon * this.cfg.actionDim), [n, horizon, this.cfg.actionDim]);
      return imagine(this.params, this.cfg, ctx, actions, this.cond, { steps: this.rollout.flowSteps, integrator: this.rollout.integrator, seed }).frames;
    });
  }

  /** candidates: n x H x A normalised actions. */
  score(candidates: Float32Array, n: number, horizon: number, keepFrames = false, seed = this.rollout.seed): ScoreResult {
    if (!this.ctx || !this.goalImage) throw new Error('WorldModelScorer: context and goal must be set before scoring');
    const goalImage = this.goalImage;
    const goalFeatures = this.goalFeatures;
    let frames: tf.Tensor5D | undefined;
    const costs = tf.tidy(() => {
      const actions = tf.tensor3d(candidates.subarray(0, n * horizon * this.cfg.actionDim), [n, horizon, this.cfg.actionDim]);
      const img = this.imagineFrames(candidates, n, horizon, seed);
      const w = this.weights;
      const stepW = tf.tensor1d(stepWeights(horizon, w.terminal));
      let perStep = tf.zeros([n, horizon]);
      if (w.pixel > 0) perStep = tf.add(perStep, tf.mul(w.pixel, tf.mean(tf.square(tf.sub(img, goalImage)), [2, 3, 4])));
      const flat = img.reshape([n * horizon, this.cfg.imageHeight, this.cfg.imageWidth, 3]) as tf.Tensor4D;
      if (w.pyramid > 0) perStep = tf.add(perStep, tf.mul(w.pyramid, pyramidDistance(flat, goalImage).reshape([n, horizon])));
      if (w.change > 0) perStep = tf.add(perStep, tf.mul(w.change, changeDistance(flat, this.currentFrame!, goalImage).reshape([n, horizon])));
      if (w.reach > 0) perStep = tf.add(perStep, tf.mul(w.reach, reachDistance(flat, this.currentFrame!, goalImage).reshape([n, horizon])));
      if (w.representation > 0 && goalFeatures) {
        const feats = frameFeatures(this.params, this.cfg, img.reshape([n * horizon, this.cfg.imageHeight, this.cfg.imageWidth, 3]) as tf.Tensor4D, this.cfg.teacherLayer, expandCond(this.cond, n * horizon));
        const dot = tf.sum(tf.mul(feats, goalFeatures.expandDims(0)), -1);
        const norms = tf.mul(tf.norm(feats, 'euclidean', -1), tf.norm(goalFeatures, 'euclidean', -1).expandDims(0));
        const dist = tf.mean(tf.sub(1, tf.div(dot, tf.maximum(norms, 1e-8))), -1).reshape([n, horizon]);
        perStep = tf.add(perStep, tf.mul(w.representation, dist));
      }
      let total = tf.sum(tf.mul(perStep, stepW), -1);
      if (w.actionMagnitude > 0) total = tf.add(total, tf.mul(w.actionMagnitude, tf.mean(tf.square(actions), [1, 2])));
      if (keepFrames) frames = tf.keep(img);
      return total;
    });
    const out = costs.dataSync().slice() as Float32Array;
    costs.dispose();
    return { costs: out, frames };
  }

  private disposeContext(): void {
    if (this.ctx) disposeContext(this.ctx);
    this.ctx = undefined;
    this.currentFrame?.dispose();
    this.currentFrame = undefined;
  }

  dispose(): void {
    this.disposeContext();
    this.setLanguage(undefined);
    this.goalImage?.dispose();
    this.goalFeatures?.dispose();
    this.goalImage = undefined;
    this.goalFeatures = undefined;
  }
}
