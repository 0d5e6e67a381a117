/**
 * The in-place AdamW and EMA updates of wasm+blas against the tensor-op updates of plain wasm:
 * the same parameters and gradients stepped on each, and the fallback for variables that share
 * their data.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadBlasAddon } from '../../src/backend/blas-addon.js';
import { inPlaceUpdates } from '../../src/backend/blas-updates.js';
import { initBackend } from '../../src/backend/backends.js';
import { AdamW } from '../../src/train/adamw.js';
import { emaUpdate } from '../../src/train/objective.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomTensor } from '../helpers/tf.js';

function addonHasUpdates(): boolean {
  try {
    return typeof loadBlasAddon().adamw === 'function';
  } catch {
    return false;
  }
}

const SHAPES: Record<string, number[]> = { 'a.weight': [33, 17], 'a.bias': [17], 'b.weight': [5, 4, 3] };

/** Clipped (the gradients' norms are far above 1), with weight decay on the weights. */
const ADAMW = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };

/** Random parameters of SHAPES, each variable owning its data (tidy frees the initial tensor), as the trainer's do after loading. */
function randomParams(rng: Rng): Record<string, tf.Variable> {
  return Object.fromEntries(Object.entries(SHAPES).map(([n, s]) => [n, tf.tidy(() => tf.variable(randomTensor(rng, s)))]));
}

/** Three AdamW steps (clipped: the gradients' norm is far above 1; weight decay on the weights) and EMA updates on `backend`. */
async function train(backend: string): Promise<Record<string, Float32Array>> {
  await initBackend(backend);
  const rng = new Rng(7);
  const params = randomParams(rng);
  // A copy of its own (a clone would share the student's data, and the first update would then take tensor ops).
  const teacher = Object.fromEntries(
    Object.entries(params).map(([n, p]) => [n, tf.tidy(() => tf.variable(tf.tensor(p.dataSync(), p.shape)))]),
  );
  const adam = new AdamW(ADAMW);
  const norms: number[] = [];
  for (let step = 0; step < 3; step++) {
    const grads = Object.fromEntries(Object.entries(SHAPES).map(([n, s]) => [n, randomTensor(rng, s, 3)]));
    norms.push(adam.apply(params, grads, 0.01));
    tf.dispose(Object.values(grads));
    emaUpdate(teacher, params, 0.9);
  }
  const out: Record<string, Float32Array> = { norms: Float32Array.from(norms) };
  for (const n of Object.keys(SHAPES)) {
    out[`p/${n}`] = params[n]!.dataSync() as Float32Array;
    out[`m/${n}`] = adam.m.get(n)!.dataSync() as Float32Array;
    out[`v/${n}`] = adam.v.get(n)!.dataSync() as Float32Array;
    out[`t/${n}`] = teacher[n]!.dataSync() as Float32Array;
  }
  tf.dispose([...Object.values(params), ...Object.values(teacher)]);
  adam.dispose();
  return out;
}

describe.skipIf(!addonHasUpdates())('in-place optimizer updates on wasm+blas', () => {
  afterEach(() => vi.restoreAllMocks());

  it('AdamW with clipping and weight decay, and the EMA, match the tensor-op updates of plain wasm', async () => {
    const want = await train('wasm');
    const addon = loadBlasAddon();
    const adamw = vi.spyOn(addon, 'adamw');
    const ema = vi.spyOn(addon, 'ema');
    const got = await train('wasm+blas');
    // Every parameter of every step took the native path.
    expect([adamw.mock.calls.length, ema.mock.calls.length]).toEqual([9, 9]);
    expect(want.norms![0]).toBeGreaterThan(10);
    for (const [k, w] of Object.entries(want)) {
      const err = maxAbsDiff(got[k]!, w) / Math.max(1, maxAbs(w));
      expect([k, err < 1e-6]).toEqual([k, true]);
    }
  });

  it('updates in place after a gradient step: the tensors a gradient saves (shared clones) are freed before it', async () => {
    await initBackend('wasm+blas');
    const rng = new Rng(3);
    const params = randomParams(rng);
    const x = randomTensor(rng, [2, 33]);
    const loss = () =>
      tf.tidy(() => {
        const h = tf.matMul(x, params['a.weight']!).add(params['a.bias']!).relu();
        return h.square().sum().add(params['b.weight']!.square().sum()) as tf.Scalar;
      });
    const adam = new AdamW(ADAMW);
    const adamw = vi.spyOn(loadBlasAddon(), 'adamw');
    for (let step = 0; step < 2; step++) {
      const { value, grads } = tf.variableGrads(loss, Object.values(params));
      // variableGrads keys by variable name, AdamW by parameter name.
      adam.apply(params, Object.fromEntries(Object.entries(params).map(([n, v]) => [n, grads[v.name]!])), 0.01);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(adamw.mock.calls.length).toBe(6);
    tf.dispose([x, ...Object.values(params)]);
    adam.dispose();
  });

  it('leaves a variable that shares its data with another tensor to tensor ops, so that tensor is untouched', async () => {
    await initBackend('wasm+blas');
    const updates = inPlaceUpdates();
    expect(updates).toBeDefined();
    const base = tf.tensor([1, 2, 3]);
    const shared = tf.variable(base); // a variable shares its initial tensor's data
    const student = tf.tidy(() => tf.variable(tf.zeros([3])));
    expect(updates!.ema(shared, student, 0.5)).toBe(false);
    emaUpdate({ x: shared }, { x: student }, 0.5);
    expect(Array.from(shared.dataSync())).toEqual([0.5, 1, 1.5]);
    expect(Array.from(base.dataSync())).toEqual([1, 2, 3]);
    // Now the variable owns its data, and the next update is done in place.
    expect(updates!.ema(shared, student, 0.5)).toBe(true);
    expect(Array.from(shared.dataSync())).toEqual([0.25, 0.5, 0.75]);
    tf.dispose([base, shared, student]);
  });

  it('is not offered on plain wasm', async () => {
    await initBackend('wasm');
    expect(inPlaceUpdates()).toBeUndefined();
  });
});
