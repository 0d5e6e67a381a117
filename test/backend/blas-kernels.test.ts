/**
 * The wasm+blas matrix-product kernels against the plain wasm backend, in one process: the
 * same input tensors run once on wasm's own kernels and once on OpenBLAS's.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBlasAddon } from '../../src/backend/blas-addon.js';
import { blasKernelsActive } from '../../src/backend/blas-kernels.js';
import { initBackend } from '../../src/backend/backends.js';
import { Rng } from '../../src/util/rng.js';
import { blasLoads, maxAbs, maxAbsDiff, randomTensor } from '../helpers/tf.js';

/** Runs `f` on plain wasm and on wasm+blas and returns both results. */
async function both(f: () => tf.Tensor): Promise<{ wasm: Float32Array; blas: Float32Array; shapes: number[][] }> {
  await initBackend('wasm');
  expect(blasKernelsActive()).toBe(false);
  const w = tf.tidy(f);
  await initBackend('wasm+blas');
  expect(blasKernelsActive()).toBe(true);
  const b = tf.tidy(f);
  const out = { wasm: w.dataSync() as Float32Array, blas: b.dataSync() as Float32Array, shapes: [w.shape, b.shape] };
  tf.dispose([w, b]);
  return out;
}

/** Max difference relative to the reference's largest magnitude (at least 1). */
function relErr(got: Float32Array, want: Float32Array): number {
  return maxAbsDiff(got, want) / Math.max(1, maxAbs(want));
}

const TOL = 1e-4;

describe.skipIf(!blasLoads())('wasm+blas kernels', () => {
  const rng = new Rng(22);
  const dim = () => 1 + rng.int(48);

  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('BatchMatMul matches wasm on random 2-D shapes with every transpose combination', async () => {
    for (let trial = 0; trial < 6; trial++) {
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const [m, n, k] = [dim(), dim(), dim()];
        const a = randomTensor(rng, ta ? [k, m] : [m, k]);
        const b = randomTensor(rng, tb ? [n, k] : [k, n]);
        const r = await both(() => tf.matMul(a, b, ta, tb));
        expect(r.shapes[1]).toEqual([m, n]);
        expect(r.shapes[1]).toEqual(r.shapes[0]);
        expect(relErr(r.blas, r.wasm), `m=${m} n=${n} k=${k} ta=${ta} tb=${tb}`).toBeLessThan(TOL);
        tf.dispose([a, b]);
      }
    }
  });

  it('BatchMatMul matches wasm on batched operands, including a batch of 1 against a batch of N', async () => {
    const cases: [number[], number[]][] = [
      [[3], [3]],
      [[1], [4]],
      [[5], [1]],
      [
        [2, 3],
        [2, 3],
      ],
      [[2, 3], []],
      [[], [4]],
    ];
    for (const [aBatch, bBatch] of cases) {
      for (const [ta, tb] of [
        [false, false],
        [true, true],
        [false, true],
      ] as const) {
        const [m, n, k] = [dim(), dim(), dim()];
        const a = randomTensor(rng, [...aBatch, ...(ta ? [k, m] : [m, k])]);
        const b = randomTensor(rng, [...bBatch, ...(tb ? [n, k] : [k, n])]);
        const r = await both(() => tf.matMul(a, b, ta, tb));
        expect(r.shapes[1]).toEqual(r.shapes[0]);
        expect(relErr(r.blas, r.wasm), `a=${a.shape} b=${b.shape} ta=${ta} tb=${tb}`).toBeLessThan(TOL);
        tf.dispose([a, b]);
      }
    }
  });

  it('broadcasts batch axes that both operands expand, as tf.matMul defines it', async () => {
    const [m, n, k] = [dim(), dim(), dim()];
    const a = randomTensor(rng, [2, 1, m, k]);
    const b = randomTensor(rng, [1, 3, k, n]);
    // Reference on plain wasm with the batches expanded explicitly.
    const r = await both(() => tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(b, [2, 1, 1, 1])));
    await initBackend('wasm+blas');
    const got = tf.matMul(a, b);
    expect(got.shape).toEqual([2, 3, m, n]);
    expect(relErr(got.dataSync() as Float32Array, r.wasm)).toBeLessThan(TOL);
    tf.dispose([a, b, got]);
  });

  it('gradients of a product (transposed products) match wasm', async () => {
    const a = randomTensor(rng, [2, 17, 9]);
    const b = randomTensor(rng, [2, 9, 13]);
    const grads = () => {
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y).square().sum())([a, b]);
      return tf.concat([ga!.flatten(), gb!.flatten()]);
    };
    const r = await both(grads);
    expect(relErr(r.blas, r.wasm)).toBeLessThan(TOL);
    tf.dispose([a, b]);
  });

  const activations = ['linear', 'relu', 'relu6', 'elu', 'prelu', 'leakyrelu', 'sigmoid'] as const;

  /** The fused product written as separate plain ops (the wasm reference). */
  function unfused(
    a: tf.Tensor,
    b: tf.Tensor,
    ta: boolean,
    tb: boolean,
    bias: tf.Tensor | undefined,
    act: (typeof activations)[number],
    prelu: tf.Tensor | undefined,
    alpha: number,
  ): tf.Tensor {
    let y = tf.matMul(a, b, ta, tb);
    if (bias) y = tf.add(y, bias);
    switch (act) {
      case 'relu':
        return tf.relu(y);
      case 'relu6':
        return tf.relu6(y);
      case 'elu':
        return tf.elu(y);
      case 'prelu':
        return tf.prelu(y, prelu!);
      case 'leakyrelu':
        return tf.leakyRelu(y, alpha);
      case 'sigmoid':
        return tf.sigmoid(y);
      default:
        return y;
    }
  }

  it('_FusedMatMul with bias and every activation matches the same ops unfused on wasm', async () => {
    for (const act of activations) {
      for (const [ta, tb, batch] of [
        [false, false, 1],
        [true, false, 1],
        [false, true, 3],
        [true, true, 2],
      ] as const) {
        for (const biasSize of [0, 1, -1]) {
          const [m, n, k] = [dim(), 1 + dim(), dim()];
          const a = randomTensor(rng, [batch, ...(ta ? [k, m] : [m, k])]);
          const b = randomTensor(rng, [batch, ...(tb ? [n, k] : [k, n])]);
          const bias = biasSize === 0 ? undefined : randomTensor(rng, [biasSize === 1 ? 1 : n]);
          const prelu = act === 'prelu' ? randomTensor(rng, [n], 0.3) : undefined;
          const alpha = 0.1 + rng.uniform(0, 0.3);
          const fused = () =>
            tf.fused.matMul({
              a: a,
              b: b,
              transposeA: ta,
              transposeB: tb,
              bias,
              activation: act,
              preluActivationWeights: prelu,
              leakyreluAlpha: alpha,
            });
          await initBackend('wasm');
          const want = tf.tidy(() => unfused(a, b, ta, tb, bias, act, prelu, alpha));
          await initBackend('wasm+blas');
          const got = tf.tidy(fused);
          expect(got.shape).toEqual(want.shape);
          const label = `${act} ta=${ta} tb=${tb} batch=${batch} bias=${bias?.shape ?? 'none'} m=${m} n=${n} k=${k}`;
          expect(relErr(got.dataSync() as Float32Array, want.dataSync() as Float32Array), label).toBeLessThan(TOL);
          tf.dispose([a, b, bias, prelu, want, got].filter((t): t is tf.Tensor => t !== undefined));
        }
      }
    }
  });

  it('_FusedMatMul matches wasm own fused kernel where that kernel takes its fast path (no transpose, batch 1)', async () => {
    for (const act of activations) {
      const [m, n, k] = [dim(), dim(), dim()];
      const a = randomTensor(rng, [1, m, k]);
      const b = randomTensor(rng, [1, k, n]);
      const bias = randomTensor(rng, [n]);
      const prelu = act === 'prelu' ? randomTensor(rng, [n], 0.3) : undefined;
      const r = await both(() =>
        tf.fused.matMul({ a: a, b: b, bias, activation: act, preluActivationWeights: prelu, leakyreluAlpha: 0.15 }),
      );
      expect(relErr(r.blas, r.wasm), act).toBeLessThan(TOL);
      tf.dispose([a, b, bias, ...(prelu ? [prelu] : [])]);
    }
  });

  it('Slice, Unpack and SplitV read the heap in place and give exactly the wasm kernels results', async () => {
    for (let trial = 0; trial < 40; trial++) {
      const rank = 1 + rng.int(5);
      const shape = Array.from({ length: rank }, () => 1 + rng.int(5));
      const begin = shape.map((s) => rng.int(s));
      // Some axes taken whole (contiguous runs), some cut, some empty.
      const size = shape.map((s, i) => (rng.uniform(0, 1) < 0.4 ? s - begin[i]! : rng.int(s - begin[i]! + 1)));
      const axis = rng.int(rank);
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        const x = tf.tidy(() => (dtype === 'bool' ? randomTensor(rng, shape).greater(0) : randomTensor(rng, shape).mul(10).cast(dtype)));
        const label = `shape=${shape} begin=${begin} size=${size} axis=${axis} ${dtype}`;
        const cut = rng.int(shape[axis]! + 1);
        const parts = () => {
          const sliced = tf.slice(x, begin, size);
          const unstacked = tf.unstack(x, axis);
          const split = tf.split(x, [cut, shape[axis]! - cut], axis);
          return tf.concat([sliced, ...unstacked, ...split].map((t) => t.cast('float32').flatten()));
        };
        await initBackend('wasm');
        const want = tf.tidy(parts);
        await initBackend('wasm+blas');
        const got = tf.tidy(parts);
        expect(Array.from(got.dataSync()), label).toEqual(Array.from(want.dataSync()));
        tf.dispose([x, want, got]);
      }
    }
  });

  it('Identity shares its input data: a clone reads the same values and outlives its source', async () => {
    await initBackend('wasm+blas');
    const heap = tf.backend() as unknown as { refCount(dataId: object): number };
    const x = randomTensor(rng, [4, 6]);
    const want = Array.from(x.dataSync());
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    expect(heap.refCount(x.dataId)).toBe(2);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual(want);
    expect(heap.refCount(y.dataId)).toBe(1);
    const s = tf.clone(tf.tensor(['a', 'b']));
    expect(s.dataSync()).toEqual(['a', 'b']);
    tf.dispose([y, s]);
    // Plain wasm keeps its copying Identity.
    await initBackend('wasm');
    const z = tf.tensor([1, 2]);
    const c = tf.clone(z);
    expect(c.dataId).not.toBe(z.dataId);
    tf.dispose([z, c]);
  });

  it('slice gradients (Pad) are unchanged on wasm+blas', async () => {
    const x = randomTensor(rng, [3, 7, 5]);
    const r = await both(() => tf.grad((t: tf.Tensor) => tf.slice(t, [1, 2, 0], [2, 3, 5]).square().sum())(x));
    expect(Array.from(r.blas)).toEqual(Array.from(r.wasm));
    x.dispose();
  });

  it('the addon computes a known product and refuses regions outside the heap', () => {
    const addon = loadBlasAddon();
    const heap = new Uint8Array(4 * 12);
    const f = new Float32Array(heap.buffer);
    f.set([1, 2, 3, 4], 0); // A [2, 2]
    f.set([5, 6, 7, 8], 4); // B [2, 2]
    addon.gemm(heap, false, false, 2, 2, 2, 1, 0, 0, 16, 0, 32);
    expect(Array.from(f.subarray(8))).toEqual([19, 22, 43, 50]);
    addon.gemm(heap, true, true, 2, 2, 2, 1, 0, 0, 16, 0, 32);
    expect(Array.from(f.subarray(8))).toEqual([23, 31, 34, 46]);
    expect(() => addon.gemm(heap, false, false, 2, 2, 2, 1, 0, 0, 16, 0, 36)).toThrow(/outside the heap/);
    expect(() => addon.gemm(heap, false, false, 2, 2, 2, 2, 0, 16, 16, 0, 32)).toThrow(/outside the heap/);
    expect(() => addon.epilogue(heap, 32, 4, 44, 2, 0, 0, -1, 0)).toThrow(/outside the heap/);
  });

  it('leaves non-float products to the wasm kernel', async () => {
    await initBackend('wasm+blas');
    const a = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    expect(() => tf.matMul(a, a)).toThrow(/non-float32/);
    a.dispose();
  });
});
