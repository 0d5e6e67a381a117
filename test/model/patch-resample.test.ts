import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { importIntoWorldModel } from '../../src/model/import.js';
import { resamplePatchTensor } from '../../src/model/patch-resample.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import { worldModelForward } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';

const config = (h: number, w: number, patchSize: number) =>
  worldModelConfig('tiny', {
    imageHeight: h,
    imageWidth: w,
    patchSize,
    actionDim: 3,
    languageDim: 0,
    maxFrames: 3,
    prediction: 'residual',
    actionConditioning: 'shift',
  });

/** Every pixel repeated over a 2x2 block: [B, F, H, W, C] -> [B, F, 2H, 2W, C]. */
const enlarge = (t: tf.Tensor5D) => {
  const [b, f, h, w, c] = t.shape;
  return tf.tile(t.reshape([b, f, h, 1, w, 1, c]), [1, 1, 1, 2, 1, 2, 1]).reshape([b, f, 2 * h, 2 * w, c]) as tf.Tensor5D;
};

describe('patch resampling (a 32x40 model with patch 4 as the start of a 64x80 one with patch 8)', () => {
  it('predicts on pictures made of 2x2 blocks exactly what the small model predicts, enlarged', () => {
    const small = config(16, 20, 4);
    const large = config(32, 40, 8);
    const rng = new Rng(3);
    // Random values in every trained tensor, so that the zero-initialised output layers take part too.
    const weights = worldModelInit(small, 1);
    for (const [name, t] of weights) if (name !== 'pos_embed') t.data = Float32Array.from(t.data as Float32Array, () => rng.normal() * 0.2);
    const { tensors, report } = importIntoWorldModel(weights, large, 0);
    expect(report.resampled.sort()).toEqual(
      ['action_shift.movable.weight', 'final_layer.linear.bias', 'final_layer.linear.weight', 'x_embedder.proj.weight'].sort(),
    );
    expect(report.initialised.map((i) => i.name)).toEqual(['pos_embed']);
    const [ps, pl] = [toTf(weights), toTf(tensors)];
    const frames = tf.randomUniform([2, 3, 16, 20, 3], -1, 1, 'float32', 5) as tf.Tensor5D;
    const batch = (f: tf.Tensor5D) => ({
      frames: f,
      frameT: tf.tensor2d([0, 0.3, 0.8, 0, 0.5, 1], [2, 3]),
      actions: tf.randomNormal([2, 2, 3], 0, 1, 'float32', 6) as tf.Tensor3D,
      actionT: tf.tensor2d([0.2, 0.7, 0, 1], [2, 2]),
    });
    const a = worldModelForward(ps, small, { ...batch(frames), reference: frames.slice([0, 0], [2, 1]).reshape([2, 16, 20, 3]) });
    const big = enlarge(frames);
    const b = worldModelForward(pl, large, { ...batch(big), reference: big.slice([0, 0], [2, 1]).reshape([2, 32, 40, 3]) });
    expect(tf.max(tf.abs(tf.sub(enlarge(a.frameVelocity), b.frameVelocity))).dataSync()[0]).toBeLessThan(1e-4);
    expect(tf.max(tf.abs(tf.sub(a.actionVelocity, b.actionVelocity))).dataSync()[0]).toBeLessThan(1e-4);
    expect(tf.max(tf.abs(a.frameVelocity)).dataSync()[0]).toBeGreaterThan(0.1);
  });

  it('refuses what is not a whole multiple of the source patch, and other tensors', () => {
    const t = { dtype: 'float32' as const, shape: [2, 48], data: new Float32Array(96) };
    expect(resamplePatchTensor('x_embedder.proj.weight', t, [2, 3 * 6 * 6], 3)).toMatch(
      /not a patch a whole number of times smaller with 3 channels/,
    );
    expect(resamplePatchTensor('x_embedder.proj.weight', t, [3, 192], 3)).toMatch(/source shape/);
    expect(resamplePatchTensor('blocks.0.attn.qkv.weight', t, [2, 192], 3)).toMatch(/source shape/);
    expect(resamplePatchTensor('x_embedder.proj.weight', t, [2, 192], 3)).toBeInstanceOf(Float32Array);
  });
});
