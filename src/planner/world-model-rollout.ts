/**
 * The world model's side of planning: a context cache of the observed frames (and language), from
 * which it imagines the futures of candidate action sequences, proposes sequences with its own
 * policy query, and measures imagined frames against a goal in its own representation space
 * (EMA-teacher raw features at the self-distillation block, per token, cosine). The cost that
 * scores the futures is src/planner/cost.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { seededNormal } from '../flow/noise.js';
import { proposeActions } from '../flow/policy-query.js';
import type { Integrator } from '../flow/sampler.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { encodeContext, type ContextCache, type WorldModelConditioning } from '../model/world-model.js';
import type { ActionStats } from '../core/action-stats.js';
import { embedInstruction } from '../data/language-embedding.js';
import { predictedPositions, type Vec3 } from './gripper-position.js';
import type { BatchShare, Futures } from './plan-model.js';

export interface RolloutSettings {
  flowSteps: number;
  integrator: Integrator;
  seed: number;
  /** Action guidance weight (src/flow/imagine.ts); 0 or absent: off. */
  actionGuidance?: number;
}

/** Features of clean frames [M, h, w, 3], each encoded on its own as frame 0: [M, N, D]. */
function frameFeatures(p: Params, cfg: WorldModelConfig, frames: tf.Tensor4D, layer: number, cond: WorldModelConditioning): tf.Tensor3D {
  return tf.tidy(() => {
    const m = frames.shape[0];
    const ctx: ContextCache = encodeContext(
      p,
      cfg,
      frames.expandDims(1) as tf.Tensor5D,
      tf.zeros([m, 0, cfg.actionDim]) as tf.Tensor3D,
      expandCond(cond, m),
      layer,
    );
    const raw = ctx.raw!;
    disposeContext({ ...ctx, raw: undefined });
    return raw.squeeze([1]) as tf.Tensor3D;
  });
}

function expandCond(cond: WorldModelConditioning, n: number): WorldModelConditioning {
  return {
    language: cond.language && cond.language.shape[0] === 1 && n > 1 ? (tf.tile(cond.language, [n, 1]) as tf.Tensor2D) : cond.language,
    y: cond.y,
  };
}

export class WorldModelRollout {
  private ctx?: ContextCache;
  private goalFeatures?: tf.Tensor2D;

  constructor(
    readonly params: Params,
    readonly cfg: WorldModelConfig,
    readonly rollout: RolloutSettings,
    /** Whether goals need the representation features (the preset's representation weight is above 0). */
    readonly representation: boolean,
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
    const seq = frames.expandDims(0) as tf.Tensor5D;
    const actions = tf.zeros([1, k - 1, this.cfg.actionDim]) as tf.Tensor3D;
    this.ctx = contextCache(this.params, this.cfg, seq, actions, this.cond);
    tf.dispose([seq, actions]);
  }

  /** The goal picture [h, w, 3] in [-1, 1]: its representation features, when they are used. */
  setGoal(goal: tf.Tensor3D): void {
    this.goalFeatures?.dispose();
    this.goalFeatures = this.representation
      ? tf.keep(
          frameFeatures(this.params, this.cfg, goal.expandDims(0) as tf.Tensor4D, this.cfg.teacherLayer, this.cond).squeeze([
            0,
          ]) as tf.Tensor2D,
        )
      : undefined;
  }

  /** Policy-query proposals [n, H, A] from the current context. */
  propose(n: number, horizon: number, seed: number): Float32Array {
    if (!this.ctx) throw new Error('WorldModelRollout: no context set');
    const t = proposeActions(this.params, this.cfg, this.ctx, n, horizon, this.cond, this.rollout.flowSteps, seed);
    const out = t.dataSync().slice() as Float32Array;
    t.dispose();
    return out;
  }

  /**
   * Imagined frames [n, H, h, w, 3] of candidates (n x H x A normalised actions) from the context; caller disposes.
   * With a share, candidate i starts from the flow noise of row share.offset + i of the whole batch
   * (the seeded noise is drawn row after row, so its first rows do not depend on the batch size).
   */
  imagineFrames(candidates: Float32Array, n: number, horizon: number, seed = this.rollout.seed, share?: BatchShare): tf.Tensor5D {
    if (!this.ctx) throw new Error('WorldModelRollout: no context set');
    const ctx = this.ctx;
    const offset = share?.offset ?? 0;
    return tf.tidy(() => {
      const actions = tf.tensor3d(candidates.subarray(0, n * horizon * this.cfg.actionDim), [n, horizon, this.cfg.actionDim]);
      const frame = [horizon, this.cfg.imageHeight, this.cfg.imageWidth, 3];
      const noise = offset > 0 ? (seededNormal([offset + n, ...frame], seed).slice([offset], [n]) as tf.Tensor5D) : undefined;
      return imagine(this.params, this.cfg, ctx, actions, this.cond, {
        steps: this.rollout.flowSteps,
        integrator: this.rollout.integrator,
        seed,
        noise,
        actionGuidance: this.rollout.actionGuidance,
      }).frames;
    });
  }

  /** Representation distance (1 - cosine per token, averaged) of imagined frames [n, H, h, w, 3] to the goal: [n, H]. */
  representationDistance(frames: tf.Tensor5D): tf.Tensor2D {
    if (!this.goalFeatures) throw new Error('WorldModelRollout: no goal features (the representation weight is 0)');
    const goalFeatures = this.goalFeatures;
    const [n, horizon] = frames.shape;
    return tf.tidy(() => {
      const feats = frameFeatures(
        this.params,
        this.cfg,
        frames.reshape([n * horizon, this.cfg.imageHeight, this.cfg.imageWidth, 3]) as tf.Tensor4D,
        this.cfg.teacherLayer,
        expandCond(this.cond, n * horizon),
      );
      const dot = tf.sum(tf.mul(feats, goalFeatures.expandDims(0)), -1);
      const norms = tf.mul(tf.norm(feats, 'euclidean', -1), tf.norm(goalFeatures, 'euclidean', -1).expandDims(0));
      return tf.mean(tf.sub(1, tf.div(dot, tf.maximum(norms, 1e-8))), -1).reshape([n, horizon]) as tf.Tensor2D;
    });
  }

  private disposeContext(): void {
    if (this.ctx) disposeContext(this.ctx);
    this.ctx = undefined;
  }

  dispose(): void {
    this.disposeContext();
    this.setLanguage(undefined);
    this.goalFeatures?.dispose();
    this.goalFeatures = undefined;
  }
}

/** The language conditioning [1, languageDim] of an instruction, or none (no instruction, or a model without language). */
export function instructionLanguage(cfg: WorldModelConfig, instruction: string | undefined): tf.Tensor2D | undefined {
  return instruction && cfg.languageDim > 0 ? tf.tensor2d(embedInstruction(instruction), [1, cfg.languageDim]) : undefined;
}

/**
 * The futures of candidates from the context set on `net`, for one plan: imagined frames with the
 * plan's flow-noise seed, kinematic gripper positions from `start`, and the representation
 * distance when the preset uses it. The planner's thread and its scoring workers predict with it.
 */
export function worldModelFutures(net: WorldModelRollout, stats: ActionStats, horizon: number, seed: number, start: Vec3 | undefined) {
  return (c: Float32Array, n: number, share?: BatchShare): Futures => {
    const frames = net.imagineFrames(c, n, horizon, seed, share);
    return {
      frames,
      positions: start ? () => predictedPositions(c, n, horizon, stats, start) : undefined,
      representation: net.representation ? () => net.representationDistance(frames) : undefined,
    };
  };
}
