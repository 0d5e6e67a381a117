/**
 * The shared transformer trunk: per-token adaLN-Zero DiT blocks (official names
 * `blocks.{i}.*`), with optional attention masks and a key/value cache for a clean prefix.
 */
import * as tf from '@tensorflow/tfjs';
import { distinctRows, spreadRows, type ConditionGroups } from './condition-groups.js';
import { geluTanh, layerNorm, linear, linearChunks, matmul, modulate, plainProductsOnly, silu, type Params } from './layers.js';

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
  /** Per-sample, per-head additive bias [B, heads, Tq, Tk] on top of `mask` (the action-shift prior). */
  headBias?: tf.Tensor4D;
  /** Keys/values of earlier tokens that the new tokens attend to (not recomputed). */
  cache?: KVCache;
  /** Record keys/values of these tokens into a new cache. */
  recordCache?: boolean;
  /** Return projector(block output) after this 1-based block. */
  featuresLayer?: number;
  /** Return the raw block output after this 1-based block. */
  rawFeaturesLayer?: number;
  /** Run only blocks 1..stopAfterLayer (1-based); the output `x` is then that block's output. */
  stopAfterLayer?: number;
  /** Tokens whose conditioning rows are equal by construction: the modulation linears run once per group. */
  groups?: ConditionGroups;
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

function attention(
  p: Params,
  prefix: string,
  x: tf.Tensor3D,
  heads: number,
  block: number,
  opts: TrunkOptions,
  bias: AttentionBias,
  record?: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] },
): tf.Tensor3D {
  const [b, n, d] = x.shape;
  // q, k, v as chunks of the fused qkv output: avoids a slow 5-D transpose of it.
  const [q, k, v] = linearChunks(x, p, `${prefix}.qkv`, 3).map((t) => splitHeads(t, b, n, heads));
  if (record) {
    record.keys.push(tf.keep(k!));
    record.values.push(tf.keep(v!));
  }
  const scale = 1 / Math.sqrt(d / heads);
  const qs = tf.mul(q!, scale) as tf.Tensor4D;
  const out = bias.sliced
    ? attendSliced(qs, k!, v!, bias.sliced, opts.cache, block)
    : attendBatched(qs, k!, v!, bias.batched, opts.cache, block);
  const merged = out.transpose([0, 2, 1, 3]).reshape([b, n, d]);
  return linear(merged, p, `${prefix}.proj`) as tf.Tensor3D;
}

/**
 * The logit bias in the form each attention path wants it, built once per trunk call: batched
 * ([Tq, Tk] or [B, H, Tq, Tk]), or on plain wasm one [Tq, Tk] per (sample, head) (a single shared one
 * when there is no per-head part).
 */
interface AttentionBias {
  batched?: tf.Tensor;
  sliced?: (i: number) => tf.Tensor | undefined;
}

function attentionBias(opts: TrunkOptions): AttentionBias {
  const batched = opts.headBias ? (opts.mask ? tf.add(opts.headBias, opts.mask) : opts.headBias) : opts.mask;
  if (!plainProductsOnly()) return { batched };
  if (!opts.headBias) return { sliced: () => opts.mask };
  const [b, h, tq, tk] = opts.headBias.shape;
  const perHead = tf.unstack(batched!.reshape([b * h, tq, tk]));
  return { sliced: (i) => perHead[i] };
}

/** softmax(q k^T + mask) v over [B, H, N, hd], with an optional cached key/value prefix. */
function attendBatched(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor | undefined,
  cache: KVCache | undefined,
  block: number,
): tf.Tensor4D {
  const keys = cache ? tf.concat([tileTo(cache.keys[block]!, q.shape[0]), k], 2) : k;
  const values = cache ? tf.concat([tileTo(cache.values[block]!, q.shape[0]), v], 2) : v;
  let scores = matmul(q, keys, true);
  if (mask) scores = tf.add(scores, mask);
  return matmul(tf.softmax(scores, -1), values) as tf.Tensor4D;
}

function tileTo(t: tf.Tensor4D, batch: number): tf.Tensor4D {
  return t.shape[0] === batch ? t : (tf.tile(t, [batch / t.shape[0], 1, 1, 1]) as tf.Tensor4D);
}

/**
 * The same attention as one small 2-D problem per (sample, head). On plain wasm, batched products,
 * transposed operands and slicing large tensors are all slow (measured 4-10x); unstacking the
 * small q/k/v and stacking the small outputs is not. A batch-1 cache is shared by all samples.
 */
function attendSliced(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  biasOf: (i: number) => tf.Tensor | undefined,
  cache: KVCache | undefined,
  block: number,
): tf.Tensor4D {
  const [b, h, n, hd] = q.shape;
  const qs = tf.unstack(q.reshape([b * h, n, hd]));
  const kTs = tf.unstack(k.transpose([0, 1, 3, 2]).reshape([b * h, hd, n]));
  const vs = tf.unstack(v.reshape([b * h, n, hd]));
  let ckT: tf.Tensor[] = [];
  let cv: tf.Tensor[] = [];
  let cb = 1;
  if (cache) {
    const ck = cache.keys[block]!;
    cb = ck.shape[0];
    ckT = tf.unstack(ck.transpose([0, 1, 3, 2]).reshape([cb * h, hd, cache.length]));
    cv = tf.unstack(cache.values[block]!.reshape([cb * h, cache.length, hd]));
  }
  const outs = qs.map((qi, i) => {
    const ci = cb === 1 ? i % h : i;
    const keys = cache ? tf.concat([ckT[ci]!, kTs[i]!], 1) : kTs[i]!;
    const values = cache ? tf.concat([cv[ci]!, vs[i]!], 0) : vs[i]!;
    let scores: tf.Tensor = matmul(qi, keys);
    const bias = biasOf(i);
    if (bias) scores = tf.add(scores, bias);
    return matmul(tf.softmax(scores, -1), values);
  });
  return tf.stack(outs).reshape([b, h, n, hd]) as tf.Tensor4D;
}

/** PerTokenDiTBlock.forward. */
function block(
  p: Params,
  i: number,
  x: tf.Tensor3D,
  mod: tf.Tensor[],
  heads: number,
  opts: TrunkOptions,
  bias: AttentionBias,
  record?: { keys: tf.Tensor4D[]; values: tf.Tensor4D[] },
): tf.Tensor3D {
  const pre = `blocks.${i}`;
  const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = mod;
  const h = modulate(layerNorm(x), shiftMsa!, scaleMsa!) as tf.Tensor3D;
  x = tf.add(x, tf.mul(gateMsa!, attention(p, `${pre}.attn`, h, heads, i, opts, bias, record))) as tf.Tensor3D;
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
  const sc = silu(opts.groups ? distinctRows(c, opts.groups) : c);
  const bias = attentionBias(opts);
  const depth = opts.stopAfterLayer === undefined ? g.depth : Math.min(g.depth, opts.stopAfterLayer);
  for (let i = 0; i < depth; i++) {
    const xi = x;
    // Per-block tidy bounds inference memory to one block's attention maps; under a gradient
    // tape tfjs keeps what backprop needs, so training is unaffected.
    x = tf.tidy(() => {
      const mod = modulation(sc, p, `blocks.${i}.adaLN_modulation.1`, 6, opts.groups);
      return block(p, i, xi, mod, g.num_heads, opts, bias, record);
    });
    if (opts.featuresLayer === i + 1) out.projected = projector(p, x) as tf.Tensor3D;
    if (opts.rawFeaturesLayer === i + 1) out.raw = x;
  }
  out.x = x;
  if (record) out.cache = { keys: record.keys, values: record.values, length: x.shape[1] };
  return out;
}

/**
 * The adaLN modulation chunks [B, T, D] of conditioning `sc` (SiLU already applied): per token, or,
 * with `groups`, per group (`sc` is then [B, U, D]) and spread to the group's tokens.
 */
function modulation(sc: tf.Tensor, p: Params, name: string, parts: number, groups?: ConditionGroups): tf.Tensor[] {
  if (!groups) return linearChunks(sc, p, name, parts);
  if (plainProductsOnly()) return linearChunks(sc, p, name, parts).map((m) => spreadRows(m, groups));
  return tf.split(spreadRows(linear(sc, p, name), groups), parts, -1);
}

/** PerTokenFinalLayer up to (not including) its output linear: adaLN-modulated final norm. */
export function finalNorm(p: Params, x: tf.Tensor3D, c: tf.Tensor3D, groups?: ConditionGroups): tf.Tensor3D {
  const sc = silu(groups ? distinctRows(c, groups) : c);
  const [shift, scale] = modulation(sc, p, 'final_layer.adaLN_modulation.1', 2, groups);
  return modulate(layerNorm(x), shift!, scale!) as tf.Tensor3D;
}

export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  tf.dispose([...cache.keys, ...cache.values]);
}
