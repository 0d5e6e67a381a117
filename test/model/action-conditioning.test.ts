import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit, worldModelLayout } from '../../src/model/params.js';
import { disposeContext, encodeContext, forwardWithContext, worldModelForward } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomiseWeights, randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', {
  imageHeight: 16,
  imageWidth: 24,
  actionDim: 5,
  languageDim: 0,
  maxFrames: 4,
  actionConditioning: 'adaln',
});
const n = (16 / 4) * (24 / 4);

describe('adaLN action conditioning', () => {
  beforeAll(useTestBackend);

  it('adds its own parameters only when asked for', () => {
    expect(worldModelLayout(cfg).get('action_embedder.cond.weight')).toEqual([64, 5]);
    expect(worldModelLayout({ ...cfg, actionConditioning: undefined }).has('action_embedder.cond.weight')).toBe(false);
  });

  it('keeps the context cache exact and frame causality: an action changes only the frame it leads into (and later ones)', () => {
    const params = toTf(randomiseWeights(worldModelInit(cfg, 7), 107, 0.1));
    const rng = new Rng(7);
    const frames = randomTensor(rng, [2, 4, 16, 24, 3], 0.5) as tf.Tensor5D;
    const actions = randomTensor(rng, [2, 3, 5], 0.5) as tf.Tensor3D;
    const frameT = tf.tensor3d(
      Float32Array.from({ length: 2 * 4 * n }, (_, i) => (Math.floor(i / n) % 4 < 2 ? 0 : 0.2 + 0.6 * rng.next())),
      [2, 4, n],
    );
    const actionT = tf.zeros([2, 3]) as tf.Tensor2D;
    const full = worldModelForward(params, cfg, { frames, frameT, actions, actionT });
    const ctx = encodeContext(
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
    // Change only the action into frame 3.
    const changed = tf.concat([actions.slice([0, 0, 0], [2, 2, -1]), tf.add(actions.slice([0, 2, 0], [2, 1, -1]), 0.7)], 1) as tf.Tensor3D;
    const alt = worldModelForward(params, cfg, { frames, frameT, actions: changed, actionT });
    const frame = (o: typeof full, f: number) => o.frameVelocity.slice([0, f, 0, 0, 0], [2, 1, -1, -1, -1]).dataSync();
    expect(maxAbsDiff(frame(alt, 2), frame(full, 2))).toBeLessThan(1e-6);
    expect(maxAbsDiff(frame(alt, 3), frame(full, 3))).toBeGreaterThan(1e-3);
    // With the action token blind (its embedding zeroed), the action still reaches the frame through adaLN.
    const blind = { ...params, 'action_embedder.proj.weight': tf.zerosLike(params['action_embedder.proj.weight']!) };
    const a = worldModelForward(blind, cfg, { frames, frameT, actions, actionT });
    const b = worldModelForward(blind, cfg, { frames, frameT, actions: changed, actionT });
    expect(maxAbsDiff(frame(a, 3), frame(b, 3))).toBeGreaterThan(1e-3);
    const tokenOnly = { ...cfg, actionConditioning: undefined };
    const c = worldModelForward(blind, tokenOnly, { frames, frameT, actions, actionT });
    const d = worldModelForward(blind, tokenOnly, { frames, frameT, actions: changed, actionT });
    expect(maxAbsDiff(frame(c, 3), frame(d, 3))).toBeLessThan(1e-6);
  });
});
