/**
 * The small networks' training loop resumes: a run stopped after its last resume file continues
 * from it to the same weights as an uninterrupted run, and a resume file of another run, or one
 * that is not a resume file, is refused with the file's name.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '../../src/checkpoint/safetensors.js';
import type { TensorMap } from '../../src/checkpoint/tensor-map.js';
import { UserError } from '../../src/core/errors.js';
import { fitSmallNet, resumeFileFor, type BatchLoss, type SmallNetFitOptions } from '../../src/train/small-net-fit.js';
import { maxAbsDiff, useTestBackend } from '../helpers/tf.js';

/** Fits y = 2 x0 - x1 with a linear layer; the noise on y is drawn from the loop's stream, so a resumed stream must be the same. */
const batchLoss: BatchLoss = (rows, rng) => {
  const x = tf.tensor2d(
    rows.flatMap((r) => [Math.sin(r), Math.cos(3 * r)]),
    [rows.length, 2],
  );
  const y = tf.tensor2d(
    rows.map((r) => 2 * Math.sin(r) - Math.cos(3 * r) + 0.1 * rng.uniform(-1, 1)),
    [rows.length, 1],
  );
  return {
    loss: (v) => tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, v['w']!), v['b']!)) as tf.Scalar,
    inputs: [x, y],
  };
};

const init = (): TensorMap =>
  new Map([
    ['w', { dtype: 'float32', shape: [2, 1], data: Float32Array.from([0.1, -0.2]) }],
    ['b', { dtype: 'float32', shape: [1], data: Float32Array.from([0]) }],
  ]);
const ROWS = Array.from({ length: 50 }, (_, i) => i);
const OPTS: SmallNetFitOptions = { steps: 9, batchSize: 8, lr: 0.05, seed: 3 };
const fit = (o: SmallNetFitOptions) => fitSmallNet(init(), ROWS, o, batchLoss, () => 0);
const flat = (t: TensorMap) => [...(t.get('w')!.data as Float32Array), ...(t.get('b')!.data as Float32Array)];

describe('the small networks training loop', () => {
  beforeAll(useTestBackend);

  it('continues a stopped run from its resume file to the weights of an uninterrupted run', async () => {
    const straight = await fit(OPTS);
    const path = resumeFileFor(join(mkdtempSync(join(tmpdir(), 'sfwm-fit-')), 'net.safetensors'));
    expect(path).toMatch(/net\.resume\.safetensors$/);
    const resume = { path, every: 3, fingerprint: 'run A' };
    const stop = (step: number) => {
      if (step === 7) throw new Error('stopped');
    };
    await expect(fit({ ...OPTS, resume, onProgress: stop })).rejects.toThrow('stopped');
    expect(existsSync(path)).toBe(true);

    const resumedAt: number[] = [];
    const seen: number[] = [];
    const resumed = await fit({ ...OPTS, resume: { ...resume, onResume: (s) => resumedAt.push(s) }, onProgress: (s) => seen.push(s) });
    expect(resumedAt).toEqual([6]);
    expect(seen).toEqual([7, 8, 9]);
    expect(maxAbsDiff(flat(resumed.tensors), flat(straight.tensors))).toBeLessThan(1e-6);
    // The loop learned something, so equal weights are not equal by accident.
    expect(maxAbsDiff(flat(straight.tensors), flat(init()))).toBeGreaterThan(0.05);
  });

  it("refuses another run's resume file and a file that is not one, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-fit-'));
    const path = join(dir, 'net.resume.safetensors');
    await expect(
      fit({
        ...OPTS,
        resume: { path, every: 4, fingerprint: 'run A' },
        onProgress: (s) => {
          if (s === 5) throw new Error('stopped');
        },
      }),
    ).rejects.toThrow('stopped');
    const other = fit({ ...OPTS, resume: { path, every: 4, fingerprint: 'run B' } });
    await expect(other).rejects.toThrow(UserError);
    await expect(fit({ ...OPTS, resume: { path, every: 4, fingerprint: 'run B' } })).rejects.toThrow(
      `${path}: the resume file of a run with other flags or data`,
    );
    writeFileSync(path, serializeSafetensors(init(), { format: 'something else' }));
    await expect(fit({ ...OPTS, resume: { path, every: 4, fingerprint: 'run A' } })).rejects.toThrow(
      `${path}: not a selfflow-wm resume file`,
    );
  });
});
