/**
 * Without the OpenBLAS addon everything runs on plain wasm, and the reason is reported: in this
 * process through an injected loader, and in a fresh CLI process through SELFFLOW_BLAS=off.
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BlasUnavailableError, setBlasLoader } from '../../src/backend/blas-addon.js';
import { blasKernelsActive } from '../../src/backend/blas-kernels.js';
import { availableParallelism } from 'node:os';
import { BackendUnavailableError, describeChoice, initBackend, shareBlasThreads } from '../../src/backend/backends.js';
import { ensureDist, ROOT } from '../helpers/dist.js';

const MISSING = 'package selfflow-wm-blas is not installed (simulated)';

afterEach(() => setBlasLoader());

describe('wasm+blas fallback', () => {
  it('auto picks plain wasm and says why wasm+blas was passed over', async () => {
    await initBackend('cpu');
    setBlasLoader(() => {
      throw new BlasUnavailableError(MISSING);
    });
    const choice = await initBackend('auto');
    // Where a faster native backend is installed, auto stops there and never tries wasm+blas.
    if (['cuda', 'webgpu', 'tfjs-node'].includes(choice.chosen)) return;
    expect(choice.chosen).toBe('wasm');
    expect(choice.skipped.find((s) => s.backend === 'wasm+blas')?.reason).toBe(MISSING);
    expect(tf.getBackend()).toBe('wasm');
    expect(blasKernelsActive()).toBe(false);
    expect(describeChoice(choice)).toContain(`wasm+blas: ${MISSING}`);
    const c = tf.matMul(tf.ones([2, 3]), tf.ones([3, 4]));
    expect(Array.from(c.dataSync())).toEqual(new Array(8).fill(3));
  });

  it('an explicit wasm+blas that cannot load names the reason and how to install OpenBLAS', async () => {
    setBlasLoader(() => {
      throw new BlasUnavailableError(MISSING);
    });
    const err = await initBackend('wasm+blas').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toContain(MISSING);
    expect((err as Error).message).toContain('apt-get install libopenblas-dev');
  });

  it('selecting wasm after wasm+blas restores the wasm kernels', async () => {
    await initBackend('wasm');
    const plain = tf.getKernel('BatchMatMul', 'wasm');
    const plainFused = tf.getKernel('_FusedMatMul', 'wasm');
    setBlasLoader(() => ({
      gemm: () => undefined,
      epilogue: () => undefined,
      info: () => ({ config: 'OpenBLAS test', corename: 'test', threads: 1 }),
      setThreads: () => undefined,
    }));
    const choice = await initBackend('wasm+blas');
    expect(describeChoice(choice)).toBe('backend: wasm+blas [OpenBLAS test, core test, 1 thread]');
    expect(tf.getKernel('BatchMatMul', 'wasm')).not.toBe(plain);
    await initBackend('wasm');
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(plain);
    expect(tf.getKernel('_FusedMatMul', 'wasm')).toBe(plainFused);
    expect(blasKernelsActive()).toBe(false);
  });

  it('threads that compute side by side share the cores among their OpenBLAS products, unless OPENBLAS_NUM_THREADS is set', async () => {
    const calls: number[] = [];
    setBlasLoader(() => ({
      gemm: () => undefined,
      epilogue: () => undefined,
      info: () => ({ config: 'OpenBLAS test', corename: 'test', threads: 2 }),
      setThreads: (n: number) => void calls.push(n),
    }));
    const saved = process.env.OPENBLAS_NUM_THREADS;
    delete process.env.OPENBLAS_NUM_THREADS;
    try {
      await initBackend('wasm+blas');
      const cores = availableParallelism();
      expect(shareBlasThreads(2)).toMatch(/^OpenBLAS: \d+ threads? per product \(2 threads computing/);
      expect(shareBlasThreads(cores * 2)).toBeDefined();
      expect(calls).toEqual([Math.max(1, Math.floor(cores / 2)), 1]);
      process.env.OPENBLAS_NUM_THREADS = '3';
      expect(shareBlasThreads(2)).toBeUndefined();
      delete process.env.OPENBLAS_NUM_THREADS;
      await initBackend('wasm');
      expect(shareBlasThreads(2)).toBeUndefined();
      expect(calls).toHaveLength(2);
    } finally {
      if (saved === undefined) delete process.env.OPENBLAS_NUM_THREADS;
      else process.env.OPENBLAS_NUM_THREADS = saved;
    }
  });

  it('`selfflow-wm backend` in a fresh process reports wasm+blas unavailable with SELFFLOW_BLAS=off', () => {
    ensureDist();
    const out = execFileSync(process.execPath, [join(ROOT, 'bin/selfflow-wm.js'), 'backend'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, SELFFLOW_BLAS: 'off', SELFFLOW_BACKEND: 'auto' },
    });
    expect(out).toMatch(/wasm\+blas\s+unavailable: disabled by SELFFLOW_BLAS=off/);
    expect(out).toContain('apt-get install libopenblas-dev');
    expect(out).toMatch(/^backend: (wasm|cuda|webgpu|tfjs-node) \(auto/m);
  }, 180_000);
});
