import * as tf from '@tensorflow/tfjs';
import { loadBlasAddon } from '../../src/backend/blas-addon.js';
import { initBackend } from '../../src/backend/backends.js';
import type { TensorMap } from '../../src/checkpoint/tensor-map.js';
import { Rng } from '../../src/util/rng.js';

/**
 * Tests run on the embedded wasm backend, as the README's newcomer commands do.
 * SELFFLOW_TEST_BACKEND runs them on another, e.g. `SELFFLOW_TEST_BACKEND=wasm+blas npx vitest run`.
 */
export async function useTestBackend(): Promise<void> {
  await initBackend(process.env.SELFFLOW_TEST_BACKEND ?? 'wasm');
}

/** Whether the native OpenBLAS addon loads here (wasm+blas tests skip where it does not). */
export function blasLoads(): boolean {
  try {
    loadBlasAddon();
    return true;
  } catch {
    return false;
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Replaces zero-initialised weights with noise: adaLN-Zero init would hide bugs (as the fixture notes). */
export function randomiseWeights(tensors: TensorMap, seed: number, scale = 0.05): TensorMap {
  const rng = new Rng(seed);
  for (const [name, t] of tensors) {
    if (name === 'pos_embed') continue;
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + rng.normal() * scale;
  }
  return tensors;
}

export function randomTensor(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal() * scale),
    shape,
  );
}
