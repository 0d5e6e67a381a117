/**
 * The shared transformer trunk: per-token adaLN-Zero DiT blocks (official names
 * `blocks.{i}.*`), with optional attention masks and a key/value cache for a clean prefix.
 */
import * as tf from '@tensorflow/tfjs';
import { geluTanh, layerNorm, linear, modulate, silu, type Params } from './layers.js';

export interface TrunkGeometry {
  hidden_size: number;
  num_heads: number;
  depth: number;
}

/** Keys and values of a cached prefix, per block: [Bc, heads, Tc, headDim] with Bc = 1 or the batch. */
export interface KVCache {
  keys: tf.Tensor4D[];
  values: tf.Tensor4D[];
  length: number;
}

export interface TrunkOptions {
  /** Additive attention bias [Tq, Tk] (0 = attend, large negative = blocked); Tk includes the cached prefix. */
  mask?: tf.Tensor2D;
  /** Keys/values of earlier tokens that the new tokens attend to (not recomputed). */
  cache?: KVCache;
  /** Record keys/values of these tokens into a new cache. */
  recordCache?: boolean;
  /** Return projector(block output) after this 1-based block. */
  featuresLayer?: number;
  /** Return the raw block output after this 1-based block. */
  rawFeaturesLayer?: number;
}

export interface TrunkOutput {
  x: tf.Tensor3D;
  projected?: tf.Tensor3D;
  raw?: tf.Tensor3D;
  cache?: KVCache;
}

function splitHeads(t: tf.Tensor, b: number, n: number, heads: number): tf.Tensor4D {
  return t.reshape([b, n, heads, -1]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
}

/** Batched matmul that lets a batch-1 cache serve every candidate. */
function bmm(a: tf.Tensor4D, b: tf.Tensor4D, transposeB: boolean): tf.Tensor4D {
  const bb = b.shape[0] === a.shape[0] ? b : (tf.tile(b, [a.shape[0] / b.shape[0], 1, 1, 1]) as tf.Tensor4D);
  return tf.matMul(a, bb, false, transposeB);
}

function attention(
  p: Params,
  prefix: string,
  x: tf.Tensor3D,
  heads: number,
  block: number,
  opts: TrunkOptions,
  record?: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] },
): tf.Tensor3D {
  const [b, n, d] = x.shape;
  const qkv = linear(x, p, `${prefix}.qkv`).reshape([b, n, 3, heads, d / heads]).transpose([2, 0, 3, 1, 4]);
  const [q, k, v] = tf.unstack(qkv, 0) as tf.Tensor4D[];
  if (record) {
    record.keys.push(tf.keep(k!));
    record.values.push(tf.keep(v!));
  }
  const scale = 1 / Math.sqrt(d / heads);
  const qs = tf.mul(q!, scale) as tf.Tensor4D;
  let scores = tf.matMul(qs, k!, false, true) as tf.Tensor4D;
  const cache = opts.cache;
  if (cache) scores = tf.concat([bmm(qs, cache.keys[block]!, true), scores], 3) as tf.Tensor4D;
  if (opts.mask) scores = tf.add(scores, opts.mask) as tf.Tensor4D;
  const probs = tf.softmax(scores, -1) as tf.Tensor4D;
  let out: tf.Tensor4D;
  if (cache) {
    const [pc, pn] = tf.split(probs, [cache.length, n], 3) as tf.Tensor4D[];
    out = tf.add(bmm(pc!, cache.values[block]!, false), tf.matMul(pn!, v!)) as tf.Tensor4D;
  } else {
    out = tf.matMul(probs, v!) as tf.Tensor4D;
  }
  const merged = out.transpose([0, 2, 1, 3]).reshape([b, n, d]);
  return linear(merged, p, `${prefix}.proj`) as tf.Tensor3D;
}

/** PerTokenDiTBlock.forward. */
function block(p: Params, i: number, x: tf.Tensor3D, mod: tf.Tensor3D, heads: number, opts: TrunkOptions, record?: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] }): tf.Tensor3D {
  const pre = `blocks.${i}`;
  const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = tf.split(mod, 6, -1);
  const h = modulate(layerNorm(x), shiftMsa!, scaleMsa!) as tf.Tensor3D;
  x = tf.add(x, tf.mul(gateMsa!, attention(p, `${pre}.attn`, h, heads, i, opts, record))) as tf.Tensor3D;
  const h2 = modulate(layerNorm(x), shiftMlp!, scaleMlp!);
  const mlp = linear(geluTanh(linear(h2, p, `${pre}.mlp.fc1`)), p, `${pre}.mlp.fc2`);
  return tf.add(x, tf.mul(gateMlp!, mlp)) as tf.Tensor3D;
}

/** SimpleHead: linear1 -> SiLU -> linear2. */
export function projector(p: Params, x: tf.Tensor): tf.Tensor {
  return linear(silu(linear(x, p, 'projector.linear1')), p, 'projector.linear2');
}

/**
 * Runs all blocks on tokens `x` [B, T, D] with per-token conditioning `c` [B, T, D].
 * The adaLN modulation of every block depends only on c, so it is computed per block from c.
 */
export function runTrunk(p: Params, g: TrunkGeometry, x: tf.Tensor3D, c: tf.Tensor3D, opts: TrunkOptions = {}): TrunkOutput {
  if (opts.recordCache && opts.cache) throw new Error('runTrunk: recording a cache on top of a cache is not supported');
  const out: TrunkOutput = { x };
  const record = opts.recordCache ? { keys: [] as tf.Tensor4D[], values: [] as tf.Tensor4D[] } : undefined;
  const sc = silu(c);
  for (let i = 0; i < g.depth; i++) {
    const mod = linear(sc, p, `blocks.${i}.adaLN_modulation.1`) as tf.Tensor3D;
    x = block(p, i, x, mod, g.num_heads, opts, record);
    if (opts.featuresLayer === i + 1) out.projected = projector(p, x) as tf.Tensor3D;
    if (opts.rawFeaturesLayer === i + 1) out.raw = x;
  }
  out.x = x;
  if (record) out.cache = { keys: record.keys, values: record.values, length: x.shape[1] };
  return out;
}

/** PerTokenFinalLayer up to (not including) its output linear: adaLN-modulated final norm. */
export function finalNorm(p: Params, x: tf.Tensor3D, c: tf.Tensor3D): tf.Tensor3D {
  const [shift, scale] = tf.split(linear(silu(c), p, 'final_layer.adaLN_modulation.1'), 2, -1);
  return modulate(layerNorm(x), shift!, scale!) as tf.Tensor3D;
}

export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.keys, ...cache.values]);
}
