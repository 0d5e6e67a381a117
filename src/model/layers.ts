/** Stateless building blocks of the DiT, in the official module's numerics. */
import * as tf from '@tensorflow/tfjs';
import { blasKernelsActive } from '../backend/blas-kernels.js';

export type Params = Record<string, tf.Tensor>;

export function param(p: Params, name: string): tf.Tensor {
  const t = p[name];
  if (!t) throw new Error(`missing parameter '${name}'`);
  return t;
}

/**
 * Whether matrix products must stay plain 2-D ones. On plain wasm, XNNPACK only serves plain
 * 2-D products: a transposed operand runs ~10x and a batched product ~4x slower (measured), so
 * products there transpose explicitly and loop over 2-D slices. Where OpenBLAS serves the wasm
 * backend's products (wasm+blas), and on other backends, transposed and batched products are
 * as fast as plain ones, so the model uses few large products with the transposes in the kernel.
 */
export function plainProductsOnly(): boolean {
  return tf.getBackend() === 'wasm' && !blasKernelsActive();
}

/**
 * 2-D product whose gradient also avoids transposed operands (tf.matMul's gradient uses
 * transposeA/transposeB products, the slow path on plain wasm).
 */
const plainMatMul2d = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.matMul(dy, tf.transpose(saved[1]!)), tf.matMul(tf.transpose(saved[0]!), dy)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor2D;

/** Matrix product over the last two axes (leading axes are batch; `b` may have batch 1). */
export function matmul(a: tf.Tensor, b: tf.Tensor, transposeB = false): tf.Tensor {
  return plainProductsOnly() ? slicedMatmul(a, b, transposeB) : batchedMatmul(a, b, transposeB);
}

/**
 * One product for the whole batch. A `b` shared by every batch entry folds the batch into the
 * rows of `a` (one 2-D product), so no operand is tiled and the gradient needs no reduction.
 */
function batchedMatmul(a: tf.Tensor, b: tf.Tensor, transposeB: boolean): tf.Tensor {
  if (a.rank === 2 && b.rank === 2) return tf.matMul(a, b, false, transposeB);
  const batchShape = a.shape.slice(0, -2);
  const n = batchShape.reduce((x, y) => x * y, 1);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const bBatch = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const cols = transposeB ? br : bc;
  if (bBatch === 1) {
    const y = tf.matMul(a.reshape([n * m, k]) as tf.Tensor2D, b.reshape([br, bc]) as tf.Tensor2D, false, transposeB);
    return y.reshape([...batchShape, m, cols]);
  }
  if (bBatch !== n) throw new Error(`matmul: batch of b (${b.shape}) must be 1 or match a (${a.shape})`);
  return tf
    .matMul(a.reshape([n, m, k]) as tf.Tensor3D, b.reshape([n, br, bc]) as tf.Tensor3D, false, transposeB)
    .reshape([...batchShape, m, cols]);
}

/** The plain-wasm form: explicit transposes and one 2-D product per batch entry. */
function slicedMatmul(a: tf.Tensor, b: tf.Tensor, transposeB: boolean): tf.Tensor {
  const bb = transposeB ? swapLastAxes(b) : b;
  const bBatch = bb.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  if (a.rank === 2 && bb.rank === 2) return plainMatMul2d(a, bb);
  const batchShape = a.shape.slice(0, -2);
  const n = batchShape.reduce((x, y) => x * y, 1);
  const [m, k] = a.shape.slice(-2) as [number, number];
  const [bk, bn] = bb.shape.slice(-2) as [number, number];
  // Slices, not tf.unstack: wasm's Unpack kernel is slower than the products themselves (measured).
  const a3 = a.reshape([n, m, k]);
  const b3 = bb.reshape([bBatch, bk, bn]);
  const b0 = bBatch === 1 ? b3.reshape([bk, bn]) : undefined;
  const outs = Array.from({ length: n }, (_, i) =>
    plainMatMul2d(a3.slice([i, 0, 0], [1, m, k]).reshape([m, k]), b0 ?? b3.slice([i, 0, 0], [1, bk, bn]).reshape([bk, bn])),
  );
  return tf.stack(outs).reshape([...batchShape, m, bn]);
}

function swapLastAxes(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1]!, perm[t.rank - 2]!];
  return tf.transpose(t, perm);
}

/**
 * x W^T (+ b) for x [rows, in], W [out, in] in one kernel (the bias added in the product's
 * epilogue), with the gradient as three products: dx = dy W, dW = dy^T x, db = 1^T dy. The
 * bias gradient as a product avoids tfjs's column sum, which the wasm backend runs as a transpose
 * and a reduction.
 */
const affineWithBias = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b }),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dy2 = dy as tf.Tensor2D;
      return [tf.matMul(dy2, ws), tf.matMul(dy2, xs, true, false), tf.matMul(tf.ones([1, dy2.shape[0]]), dy2).reshape([dy2.shape[1]])];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor) => tf.Tensor2D;

const affine = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x, w, false, true),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy, ws), tf.matMul(dy, xs, true, false)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** PyTorch nn.Linear: weight [out, in], y = x W^T + b over the last axis. */
export function linear(x: tf.Tensor, p: Params, name: string): tf.Tensor {
  const w = param(p, `${name}.weight`) as tf.Tensor2D;
  const inDim = x.shape[x.shape.length - 1]!;
  const flat = x.reshape([-1, inDim]) as tf.Tensor2D;
  const b = p[`${name}.bias`];
  let y: tf.Tensor;
  if (plainProductsOnly()) {
    y = matmul(flat, w, true);
    if (b) y = tf.add(y, b);
  } else {
    y = b ? affineWithBias(flat, w, b) : affine(flat, w);
  }
  return y.reshape([...x.shape.slice(0, -1), w.shape[0]]);
}

/**
 * Rows [start, start + count) of a linear layer's output, computed from the matching slice of
 * its weight. Cheaper than splitting the full output on plain wasm, where splitting the last axis
 * of a large activation is slow (measured).
 */
export function linearRows(x: tf.Tensor, p: Params, name: string, start: number, count: number): tf.Tensor {
  const w = param(p, `${name}.weight`);
  const b = p[`${name}.bias`];
  const sub: Params = { [`${name}.weight`]: w.slice([start, 0], [count, w.shape[1]!]) };
  if (b) sub[`${name}.bias`] = b.slice([start], [count]);
  return linear(x, sub, name);
}

/**
 * A linear layer's output cut into `parts` equal chunks of its last axis (torch's .chunk()).
 * With fast products it is one product split afterwards, whose gradient is one concatenation;
 * on plain wasm one product per chunk of the weight (linearRows).
 */
export function linearChunks(x: tf.Tensor, p: Params, name: string, parts: number): tf.Tensor[] {
  const rows = param(p, `${name}.weight`).shape[0] / parts;
  if (plainProductsOnly()) return Array.from({ length: parts }, (_, i) => linearRows(x, p, name, i * rows, rows));
  return tf.split(linear(x, p, name), parts, -1);
}

/**
 * LayerNorm without affine parameters (elementwise_affine=False, eps 1e-6), with its gradient
 * written out: dx = r (dy - mean(dy) - x̂ mean(dy x̂)), with x̂ the output and r = 1/sqrt(var + eps).
 * Far fewer kernels than differentiating through tf.moments, on a hot path of training.
 */
export function layerNorm(x: tf.Tensor, eps = 1e-6): tf.Tensor {
  // On plain wasm the small models are bound by per-kernel overhead, which customGrad adds to (measured on tiny).
  if (plainProductsOnly()) {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  }
  return layerNormWithGrad(x, eps);
}

const layerNormWithGrad = (x: tf.Tensor, eps: number): tf.Tensor =>
  tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const { mean, variance } = tf.moments(input, -1, true);
    const r = tf.rsqrt(tf.add(variance, eps));
    const y = tf.mul(tf.sub(input, mean), r);
    save([y, r]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHat, rs] = saved as [tf.Tensor, tf.Tensor];
        const centred = tf.sub(dy, tf.mean(dy, -1, true));
        return tf.mul(tf.sub(centred, tf.mul(xHat, tf.mean(tf.mul(dy, xHat), -1, true))), rs);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0])(x);

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

const GELU_A = 2 * Math.sqrt(2 / Math.PI);
const GELU_B = 0.044715;

/**
 * nn.GELU(approximate='tanh'): 0.5 x (1 + tanh(z)) with z = sqrt(2/pi) (x + 0.044715 x^3), written
 * as the identical x sigmoid(2z) because the wasm backend's Tanh is ~40x slower than its Sigmoid
 * (measured on [323, 1536]). With u = 2z and s = sigmoid(u) the gradient is
 * s + x s (1 - s) du/dx, du/dx = A (1 + 3 B x^2): a few kernels instead of the autodiff chain
 * (plain wasm differentiates the formula instead, as with layerNorm).
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (plainProductsOnly()) return tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(GELU_A, tf.mul(GELU_A * GELU_B, tf.square(x))))));
  return geluWithGrad(x);
}

const geluWithGrad = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const x2 = tf.square(x);
  const s = tf.sigmoid(tf.mul(x, tf.add(GELU_A, tf.mul(GELU_A * GELU_B, x2))));
  save([x, x2, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, sq, sig] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const du = tf.add(GELU_A, tf.mul(3 * GELU_A * GELU_B, sq));
      const slope = tf.mul(tf.mul(sig, tf.sub(1, sig)), tf.mul(xs, du));
      return tf.mul(dy, tf.add(sig, slope));
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/** x * (1 + scale) + shift, all per token. */
export function modulate(x: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor): tf.Tensor {
  return tf.add(tf.mul(x, tf.add(1, scale)), shift);
}

/** TimestepEmbedder.timestep_embedding: [cos(t f), sin(t f)] with f = exp(-ln(10000) i / half). */
export function timestepFrequencies(t: tf.Tensor1D, dim = 256, maxPeriod = 10000): tf.Tensor2D {
  const half = Math.floor(dim / 2);
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(maxPeriod) * i) / half);
  const args = tf.mul(t.reshape([-1, 1]), tf.tensor2d(freqs, [1, half]));
  let emb = tf.concat([tf.cos(args), tf.sin(args)], -1);
  if (dim % 2) emb = tf.concat([emb, tf.zeros([emb.shape[0], 1])], -1);
  return emb as tf.Tensor2D;
}

/** TimestepEmbedder: sinusoidal features through Linear-SiLU-Linear. Accepts any shape of t. */
export function embedTimesteps(p: Params, t: tf.Tensor): tf.Tensor {
  const f = timestepFrequencies(t.reshape([-1]) as tf.Tensor1D);
  const h = linear(silu(linear(f, p, 't_embedder.mlp.0')), p, 't_embedder.mlp.2');
  return h.reshape([...t.shape, h.shape[1]!]);
}

/** get_1d_sincos_pos_embed_from_grid: [sin(pos w), cos(pos w)], w = 1/10000^(i/(dim/2)), float64 then rounded. */
export function sincos1d(dim: number, positions: number[]): Float32Array {
  const half = dim / 2;
  const out = new Float32Array(positions.length * dim);
  positions.forEach((pos, r) => {
    for (let i = 0; i < half; i++) {
      const a = pos / 10000 ** (i / half);
      out[r * dim + i] = Math.sin(a);
      out[r * dim + half + i] = Math.cos(a);
    }
  });
  return out;
}

/**
 * get_2d_sincos_pos_embed generalised to a gh x gw grid (row-major tokens). As in the official
 * code, the first half of the channels encodes the column and the second half the row.
 */
export function sincos2d(dim: number, gh: number, gw: number): Float32Array {
  const cols: number[] = [];
  const rows: number[] = [];
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      cols.push(c);
      rows.push(r);
    }
  }
  const a = sincos1d(dim / 2, cols);
  const b = sincos1d(dim / 2, rows);
  const out = new Float32Array(gh * gw * dim);
  for (let n = 0; n < gh * gw; n++) {
    out.set(a.subarray(n * (dim / 2), (n + 1) * (dim / 2)), n * dim);
    out.set(b.subarray(n * (dim / 2), (n + 1) * (dim / 2)), n * dim + dim / 2);
  }
  return out;
}

/**
 * LabelEmbedder lookup as one-hot x table: same values as a gather, but differentiable on
 * backends without an UnsortedSegmentSum kernel (wasm). Returns [B, 1, D].
 */
export function embedLabels(p: Params, y: tf.Tensor): tf.Tensor {
  const table = param(p, 'y_embedder.embedding_table.weight') as tf.Tensor2D;
  // tf.oneHot rejects depth 1 (a single-class table), so compare against a range instead.
  const oneHot = tf
    .equal(tf.cast(y, 'int32').reshape([-1, 1]), tf.range(0, table.shape[0], 1, 'int32').reshape([1, -1]))
    .toFloat() as tf.Tensor2D;
  return matmul(oneHot, table).expandDims(1);
}
