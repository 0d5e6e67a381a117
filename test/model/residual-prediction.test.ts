import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { contextCache, disposeContext, imagine } from '../../src/flow/imagine.js';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import { forwardWithContext, worldModelForward } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomiseWeights, randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', {
  imageHeight: 16,
  imageWidth: 24,
  actionDim: 5,
  languageDim: 0,
  maxFrames: 4,
  prediction: 'residual',
});
const n = (16 / 4) * (24 / 4);

describe('residual (clean-frame) prediction', () => {
  beforeAll(useTestBackend);

  it('an untrained model (zero final layer) imagines the last context frame unchanged', () => {
    const params = toTf(worldModelInit(cfg, 3));
    const rng = new Rng(3);
    const ctxFrames = randomTensor(rng, [1, 2, 16, 24, 3], 0.5) as tf.Tensor5D;
    const ctx = contextCache(params, cfg, ctxFrames, tf.zeros([1, 1, 5]) as tf.Tensor3D);
    const out = imagine(
      params,
      cfg,
      ctx,
      randomTensor(rng, [4, 2, 5]) as tf.Tensor3D,
      {},
      { steps: 3, integrator: 'euler', seed: 1 },
    ).frames;
    // imagine() clips to the pixel range [-1, 1].
    const last = ctxFrames.slice([0, 1, 0, 0, 0], [1, 1, -1, -1, -1]).clipByValue(-1, 1).dataSync();
    const got = out.dataSync();
    for (let c = 0; c < 8; c++) expect(maxAbsDiff(got.subarray(c * last.length, (c + 1) * last.length), last)).toBeLessThan(1e-5);
    disposeContext(ctx);
  });

  it('derives v = (x_t - x̂) / t, and the context cache matches the full forward', () => {
    const params = toTf(randomiseWeights(worldModelInit(cfg, 4), 104, 0.1));
    const rng = new Rng(4);
    const frames = randomTensor(rng, [2, 4, 16, 24, 3], 0.5) as tf.Tensor5D;
    const actions = randomTensor(rng, [2, 3, 5], 0.5) as tf.Tensor3D;
    const frameT = tf.tensor3d(
      Float32Array.from({ length: 2 * 4 * n }, (_, i) => (Math.floor(i / n) % 4 < 2 ? 0 : 0.1 + 0.8 * rng.next())),
      [2, 4, n],
    );
    const reference = frames.slice([0, 1, 0, 0, 0], [2, 1, -1, -1, -1]).reshape([2, 16, 24, 3]) as tf.Tensor4D;
    const full = worldModelForward(params, cfg, { frames, frameT, actions, actionT: tf.zeros([2, 3]) as tf.Tensor2D, reference });
    // Moving the reference by d moves the clean estimate by d, so the velocity moves by -d / t.
    const shifted = worldModelForward(params, cfg, {
      frames,
      frameT,
      actions,
      actionT: tf.zeros([2, 3]) as tf.Tensor2D,
      reference: tf.add(reference, 0.1) as tf.Tensor4D,
    });
    const t = frameT.slice([0, 2, 0], [1, 1, 1]).dataSync()[0]!;
    const dv = shifted.frameVelocity
      .slice([0, 2, 0, 0, 0], [1, 1, 4, 4, 1])
      .sub(full.frameVelocity.slice([0, 2, 0, 0, 0], [1, 1, 4, 4, 1]))
      .dataSync();
    for (const v of dv) expect(v).toBeCloseTo(-0.1 / t, 3);
    const ctx = contextCache(
      params,
      cfg,
      frames.slice([0, 0, 0, 0, 0], [2, 2, -1, -1, -1]) as tf.Tensor5D,
      actions.slice([0, 0, 0], [2, 1, -1]) as tf.Tensor3D,
    );
    const cached = forwardWithContext(params, cfg, ctx, {
      frames: frames.slice([0, 2, 0, 0, 0], [2, 2, -1, -1, -1]) as tf.Tensor5D,
      frameT: frameT.slice([0, 2, 0], [2, 2, -1]),
      actions: actions.slice([0, 1, 0], [2, 2, -1]) as tf.Tensor3D,
      actionT: tf.zeros([2, 2]) as tf.Tensor2D,
    });
    const ref = full.frameVelocity.slice([0, 2, 0, 0, 0], [2, 2, -1, -1, -1]).dataSync();
    expect(maxAbsDiff(cached.frameVelocity.dataSync(), ref) / maxAbs(ref)).toBeLessThan(1e-5);
    disposeContext(ctx);
  });

  it('refuses a full forward without the reference frame', () => {
    const params = toTf(worldModelInit(cfg, 5));
    const frames = tf.zeros([1, 3, 16, 24, 3]) as tf.Tensor5D;
    expect(() =>
      worldModelForward(params, cfg, {
        frames,
        frameT: tf.zeros([1, 3]),
        actions: tf.zeros([1, 2, 5]) as tf.Tensor3D,
        actionT: tf.zeros([1, 2]) as tf.Tensor2D,
      }),
    ).toThrow(/reference/);
  });
});
