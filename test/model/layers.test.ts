/**
 * The building blocks with hand-written gradients or backend-dependent products against the
 * plain formulas differentiated by tfjs, on the test backend.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { geluTanh, layerNorm, linear, linearChunks, matmul } from '../../src/model/layers.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomTensor, useTestBackend } from '../helpers/tf.js';

/** The textbook forms: torch's tanh GELU and a LayerNorm through tf.moments. */
function geluReference(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  const inner = tf.mul(c, tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

function layerNormReference(x: tf.Tensor, eps = 1e-6): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

function rel(got: tf.Tensor, want: tf.Tensor): number {
  const w = want.dataSync();
  return maxAbsDiff(got.dataSync(), w) / Math.max(1, maxAbs(w));
}

/** Value and gradient of sum(f(x) * weights), so every output element gets its own upstream gradient. */
function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, weights: tf.Tensor): { value: tf.Tensor; grad: tf.Tensor } {
  const value = f(x);
  const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), weights)))(x);
  return { value, grad };
}

describe('model layers', () => {
  const rng = new Rng(7);
  beforeAll(useTestBackend);

  it('GELU (x * sigmoid(2z)) and its gradient match the tanh form differentiated by tfjs', () => {
    tf.tidy(() => {
      const x = randomTensor(rng, [3, 17, 40], 2.5);
      const w = randomTensor(rng, [3, 17, 40]);
      const got = valueAndGrad(geluTanh, x, w);
      const want = valueAndGrad(geluReference, x, w);
      expect(rel(got.value, want.value)).toBeLessThan(1e-5);
      expect(rel(got.grad, want.grad)).toBeLessThan(1e-5);
    });
  });

  it('LayerNorm and its gradient match tf.moments differentiated by tfjs', () => {
    tf.tidy(() => {
      const x = tf.add(randomTensor(rng, [2, 9, 48], 3), 1.5);
      const w = randomTensor(rng, [2, 9, 48]);
      const got = valueAndGrad((t) => layerNorm(t), x, w);
      const want = valueAndGrad((t) => layerNormReference(t), x, w);
      expect(rel(got.value, want.value)).toBeLessThan(1e-5);
      expect(rel(got.grad, want.grad)).toBeLessThan(1e-4);
    });
  });

  it('matmul (batched, shared and transposed operands) and its gradients match tf.matMul on tiled operands', () => {
    tf.tidy(() => {
      const a = randomTensor(rng, [2, 3, 5, 7]);
      const shared = randomTensor(rng, [6, 7]);
      const batched = randomTensor(rng, [2, 3, 6, 7]);
      for (const b of [shared, batched]) {
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(matmul(x, y, true)));
        const ref = (x: tf.Tensor, y: tf.Tensor) =>
          tf.sum(tf.square(tf.matMul(x, y.rank === 2 ? tf.tile(y.reshape([1, 1, 6, 7]), [2, 3, 1, 1]) : y, false, true)));
        const [ga, gb] = tf.grads(f)([a, b]);
        const [wa, wb] = tf.grads(ref)([a, b]);
        expect(matmul(a, b, true).shape).toEqual([2, 3, 5, 6]);
        expect(rel(ga!, wa!)).toBeLessThan(1e-5);
        expect(rel(gb!, wb!)).toBeLessThan(1e-5);
      }
    });
  });

  it('linear (with and without bias) and its gradients match x W^T + b differentiated by tfjs', () => {
    tf.tidy(() => {
      const x = randomTensor(rng, [3, 5, 8]);
      const w = randomTensor(rng, [6, 8]);
      const b = randomTensor(rng, [6]);
      const weights = randomTensor(rng, [3, 5, 6]);
      const got = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(linear(xi, { 'l.weight': wi, 'l.bias': bi }, 'l'), weights)),
      )([x, w, b]);
      const want = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) =>
        tf.sum(tf.mul(tf.add(tf.matMul(xi.reshape([15, 8]), wi, false, true), bi).reshape([3, 5, 6]), weights)),
      )([x, w, b]);
      got.forEach((g, i) => expect(rel(g, want[i]!), `input ${i}`).toBeLessThan(1e-5));
      const noBias = tf.grads((xi: tf.Tensor, wi: tf.Tensor) => tf.sum(tf.mul(linear(xi, { 'l.weight': wi }, 'l'), weights)))([x, w]);
      const noBiasWant = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
        tf.sum(tf.mul(tf.matMul(xi.reshape([15, 8]), wi, false, true).reshape([3, 5, 6]), weights)),
      )([x, w]);
      noBias.forEach((g, i) => expect(rel(g, noBiasWant[i]!), `input ${i} without bias`).toBeLessThan(1e-5));
      expect(
        rel(linear(x, { 'l.weight': w, 'l.bias': b }, 'l'), tf.add(tf.matMul(x.reshape([15, 8]), w, false, true), b).reshape([3, 5, 6])),
      ).toBeLessThan(1e-6);
    });
  });

  it('linearChunks gives the chunks of the full linear output, and their gradients', () => {
    tf.tidy(() => {
      const x = randomTensor(rng, [2, 5, 8]);
      const p = { 'l.weight': randomTensor(rng, [12, 8]), 'l.bias': randomTensor(rng, [12]) };
      const chunks = linearChunks(x, p, 'l', 3);
      const full = linear(x, p, 'l');
      expect(chunks.map((c) => c.shape)).toEqual([
        [2, 5, 4],
        [2, 5, 4],
        [2, 5, 4],
      ]);
      expect(rel(tf.concat(chunks, -1), full)).toBeLessThan(1e-6);
      const weights = randomTensor(rng, [2, 5, 12]);
      const viaChunks = tf.grads((w: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.concat(linearChunks(x, { 'l.weight': w, 'l.bias': b }, 'l', 3), -1), weights)),
      );
      const viaFull = tf.grads((w: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(linear(x, { 'l.weight': w, 'l.bias': b }, 'l'), weights)));
      const [gw, gb] = viaChunks([p['l.weight'], p['l.bias']]);
      const [ww, wb] = viaFull([p['l.weight'], p['l.bias']]);
      expect(rel(gw!, ww!)).toBeLessThan(1e-5);
      expect(rel(gb!, wb!)).toBeLessThan(1e-5);
    });
  });
});
