/**
 * Data-parallel training: two worker threads, each on its share of the batch, take the same step
 * as this thread on the whole batch (same noise, same gradients summed, one optimizer step).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig, type FramePrediction, type WorldModelConfig } from '../../src/core/model-config.js';
import { worldModelInit } from '../../src/model/params.js';
import { DEFAULT_ADAMW } from '../../src/train/adamw.js';
import { shares, startStepRunner } from '../../src/train/data-parallel.js';
import { stepRng } from '../../src/train/finetune.js';
import { DEFAULT_OBJECTIVE, drawNoise, type ObjectiveOptions } from '../../src/train/objective.js';
import { Trainer, type StepStats } from '../../src/train/trainer.js';
import type { WindowLike } from '../../src/train/training-window.js';
import { Rng } from '../../src/util/rng.js';
import { ensureDist } from '../helpers/dist.js';
import { squareWindow } from '../helpers/synthetic-windows.js';
import { maxAbsDiff, randomiseWeights, useTestBackend } from '../helpers/tf.js';

const backend = process.env.SELFFLOW_TEST_BACKEND ?? 'wasm';

describe('shares', () => {
  it('splits a batch into contiguous ranges whose sizes differ by at most one, never more shares than samples', () => {
    expect(shares(5, 2)).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect(shares(8, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 8],
    ]);
    expect(shares(1, 4)).toEqual([[0, 1]]);
  });
});

describe('a data-parallel step', () => {
  beforeAll(async () => {
    ensureDist();
    await useTestBackend();
  });

  const k = 1;
  const h = 2;

  const config = (prediction: FramePrediction) =>
    worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 2, languageDim: 0, prediction });

  async function train(
    cfg: WorldModelConfig,
    objective: ObjectiveOptions,
    workers: number,
    batches: WindowLike[][],
  ): Promise<{ student: Float32Array[]; teacher: Float32Array[]; stats: StepStats[] }> {
    // Adam's eps is 1e-6 here, not the default 1e-8. Some gradient components are zero in exact arithmetic: the
    // directions of the key projection that shift every attention logit of a query alike, which softmax ignores. Their
    // float values are rounding noise, and the noise differs with how the batch is split and which kernel sums it (the
    // OpenBLAS kernels pick by matrix size). With eps 1e-8, Adam turns that noise into steps of about the learning rate
    // with random sign: 1.3e-5 apart on wasm+blas. With eps 1e-6 those steps shrink, and the real weights agree to about 1e-7 on
    // wasm and wasm+blas alike.
    const trainer = new Trainer(
      cfg,
      objective,
      randomiseWeights(worldModelInit(cfg, 0), 5),
      undefined,
      { ...DEFAULT_ADAMW, weightDecay: 0.01, eps: 1e-6 },
      0.9,
    );
    const runner = await startStepRunner(trainer, { workers, cfg, contextFrames: k, futureFrames: h, backend });
    const stats: StepStats[] = [];
    try {
      for (const [step, windows] of batches.entries()) {
        const draw = drawNoise(stepRng(11, step), cfg, windows.length, k + h, k, objective);
        stats.push(await runner.step(windows, draw, 1e-3, 0.9));
      }
    } finally {
      await runner.close();
    }
    const read = (p: Record<string, tf.Variable>) => Object.values(p).map((v) => v.dataSync() as Float32Array);
    const out = { student: read(trainer.student), teacher: read(trainer.teacher), stats };
    trainer.dispose();
    return out;
  }

  // Uneven shares (3 + 2), policy-query and world-model samples mixed, two steps so the second starts from published weights.
  const rng = new Rng(4);
  const batches = [0, 1].map(() => Array.from({ length: 5 }, () => squareWindow(rng, 16, 16, k, h, 2)));

  // The residual frame loss is divided by the whole batch's no-motion error, the velocity loss is not.
  // With a motion weight, the divisor is the whole batch's motion-weighted no-motion error.
  for (const [kind, prediction, motionWeight] of [
    ['selfflow', 'residual', 0],
    ['vanilla', 'velocity', 0],
    ['vanilla', 'residual', 10],
  ] as const) {
    it(`${kind}, ${prediction}, motion weight ${motionWeight}: two workers leave the same student and EMA weights, to 1e-5, as one thread on the whole batch`, async () => {
      const objective = { ...DEFAULT_OBJECTIVE, kind, policyFraction: 0.5, motionWeight };
      const cfg = config(prediction);
      const one = await train(cfg, objective, 1, batches);
      const two = await train(cfg, objective, 2, batches);
      let moved = 0;
      for (const [i, w] of one.student.entries()) {
        expect(maxAbsDiff(two.student[i]!, w)).toBeLessThan(1e-5);
        expect(maxAbsDiff(two.teacher[i]!, one.teacher[i]!)).toBeLessThan(1e-5);
      }
      const initial = randomiseWeights(worldModelInit(cfg, 0), 5);
      const names = [...initial.keys()].filter((n) => n !== 'pos_embed');
      for (const [i, name] of names.entries())
        moved = Math.max(moved, maxAbsDiff(one.student[i]!, initial.get(name)!.data as Float32Array));
      // The steps did change the weights (a comparison of two untouched copies would pass trivially).
      expect(moved).toBeGreaterThan(1e-4);
      for (const [i, s] of one.stats.entries()) {
        const t = two.stats[i]!;
        expect(t.loss).toBeCloseTo(s.loss, 5);
        expect(t.frame).toBeCloseTo(s.frame, 5);
        expect(t.action).toBeCloseTo(s.action, 5);
        expect(t.ssl).toBeCloseTo(s.ssl, 5);
        expect(t.gradNorm).toBeCloseTo(s.gradNorm, 4);
      }
      if (kind === 'selfflow') expect(one.stats[0]!.ssl).toBeGreaterThan(0);
      expect(one.stats.some((s) => s.action > 0)).toBe(true);
    }, 120_000);
  }
});
