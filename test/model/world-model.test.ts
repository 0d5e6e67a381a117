import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import {
  disposeContext,
  encodeContext,
  forwardWithContext,
  worldModelForward,
  worldModelRawFeatures,
  type FrameBatch,
} from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomiseWeights, randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 24, actionDim: 5, languageDim: 8, maxFrames: 4 });

function setup(seed = 1) {
  const params = toTf(randomiseWeights(worldModelInit(cfg, seed), seed + 100, 0.1));
  const rng = new Rng(seed);
  const b = 3;
  const frames = randomTensor(rng, [b, 4, cfg.imageHeight, cfg.imageWidth, 3], 0.5) as tf.Tensor5D;
  const actions = randomTensor(rng, [b, 3, cfg.actionDim], 0.5) as tf.Tensor3D;
  const language = randomTensor(rng, [b, 8]) as tf.Tensor2D;
  // Context frames 0,1 clean; future frames 2,3 noisy at per-token times; future actions clean.
  const n = (cfg.imageHeight / 4) * (cfg.imageWidth / 4);
  const frameT = tf.tensor3d(
    Float32Array.from({ length: b * 4 * n }, (_, i) => (Math.floor(i / n) % 4 < 2 ? 0 : 0.2 + 0.6 * rng.next())),
    [b, 4, n],
  );
  const actionT = tf.zeros([b, 3]) as tf.Tensor2D;
  return { params, frames, actions, language, frameT, actionT, b, n };
}

describe('world model', () => {
  beforeAll(useTestBackend);

  it('context key/value cache gives the same future velocities as the full forward', () => {
    const s = setup();
    const full = worldModelForward(
      s.params,
      cfg,
      { frames: s.frames, frameT: s.frameT, actions: s.actions, actionT: s.actionT },
      { language: s.language },
    );
    const ctx = encodeContext(
      s.params,
      cfg,
      s.frames.slice([0, 0, 0, 0, 0], [s.b, 2, -1, -1, -1]) as tf.Tensor5D,
      s.actions.slice([0, 0, 0], [s.b, 1, -1]) as tf.Tensor3D,
      { language: s.language },
    );
    const future: FrameBatch = {
      frames: s.frames.slice([0, 2, 0, 0, 0], [s.b, 2, -1, -1, -1]) as tf.Tensor5D,
      frameT: s.frameT.slice([0, 2, 0], [s.b, 2, -1]),
      actions: s.actions.slice([0, 1, 0], [s.b, 2, -1]) as tf.Tensor3D,
      actionT: s.actionT.slice([0, 1], [s.b, 2]) as tf.Tensor2D,
    };
    const cached = forwardWithContext(s.params, cfg, ctx, future, { language: s.language });
    const fullFuture = full.frameVelocity.slice([0, 2, 0, 0, 0], [s.b, 2, -1, -1, -1]).dataSync();
    const scale = maxAbs(fullFuture);
    expect(scale).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(cached.frameVelocity.dataSync(), fullFuture) / scale).toBeLessThan(1e-5);
    const fullActs = full.actionVelocity.slice([0, 1, 0], [s.b, 2, -1]).dataSync();
    expect(maxAbsDiff(cached.actionVelocity.dataSync(), fullActs) / maxAbs(fullActs)).toBeLessThan(1e-5);
    disposeContext(ctx);
  });

  it("raw features stopped after a block equal the full forward's at that block", () => {
    const s = setup(2);
    const batch: FrameBatch = { frames: s.frames, frameT: s.frameT, actions: s.actions, actionT: s.actionT };
    for (let layer = 1; layer <= cfg.dit.depth; layer++) {
      const full = worldModelForward(s.params, cfg, batch, { language: s.language }, { rawLayer: layer }).raw!.dataSync();
      const stopped = worldModelRawFeatures(s.params, cfg, batch, { language: s.language }, layer);
      expect(stopped.shape).toEqual([s.b, 4, s.n, cfg.dit.hidden_size]);
      expect(maxAbs(full)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(stopped.dataSync(), full)).toBe(0);
    }
    expect(() => worldModelRawFeatures(s.params, cfg, batch, {}, cfg.dit.depth + 1)).toThrow(/outside blocks/);
  });

  it('a batch-1 cache serves a batch of candidates', () => {
    const s = setup(2);
    const one = (t: tf.Tensor) => t.slice(0, 1);
    const ctx = encodeContext(
      s.params,
      cfg,
      one(s.frames).slice([0, 0, 0, 0, 0], [1, 2, -1, -1, -1]) as tf.Tensor5D,
      one(s.actions).slice([0, 0, 0], [1, 1, -1]) as tf.Tensor3D,
      { language: one(s.language) as tf.Tensor2D },
    );
    const cands = tf.tile(one(s.frames).slice([0, 2, 0, 0, 0], [1, 2, -1, -1, -1]), [s.b, 1, 1, 1, 1]) as tf.Tensor5D;
    const acts = s.actions.slice([0, 1, 0], [s.b, 2, -1]) as tf.Tensor3D; // a different action sequence per candidate
    const ft = tf.tile(one(s.frameT).slice([0, 2, 0], [1, 2, -1]), [s.b, 1, 1]);
    const batched = forwardWithContext(
      s.params,
      cfg,
      ctx,
      { frames: cands, frameT: ft, actions: acts, actionT: tf.zeros([s.b, 2]) as tf.Tensor2D },
      { language: one(s.language) as tf.Tensor2D },
    );
    for (let i = 0; i < s.b; i++) {
      const fullI = worldModelForward(
        s.params,
        cfg,
        {
          frames: tf.concat([one(s.frames).slice([0, 0, 0, 0, 0], [1, 2, -1, -1, -1]), cands.slice(i, 1)], 1) as tf.Tensor5D,
          frameT: tf.concat([tf.zeros([1, 2, s.n]), ft.slice(i, 1)], 1),
          actions: tf.concat([one(s.actions).slice([0, 0, 0], [1, 1, -1]), acts.slice(i, 1)], 1) as tf.Tensor3D,
          actionT: tf.zeros([1, 3]) as tf.Tensor2D,
        },
        { language: one(s.language) as tf.Tensor2D },
      );
      const ref = fullI.frameVelocity.slice([0, 2, 0, 0, 0], [1, 2, -1, -1, -1]).dataSync();
      expect(maxAbsDiff(batched.frameVelocity.slice(i, 1).dataSync(), ref) / maxAbs(ref)).toBeLessThan(1e-5);
    }
    disposeContext(ctx);
  });

  it('is frame-causal: changing a future frame or action leaves earlier frames untouched', () => {
    const s = setup(3);
    const base = worldModelForward(s.params, cfg, { frames: s.frames, frameT: s.frameT, actions: s.actions, actionT: s.actionT });
    const actions2 = tf.concat(
      [s.actions.slice([0, 0, 0], [s.b, 2, -1]), tf.add(s.actions.slice([0, 2, 0], [s.b, 1, -1]), 1)],
      1,
    ) as tf.Tensor3D;
    const changed = worldModelForward(s.params, cfg, { frames: s.frames, frameT: s.frameT, actions: actions2, actionT: s.actionT });
    const early = (o: typeof base) => o.frameVelocity.slice([0, 0, 0, 0, 0], [s.b, 3, -1, -1, -1]).dataSync();
    expect(maxAbsDiff(early(base), early(changed))).toBeLessThan(1e-6);
    const last = (o: typeof base) => o.frameVelocity.slice([0, 3, 0, 0, 0], [s.b, 1, -1, -1, -1]).dataSync();
    expect(maxAbsDiff(last(base), last(changed))).toBeGreaterThan(1e-4);
  });

  it('conditions on actions, language and per-token timesteps', () => {
    const s = setup(4);
    const run = (over: Partial<FrameBatch>, language = s.language) =>
      worldModelForward(
        s.params,
        cfg,
        { frames: s.frames, frameT: s.frameT, actions: s.actions, actionT: s.actionT, ...over },
        { language },
      ).frameVelocity.dataSync();
    const ref = run({});
    expect(maxAbsDiff(run({ actions: tf.neg(s.actions) as tf.Tensor3D }), ref)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(run({}, tf.neg(s.language) as tf.Tensor2D), ref)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(run({ frameT: tf.mul(s.frameT, 0.5) }), ref)).toBeGreaterThan(1e-4);
  });
});
