import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { actionShiftBias, tokenGrid } from '../../src/model/action-shift.js';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit, worldModelLayout } from '../../src/model/params.js';
import { disposeContext, encodeContext, forwardWithContext, worldModelForward, type FrameBatch } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { maxAbs, maxAbsDiff, randomiseWeights, randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', {
  imageHeight: 16,
  imageWidth: 24,
  actionDim: 5,
  languageDim: 0,
  maxFrames: 4,
  actionConditioning: 'shift',
});
const gw = 24 / 4;
const n = (16 / 4) * gw;

function batchOf(seed: number): FrameBatch {
  const rng = new Rng(seed);
  return {
    frames: randomTensor(rng, [2, 4, 16, 24, 3], 0.5) as tf.Tensor5D,
    actions: randomTensor(rng, [2, 3, 5], 0.5) as tf.Tensor3D,
    frameT: tf.tensor3d(
      Float32Array.from({ length: 2 * 4 * n }, (_, i) => (Math.floor(i / n) % 4 < 2 ? 0 : 0.2 + 0.6 * rng.next())),
      [2, 4, n],
    ),
    actionT: tf.zeros([2, 3]) as tf.Tensor2D,
  };
}

function shiftParams(seed: number, gain: number) {
  const host = randomiseWeights(worldModelInit(cfg, seed), seed + 100, 0.1);
  (host.get('action_shift.gain')!.data as Float32Array).fill(gain);
  return toTf(host);
}

describe('action-shift attention prior', () => {
  beforeAll(useTestBackend);

  it('adds adaLN conditioning plus per-head shift parameters, starting as a same-position prior', () => {
    const layout = worldModelLayout(cfg);
    expect(layout.get('action_embedder.cond.weight')).toEqual([64, 5]);
    expect(layout.get('action_shift.proj.weight')).toEqual([8, 5]);
    expect(layout.get('action_shift.gain')).toEqual([4]);
    expect(layout.get('action_shift.movable.weight')).toEqual([4, 48]);
    const init = worldModelInit(cfg, 1);
    expect(Array.from(init.get('action_shift.gain')!.data as Float32Array)).toEqual([1, 1, 1, 1]);
    expect(maxAbs(init.get('action_shift.proj.weight')!.data as Float32Array)).toBe(0);
    expect(worldModelLayout({ ...cfg, actionConditioning: 'adaln' }).has('action_shift.gain')).toBe(false);
  });

  it('places each token on the patch grid, action tokens off it', () => {
    const g = tokenGrid([0, 0, 0, 1, 1, 1, 1], 3);
    expect(g.row).toEqual([0, 0, 0, -1, 0, 0, 0]);
    expect(g.col).toEqual([0, 1, 2, -1, 0, 1, 2]);
  });

  it('biases a patch towards the previous-frame patch its action says the content came from', () => {
    // Frame 0: 2x3 patches; frame 1: action token + 2x3 patches. Head 0 maps action[0] to a row shift,
    // head 1 action[1] to a column shift.
    const frameOf = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1];
    const grid = tokenGrid(frameOf, 3);
    const p = {
      'action_shift.proj.weight': tf.tensor2d(
        [
          [1, 0],
          [0, 0],
          [0, 0],
          [0, 1],
        ],
        [4, 2],
      ),
      'action_shift.proj.bias': tf.zeros([4]),
      'action_shift.gain': tf.tensor1d([2, 0.5]),
    };
    const bias = actionShiftBias(
      p,
      2,
      tf.tensor3d([[[1, -1]]]),
      tf.zeros([1, 1]) as tf.Tensor2D,
      grid,
      grid,
      tf.ones([1, 2, 13]),
    ).arraySync()[0]!;
    const q = 7 + 1 * 3 + 1; // frame 1, row 1, col 1
    // Head 0: displacement (1, 0), so the patch came from row 0, col 1 (token 1).
    expect(bias[0]![q]![1]).toBeCloseTo(0);
    expect(bias[0]![q]![4]).toBeCloseTo(-2 * 1); // row 1, col 1: off by one row
    expect(bias[0]![q]![0]).toBeCloseTo(-2 * 1); // row 0, col 0: off by one column
    // Head 1: displacement (0, -1): from row 1, col 2 (token 5).
    expect(bias[1]![q]![5]).toBeCloseTo(0);
    expect(bias[1]![q]![3]).toBeCloseTo(-0.5 * 4); // row 1, col 0
    // Only frame-1 patches looking at frame-0 patches are biased.
    expect(maxAbs(bias[0]![q]!.slice(6))).toBe(0);
    expect(maxAbs(bias[0]![2]!)).toBe(0);
    expect(maxAbs(bias[0]![6]!)).toBe(0);
    // A fully noised action (a policy query) switches the prior off; half noise halves it.
    const noised = actionShiftBias(p, 2, tf.tensor3d([[[1, -1]]]), tf.ones([1, 1]) as tf.Tensor2D, grid, grid, tf.ones([1, 2, 13]));
    expect(maxAbs(noised.dataSync())).toBe(0);
    // Frame 2 looking back at frame 0 adds up both actions' displacements.
    const frames3 = tokenGrid([...frameOf, 2, 2, 2, 2, 2, 2, 2], 3);
    const two = actionShiftBias(
      p,
      2,
      tf.tensor3d([
        [
          [1, 0],
          [0, 1],
        ],
      ]),
      tf.zeros([1, 2]) as tf.Tensor2D,
      frames3,
      frames3,
      tf.ones([1, 2, 20]),
    ).arraySync()[0]!;
    const q2 = 14 + 1 * 3 + 2; // frame 2, row 1, col 2
    expect(two[0]![q2]![2]).toBeCloseTo(0); // head 0: (1, 0) in total, from row 0, col 2
    expect(two[1]![q2]![4]).toBeCloseTo(0); // head 1: (0, 1) in total, from row 1, col 1
    expect(two[1]![q2]![7 + 4]).toBeCloseTo(0); // ... and from frame 1 the same (the first action does not move head 1)
    expect(two[0]![q2]![7 + 5]).toBeCloseTo(0); // head 0 from frame 1: the second action moves it by 0
    // A key that does not move with the action (background) keeps its place.
    const still = actionShiftBias(
      p,
      2,
      tf.tensor3d([[[1, -1]]]),
      tf.zeros([1, 1]) as tf.Tensor2D,
      grid,
      grid,
      tf.zeros([1, 2, 13]),
    ).arraySync()[0]!;
    expect(still[0]![q]![4]).toBeCloseTo(0);
    expect(still[0]![q]![1]).toBeCloseTo(-2);
    const half = actionShiftBias(
      p,
      2,
      tf.tensor3d([[[1, -1]]]),
      tf.fill([1, 1], 0.5) as tf.Tensor2D,
      grid,
      grid,
      tf.ones([1, 2, 13]),
    ).arraySync()[0]!;
    expect(half[0]![q]![4]).toBeCloseTo(-1);
  });

  it('with zero gains is exactly the adaLN model', () => {
    const params = shiftParams(3, 0);
    const b = batchOf(3);
    const shift = worldModelForward(params, cfg, b).frameVelocity.dataSync();
    const adaln = worldModelForward(params, { ...cfg, actionConditioning: 'adaln' }, b).frameVelocity.dataSync();
    expect(maxAbsDiff(shift, adaln)).toBeLessThan(1e-6);
  });

  it('keeps the context cache exact, and reaches the frame even with the action token and adaLN blind', () => {
    const params = shiftParams(5, 0.7);
    const b = batchOf(5);
    const full = worldModelForward(params, cfg, b);
    const ctx = encodeContext(
      params,
      cfg,
      b.frames.slice([0, 0, 0, 0, 0], [2, 2, -1, -1, -1]) as tf.Tensor5D,
      b.actions.slice([0, 0, 0], [2, 1, -1]) as tf.Tensor3D,
    );
    const future = {
      frames: b.frames.slice([0, 2, 0, 0, 0], [2, 2, -1, -1, -1]) as tf.Tensor5D,
      frameT: b.frameT.slice([0, 2, 0], [2, 2, -1]),
      actions: b.actions.slice([0, 1, 0], [2, 2, -1]) as tf.Tensor3D,
      actionT: tf.zeros([2, 2]) as tf.Tensor2D,
    };
    const cached = forwardWithContext(params, cfg, ctx, future);
    const ref = full.frameVelocity.slice([0, 2, 0, 0, 0], [2, 2, -1, -1, -1]).dataSync();
    expect(maxAbsDiff(cached.frameVelocity.dataSync(), ref) / maxAbs(ref)).toBeLessThan(1e-5);
    disposeContext(ctx);
    const blind = {
      ...params,
      'action_embedder.proj.weight': tf.zerosLike(params['action_embedder.proj.weight']!),
      'action_embedder.cond.weight': tf.zerosLike(params['action_embedder.cond.weight']!),
    };
    const changed = tf.concat(
      [b.actions.slice([0, 0, 0], [2, 2, -1]), tf.add(b.actions.slice([0, 2, 0], [2, 1, -1]), 0.7)],
      1,
    ) as tf.Tensor3D;
    const frame3 = (a: tf.Tensor3D) =>
      worldModelForward(blind, cfg, { ...b, actions: a })
        .frameVelocity.slice([0, 3, 0, 0, 0], [2, 1, -1, -1, -1])
        .dataSync();
    expect(maxAbsDiff(frame3(b.actions), frame3(changed))).toBeGreaterThan(1e-3);
  });

  it('gives the same frames on the batched (cpu) and per-head (wasm) attention paths', async () => {
    const params = shiftParams(9, 0.7);
    const b = batchOf(9);
    const wasm = worldModelForward(params, cfg, b).frameVelocity.dataSync();
    await tf.setBackend('cpu');
    try {
      const cpu = worldModelForward(params, cfg, b).frameVelocity.dataSync();
      expect(maxAbsDiff(cpu, wasm) / maxAbs(wasm)).toBeLessThan(1e-4);
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('trains its displacement and gain: the loss has gradients for both', () => {
    const params = shiftParams(11, 0.3);
    const b = batchOf(11);
    const names = ['action_shift.proj.weight', 'action_shift.gain'];
    const grads = tf.grads((w: tf.Tensor, g: tf.Tensor) => {
      const out = worldModelForward({ ...params, [names[0]!]: w, [names[1]!]: g }, cfg, b).frameVelocity;
      return tf.mean(tf.square(out));
    })(names.map((k) => params[k]!));
    for (const g of grads) expect(maxAbs(g.dataSync())).toBeGreaterThan(1e-6);
  });
});
