/**
 * The official SelfFlowPerTokenDiT forward() (black-forest-labs/Self-Flow src/model.py), exactly:
 * time is flipped (t -> 1 - t) at this boundary and the output negated.
 */
import * as tf from '@tensorflow/tfjs';
import type { DiTConfig } from '../core/model-config.js';
import { embedLabels, embedTimesteps, linear, param, sincos2d, type Params } from './layers.js';
import { finalNorm, runTrunk } from './trunk.js';

export interface DiTForwardOptions {
  /** 1-based block whose output goes through the projector (return_features). */
  featuresLayer?: number;
  /** 1-based block whose raw output is returned (return_raw_features). */
  rawFeaturesLayer?: number;
}

export interface DiTOutput {
  /** [B, T, patch*patch*in_channels], channel order (c, p1, p2). */
  out: tf.Tensor3D;
  features?: tf.Tensor3D;
}

export function gridSize(cfg: DiTConfig): number {
  return Math.floor(cfg.input_size / cfg.patch_size);
}

/** The fixed pos_embed buffer the official initialize_weights() writes. */
export function officialPosEmbed(cfg: DiTConfig): Float32Array {
  const g = gridSize(cfg);
  return sincos2d(cfg.hidden_size, g, g);
}

/**
 * @param x [B, T, p*p*C] patch vectors; @param t [B] or [B, T] in the forward() convention (0 = data);
 * @param y [B] class ids.
 */
export function ditForward(
  p: Params,
  cfg: DiTConfig,
  x: tf.Tensor3D,
  t: tf.Tensor,
  y: tf.Tensor1D,
  opts: DiTForwardOptions = {},
): DiTOutput {
  if (opts.featuresLayer && opts.rawFeaturesLayer)
    throw new Error('featuresLayer and rawFeaturesLayer are exclusive (as in the official forward)');
  const n = x.shape[1];
  const tInternal = tf.sub(1, t);
  const h = tf.add(linear(x, p, 'x_embedder.proj'), param(p, 'pos_embed')) as tf.Tensor3D;
  const tEmb = t.rank === 1 ? tf.tile(embedTimesteps(p, tInternal).expandDims(1), [1, n, 1]) : embedTimesteps(p, tInternal);
  const yEmb = embedLabels(p, y);
  const c = tf.add(tEmb, yEmb) as tf.Tensor3D;
  const trunk = runTrunk(p, cfg, h, c, { featuresLayer: opts.featuresLayer, rawFeaturesLayer: opts.rawFeaturesLayer });
  let out = linear(finalNorm(p, trunk.x, c), p, 'final_layer.linear');
  out = shuffleChannels(out, cfg);
  return {
    out: tf.neg(out) as tf.Tensor3D,
    features: opts.featuresLayer ? trunk.projected : opts.rawFeaturesLayer ? trunk.raw : undefined,
  };
}

/** shufflechannel: (p q c) -> (c p q), then keep the first half of the channels when learn_sigma. */
export function shuffleChannels(x: tf.Tensor, cfg: DiTConfig): tf.Tensor3D {
  const [b, l] = x.shape as [number, number, number];
  const p = cfg.patch_size;
  const outC = cfg.learn_sigma ? cfg.in_channels * 2 : cfg.in_channels;
  let y = x.reshape([b, l, p, p, outC]).transpose([0, 1, 4, 2, 3]);
  if (cfg.learn_sigma) y = y.slice([0, 0, 0, 0, 0], [b, l, cfg.in_channels, p, p]);
  return y.reshape([b, l, cfg.in_channels * p * p]) as tf.Tensor3D;
}
