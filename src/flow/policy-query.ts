/**
 * The policy query (joint video-action mode): future frames and the actions leading into them
 * are both noised and integrated together, so the model proposes action sequences it
 * believes lead somewhere, conditioned on the context. The planner mixes these proposals
 * with Gaussian samples.
 */
import * as tf from '@tensorflow/tfjs';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { forwardWithContext, type ContextCache, type WorldModelConditioning } from '../model/world-model.js';
import { seededNormal } from './noise.js';
import { timeGrid } from './sampler.js';

/** Samples `n` action sequences of length `horizon` (normalised, clipped to [-1, 1]) with Euler steps. */
export function proposeActions(
  p: Params,
  cfg: WorldModelConfig,
  ctx: ContextCache,
  n: number,
  horizon: number,
  cond: WorldModelConditioning,
  steps: number,
  seed?: number,
): tf.Tensor3D {
  return tf.tidy(() => {
    let frames = seededNormal([n, horizon, cfg.imageHeight, cfg.imageWidth, 3], seed) as tf.Tensor5D;
    let actions = seededNormal([n, horizon, cfg.actionDim], seed === undefined ? undefined : seed + 1) as tf.Tensor3D;
    const grid = timeGrid(steps);
    for (let i = 0; i < steps; i++) {
      const t = grid[i]!;
      const dt = grid[i + 1]! - t;
      const out = forwardWithContext(
        p,
        cfg,
        ctx,
        { frames, frameT: tf.fill([n, horizon], t), actions, actionT: tf.fill([n, horizon], t) as tf.Tensor2D },
        cond,
      );
      frames = tf.add(frames, tf.mul(dt, out.frameVelocity)) as tf.Tensor5D;
      actions = tf.add(actions, tf.mul(dt, out.actionVelocity)) as tf.Tensor3D;
    }
    return tf.clipByValue(actions, -1, 1) as tf.Tensor3D;
  });
}
