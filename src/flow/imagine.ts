/**
 * Imagination: sample future frames for a batch of candidate action sequences from the world
 * model, given clean context frames. The context is encoded once (key/value cache) and shared
 * by every candidate and every flow step; only the future tokens are recomputed.
 */
import * as tf from '@tensorflow/tfjs';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { disposeContext, encodeContext, forwardWithContext, type ContextCache, type WorldModelConditioning } from '../model/world-model.js';
import { seededNormal } from './noise.js';
import { integrate, type Integrator } from './sampler.js';

/** Fixed noise for the unknown actions of action guidance: the same for every plan, so scores stay comparable. */
const UNKNOWN_ACTION_SEED = 7919;

export interface ImagineOptions {
  steps: number;
  integrator: Integrator;
  /** Raw features at this block for the final clean frames (representation-space costs). */
  featureLayer?: number;
  /** Initial noise [N, H, h, w, 3]; default standard normal seeded with `seed` (src/flow/noise.ts). */
  noise?: tf.Tensor5D;
  seed?: number;
  /**
   * Action guidance w (0: off). Each velocity becomes v(a) + w (v(a) - v(?)), where v(?) is the
   * prediction with the actions unknown: action tokens of pure noise at action time 1, as in the
   * joint video-action samples of training, where the future actions are noised with the frames.
   * At the first step (frames at time 1) v(?) is the action-blind prediction, so w > 0 pushes the
   * future away from "what usually happens here" and towards what this action does.
   */
  actionGuidance?: number;
}

export interface Imagined {
  /** [N, H, h, w, 3] in [-1, 1] (clipped). */
  frames: tf.Tensor5D;
  /** [N, H, tokens, D] raw features of the imagined frames at featureLayer, when asked for. */
  features?: tf.Tensor4D;
}

/** Encodes context frames [1 or N, K, h, w, 3] and the K-1 actions between them. Free with disposeContext. */
export function contextCache(
  p: Params,
  cfg: WorldModelConfig,
  frames: tf.Tensor5D,
  actions: tf.Tensor3D,
  cond: WorldModelConditioning = {},
  featureLayer?: number,
): ContextCache {
  return encodeContext(p, cfg, frames, actions, cond, featureLayer);
}

/**
 * @param actions [N, H, A]: actions[:, j] leads from frame K-1+j to K+j (normalised).
 * Returns tensors owned by the caller.
 */
export function imagine(
  p: Params,
  cfg: WorldModelConfig,
  ctx: ContextCache,
  actions: tf.Tensor3D,
  cond: WorldModelConditioning,
  o: ImagineOptions,
): Imagined {
  return tf.tidy(() => {
    const [n, h] = actions.shape;
    const shape: [number, number, number, number, number] = [n, h, cfg.imageHeight, cfg.imageWidth, 3];
    const x1 = o.noise ?? (seededNormal(shape, o.seed) as tf.Tensor5D);
    const actionT = tf.zeros([n, h]) as tf.Tensor2D;
    const w = o.actionGuidance ?? 0;
    // One draw of unknown actions (at action time 1) shared by every candidate, so all are guided away from the same blind prediction.
    const unknown =
      w !== 0
        ? {
            actions: tf.tile(seededNormal([1, h, actions.shape[2]], UNKNOWN_ACTION_SEED), [n, 1, 1]) as tf.Tensor3D,
            actionT: tf.ones([n, h]) as tf.Tensor2D,
          }
        : undefined;
    const forward = (x: tf.Tensor, t: number, a: tf.Tensor3D, aT: tf.Tensor2D) =>
      forwardWithContext(p, cfg, ctx, { frames: x as tf.Tensor5D, frameT: tf.fill([n, h], t), actions: a, actionT: aT }, cond)
        .frameVelocity;
    const velocity = (x: tf.Tensor, t: number) => {
      const v = forward(x, t, actions, actionT);
      if (!unknown) return v;
      const blind = forward(x, t, unknown.actions, unknown.actionT);
      return tf.add(v, tf.mul(w, tf.sub(v, blind)));
    };
    const frames = tf.clipByValue(integrate(velocity, x1, o.steps, o.integrator), -1, 1) as tf.Tensor5D;
    let features: tf.Tensor4D | undefined;
    if (o.featureLayer) {
      features = forwardWithContext(p, cfg, ctx, { frames, frameT: tf.zeros([n, h]), actions, actionT }, cond, {
        rawLayer: o.featureLayer,
      }).raw;
    }
    return features ? { frames, features } : { frames };
  }) as Imagined;
}

export { disposeContext };
