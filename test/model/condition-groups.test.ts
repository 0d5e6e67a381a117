/**
 * adaLN on distinct conditioning rows gives the trunk's outputs and gradients of the per-token form,
 * on plain wasm and, where the addon loads, on wasm+blas (their products take different paths).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/backends.js';
import { worldModelConfig } from '../../src/core/model-config.js';
import { conditionGroups } from '../../src/model/condition-groups.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import { finalNorm, runTrunk } from '../../src/model/trunk.js';
import { patchGrid, worldModelForward } from '../../src/model/world-model.js';
import { Rng } from '../../src/util/rng.js';
import { blasLoads, maxAbs, maxAbsDiff, randomiseWeights, randomTensor } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, languageDim: 0, maxFrames: 3 });
const d = cfg.dit.hidden_size;

/** Two samples of three frames (slots 1, 3, 5) with 5 tokens each and action tokens (slots 2, 4) between them. */
const SLOTS = [1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 4, 5, 5, 5, 5, 5];
const T = SLOTS.length;
/** Each token's (sample, slot, time) row, numbered by hand: what grouping must find. */
const ROW_OF = [
  [0, 0, 0, 0, 0, 1, 2, 3, 2, 3, 2, 4, 5, 5, 6, 5, 5],
  [0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 3, 4, 5, 4, 4, 5],
];
/** Dual-timestep times: frame 0 clean, the later frames at two levels each; sample 1 repeats a level across slots. */
function times(): Float32Array {
  const s0 = [0, 0, 0, 0, 0, 0.3, 0.3, 0.7, 0.3, 0.7, 0.3, 0.5, 0.5, 0.5, 0.2, 0.5, 0.5];
  const s1 = [0, 0, 0, 0, 0, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.9, 0.4, 0.4, 0.9];
  return Float32Array.from([...s0, ...s1]);
}

describe('conditionGroups', () => {
  it('groups tokens by sample, slot and time, and declines when groups would save too little', () => {
    const g = conditionGroups(SLOTS, times(), 2, d)!;
    // Sample 0: slot 1 @0, slot 2 @0.3, slot 3 @0.3 and @0.7, slot 4 @0.5, slot 5 @0.5 and @0.2 = 7 groups;
    // sample 1: slot 1, 2, 3, 4 one each, slot 5 @0.4 and @0.9 = 6 (padded to 7 with an empty row).
    expect(g.pick.shape).toEqual([2, 7, T]);
    expect(g.spread.shape).toEqual([2, T, 7]);
    const spread = g.spread.arraySync();
    expect(spread[0]![6]!.indexOf(1)).toBe(2); // sample 0's first slot-3 token at 0.3
    expect(spread[0]![7]!.indexOf(1)).toBe(3); // ... and at 0.7
    expect(spread[0]![8]!.indexOf(1)).toBe(2);
    expect(spread[1]![6]!.indexOf(1)).toBe(spread[1]![7]!.indexOf(1));
    expect(g.pick.arraySync()[1]![6]!.every((v) => v === 0)).toBe(true);
    // At hidden size 16, 7 groups are more than 16 / 4: per-token modulation is cheaper.
    expect(conditionGroups(SLOTS, times(), 2, 16)).toBeUndefined();
    expect(() => conditionGroups(SLOTS, times().slice(1), 2, d)).toThrow(/33 times for 2 samples of 17 tokens/);
    tf.dispose([g.pick, g.spread]);
  });

  for (const backend of ['wasm', 'wasm+blas']) {
    it.skipIf(backend === 'wasm+blas' && !blasLoads())(`leaves the trunk's outputs and gradients unchanged on ${backend}`, async () => {
      await initBackend(backend);
      const rng = new Rng(3);
      const params = toTf(randomiseWeights(worldModelInit(cfg, 1), 5, 0.1));
      const groups = conditionGroups(SLOTS, times(), 2, d)!;
      // Per-token conditioning built from one source row per (sample, slot, time), as embedSequence builds it,
      // so that its gradient reaches the source through every token of a group.
      const source = randomTensor(rng, [2, 7, d]);
      const rowOf = tf.oneHot(tf.tensor2d(ROW_OF, [2, T], 'int32'), 7).toFloat() as tf.Tensor3D;
      const x = randomTensor(rng, [2, T, d]) as tf.Tensor3D;
      const weights = randomTensor(rng, [2, T, d]);
      const names = Object.keys(params).filter((n) => n.startsWith('blocks.') || n.startsWith('final_layer.adaLN'));
      const run = (grouped: boolean) =>
        tf.tidy(() => {
          const f = (src: tf.Tensor, ...ws: tf.Tensor[]) => {
            const p = { ...params, ...Object.fromEntries(names.map((n, i) => [n, ws[i]!])) };
            const c = tf.matMul(rowOf, src) as tf.Tensor3D;
            const trunk = runTrunk(p, cfg.dit, x, c, grouped ? { groups, rawFeaturesLayer: 1 } : { rawFeaturesLayer: 1 });
            const out = finalNorm(p, trunk.x, c, grouped ? groups : undefined);
            return tf.add(tf.sum(tf.mul(out, weights)), tf.sum(trunk.raw!)) as tf.Scalar;
          };
          const { value, grads } = tf.valueAndGrads(f)([source, ...names.map((n) => params[n]!)]);
          return [value, ...grads].map((t) => t.dataSync().slice());
        });
      const per = run(false);
      const grouped = run(true);
      expect(grouped.length).toBe(per.length);
      per.forEach((want, i) => {
        expect(maxAbsDiff(grouped[i]!, want) / Math.max(1, maxAbs(want))).toBeLessThan(2e-5);
      });
      // The check has teeth: the modulation weights' gradients are not zero.
      expect(maxAbs(per[1 + names.indexOf('blocks.0.adaLN_modulation.1.weight')]!)).toBeGreaterThan(1e-3);
      tf.dispose([...Object.values(params), groups.pick, groups.spread, source, rowOf, x, weights]);
    });
  }

  it('gives the world model the outputs of per-token conditioning, with actions and language in its rows', async () => {
    await initBackend('wasm');
    const wm = worldModelConfig('tiny', {
      imageHeight: 16,
      imageWidth: 16,
      actionDim: 3,
      languageDim: 8,
      maxFrames: 3,
      actionConditioning: 'adaln',
    });
    const { n } = patchGrid(wm);
    const rng = new Rng(9);
    const params = toTf(randomiseWeights(worldModelInit(wm, 2), 6, 0.1));
    const frames = randomTensor(rng, [2, 3, 16, 16, 3], 0.5) as tf.Tensor5D;
    const actions = randomTensor(rng, [2, 2, 3]) as tf.Tensor3D;
    const language = randomTensor(rng, [2, 8]) as tf.Tensor2D;
    // Frames at equal times: only their slots (the action leading into each) tell their rows apart.
    const perFrame = [0.4, 0.4, 0.7, 0.2, 0.2, 0.2];
    const forward = (frameT: tf.Tensor) =>
      tf.tidy(() =>
        worldModelForward(params, wm, { frames, frameT, actions, actionT: tf.zeros([2, 2]) }, { language })
          .frameVelocity.dataSync()
          .slice(),
      );
    // Per frame: 3 patch slots and 2 action slots per sample, so grouped. Jittered by 1e-6 per token: no two
    // tokens share a time, so every row is computed on its own.
    expect(conditionGroups([1, 2, 3, 4, 5], new Float32Array(10), 2, wm.dit.hidden_size)).toBeDefined();
    const grouped = forward(tf.tensor2d(perFrame, [2, 3]));
    const jitter = Float32Array.from({ length: 2 * 3 * n }, (_, k) => perFrame[Math.floor(k / n)]! + (k % n) * 1e-6);
    const perToken = forward(tf.tensor3d(jitter, [2, 3, n]));
    expect(maxAbsDiff(grouped, perToken) / Math.max(1, maxAbs(perToken))).toBeLessThan(1e-4);
    tf.dispose([...Object.values(params), frames, actions, language]);
  });
});
