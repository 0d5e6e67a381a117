import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { contextCache, disposeContext, imagine } from '../../src/flow/imagine.js';
import { proposeActions } from '../../src/flow/policy-query.js';
import { integrate } from '../../src/flow/sampler.js';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import { worldModelForward } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomiseWeights, randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 3, languageDim: 0 });

describe('imagination with a context cache', () => {
  beforeAll(useTestBackend);

  it('gives the same frames as re-running the full sequence at every flow step (euler and heun)', () => {
    const p = toTf(randomiseWeights(worldModelInit(cfg, 1), 2, 0.1));
    const rng = new Rng(3);
    const ctxFrames = randomTensor(rng, [1, 2, 16, 16, 3], 0.5) as tf.Tensor5D;
    const ctxActions = randomTensor(rng, [1, 1, 3], 0.5) as tf.Tensor3D;
    const cand = randomTensor(rng, [3, 2, 3], 0.5) as tf.Tensor3D;
    const noise = randomTensor(rng, [3, 2, 16, 16, 3]) as tf.Tensor5D;
    for (const integrator of ['euler', 'heun'] as const) {
      const ctx = contextCache(p, cfg, ctxFrames, ctxActions);
      const cached = imagine(p, cfg, ctx, cand, {}, { steps: 3, integrator, noise }).frames;
      disposeContext(ctx);
      const full = integrate(
        (x, t) => {
          const frames = tf.concat([tf.tile(ctxFrames, [3, 1, 1, 1, 1]), x], 1) as tf.Tensor5D;
          const frameT = tf.concat([tf.zeros([3, 2]), tf.fill([3, 2], t)], 1);
          const actions = tf.concat([tf.tile(ctxActions, [3, 1, 1]), cand], 1) as tf.Tensor3D;
          return worldModelForward(p, cfg, { frames, frameT, actions, actionT: tf.zeros([3, 3]) as tf.Tensor2D }).frameVelocity.slice(
            [0, 2, 0, 0, 0],
            [3, 2, -1, -1, -1],
          );
        },
        noise,
        3,
        integrator,
      );
      const ref = tf.clipByValue(full, -1, 1).dataSync();
      expect(maxAbsDiff(cached.dataSync(), ref) / maxAbs(ref), integrator).toBeLessThan(1e-5);
    }
  });

  it("action guidance w scales, in one flow step, how far two actions' futures lie apart by exactly 1 + w", () => {
    const p = toTf(randomiseWeights(worldModelInit(cfg, 8), 9, 0.05));
    const rng = new Rng(10);
    const ctx = contextCache(
      p,
      cfg,
      randomTensor(rng, [1, 2, 16, 16, 3], 0.5) as tf.Tensor5D,
      randomTensor(rng, [1, 1, 3], 0.5) as tf.Tensor3D,
    );
    const cand = randomTensor(rng, [2, 2, 3], 0.8) as tf.Tensor3D;
    // The same flow noise for both, so their futures differ by their actions alone.
    const noise = tf.tile(randomTensor(rng, [1, 2, 16, 16, 3], 0.05), [2, 1, 1, 1, 1]) as tf.Tensor5D;
    const frames = (actionGuidance?: number) => {
      const f = imagine(p, cfg, ctx, cand, {}, { steps: 1, integrator: 'euler', noise, actionGuidance }).frames;
      return [f.slice([0], [1]).dataSync(), f.slice([1], [1]).dataSync()] as [Float32Array, Float32Array];
    };
    const [a0, b0] = frames();
    const [aZero, bZero] = frames(0);
    expect(maxAbsDiff(aZero, a0)).toBe(0);
    expect(maxAbsDiff(bZero, b0)).toBe(0);
    for (const w of [0.5, 2]) {
      const [a, b] = frames(w);
      // The frames are clipped to [-1, 1]; the relation holds where no clip acted.
      const free = Array.from(a0.keys()).filter((i) => [a0, b0, a, b].every((f) => Math.abs(f[i]!) < 0.999));
      expect(free.length, `w = ${w}: pixels inside the clip range`).toBeGreaterThan(a0.length / 4);
      const gap0 = free.map((i) => a0[i]! - b0[i]!);
      const gap = free.map((i) => a[i]! - b[i]!);
      expect(maxAbs(gap0)).toBeGreaterThan(1e-3);
      expect(
        maxAbsDiff(
          gap,
          gap0.map((v) => (1 + w) * v),
        ) / maxAbs(gap0),
        `w = ${w}`,
      ).toBeLessThan(1e-3);
      expect(maxAbsDiff(a, a0), `w = ${w} moves the frames themselves`).toBeGreaterThan(1e-3);
    }
    disposeContext(ctx);
  });

  it('policy proposals are finite, in range, and depend on the context', () => {
    const p = toTf(randomiseWeights(worldModelInit(cfg, 4), 5, 0.1));
    const rng = new Rng(6);
    const a = randomTensor(rng, [1, 2, 16, 16, 3], 0.5) as tf.Tensor5D;
    const acts = randomTensor(rng, [1, 1, 3], 0.5) as tf.Tensor3D;
    const ctxA = contextCache(p, cfg, a, acts);
    const ctxB = contextCache(p, cfg, tf.neg(a) as tf.Tensor5D, acts);
    const pa = proposeActions(p, cfg, ctxA, 4, 3, {}, 2, 7).dataSync();
    const pb = proposeActions(p, cfg, ctxB, 4, 3, {}, 2, 7).dataSync();
    expect(pa.length).toBe(4 * 3 * 3);
    expect(pa.every((v) => Number.isFinite(v) && v >= -1 && v <= 1)).toBe(true);
    expect(maxAbsDiff(pa, pb)).toBeGreaterThan(1e-4);
    disposeContext(ctxA);
    disposeContext(ctxB);
  });
});
