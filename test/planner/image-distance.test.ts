import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { changeDistance, differingFraction, pyramidDistance, pyramidLevels, reachDistance } from '../../src/planner/image-distance.js';
import { useTestBackend } from '../helpers/tf.js';

/** A 32x40 grey image with a 3x3 white square whose left column is at x. */
function blob(x: number): Float32Array {
  const d = new Float32Array(32 * 40 * 3).fill(-0.5);
  for (let r = 14; r < 17; r++) for (let c = x; c < x + 3; c++) for (let k = 0; k < 3; k++) d[(r * 40 + c) * 3 + k] = 1;
  return d;
}

describe('multi-scale pixel distance', () => {
  beforeAll(useTestBackend);

  it('levels halve down to a few pixels', () => {
    expect(pyramidLevels(32, 40)).toBe(4); // 32x40, 16x20, 8x10, 4x5
    expect(pyramidLevels(64, 80)).toBe(5);
    expect(pyramidLevels(6, 6)).toBe(1);
  });

  it('keeps falling as a small part approaches its goal position, where plain MSE is flat', () => {
    const goal = tf.tensor3d(blob(30), [32, 40, 3]);
    const xs = [14, 17, 20, 23, 26, 28, 30];
    const cands = tf.tensor4d(Float32Array.from(xs.flatMap((x) => [...blob(x)])), [xs.length, 32, 40, 3]);
    const pyr = Array.from(pyramidDistance(cands, goal).dataSync());
    const mse = Array.from(tf.mean(tf.square(tf.sub(cands, goal.expandDims(0))), [1, 2, 3]).dataSync());
    // Non-overlapping positions all have the same plain MSE...
    expect(new Set(mse.slice(0, 5).map((v) => v.toFixed(6))).size).toBe(1);
    // ...but the multi-scale distance decreases at every step towards the goal and is 0 there.
    for (let i = 1; i < pyr.length; i++) expect(pyr[i]!).toBeLessThan(pyr[i - 1]!);
    expect(pyr[pyr.length - 1]).toBeCloseTo(0, 6);
  });

  it('change maps ignore contrast: a part over a dark background counts as much as over a bright one', () => {
    // Background: bright on the left half, dark on the right; the part (value 0) is 0.3 from the dark side.
    const scene = (x: number | undefined) => {
      const d = new Float32Array(32 * 40 * 3);
      for (let r = 0; r < 32; r++) for (let c = 0; c < 40; c++) for (let k = 0; k < 3; k++) d[(r * 40 + c) * 3 + k] = c < 20 ? 0.9 : -0.3;
      if (x !== undefined)
        for (let r = 14; r < 17; r++) for (let c = x; c < x + 3; c++) for (let k = 0; k < 3; k++) d[(r * 40 + c) * 3 + k] = 0;
      return tf.tensor3d(d, [32, 40, 3]);
    };
    const now = scene(2); // on the bright side
    const goal = scene(12);
    // Hiding the part on the dark side, far from its goal, lowers plain pixel error below staying put...
    const hide = scene(30);
    const stay = scene(2);
    const px = (a: tf.Tensor3D) => pyramidDistance(a.expandDims(0) as tf.Tensor4D, goal).dataSync()[0]!;
    expect(px(hide)).toBeLessThan(px(stay));
    // ...but not the change-map distance, which prefers the move towards the goal over both.
    const ch = (a: tf.Tensor3D) => changeDistance(a.expandDims(0) as tf.Tensor4D, now, goal).dataSync()[0]!;
    const toward = scene(6);
    expect(ch(toward)).toBeLessThan(ch(stay));
    expect(ch(toward)).toBeLessThan(ch(hide));
    expect(ch(goal)).toBeCloseTo(0, 6);
    expect(differingFraction(goal, goal)).toBe(0);
    // The differing share only falls once the part overlaps its goal position (what goal sequencing needs).
    expect(differingFraction(scene(11), goal)).toBeLessThan(differingFraction(toward, goal));
    expect(differingFraction(hide, goal)).toBe(differingFraction(toward, goal));
  });

  it('reach distance falls in proportion as a part approaches a far goal, where the change distance levels off', () => {
    // The part starts at x = 2 and should go to x = 34; candidates moved it to 5, 8, ..., 34.
    const now = tf.tensor3d(blob(2), [32, 40, 3]);
    const goal = tf.tensor3d(blob(34), [32, 40, 3]);
    const xs = [5, 8, 11, 14, 17, 20, 23, 26, 29, 34];
    const cands = tf.tensor4d(Float32Array.from(xs.flatMap((x) => [...blob(x)])), [xs.length, 32, 40, 3]);
    const reach = Array.from(reachDistance(cands, now, goal).dataSync());
    // Centres (2+x)/2 and (2+34)/2 lie (34-x)/2 px apart, over the 31 x 39 diagonal.
    xs.forEach((x, i) => expect(reach[i]).toBeCloseTo((34 - x) / 2 / Math.hypot(31, 39), 4));
    // The change distance is flat over the first moves (no overlap with the goal at any pyramid level yet):
    // the first 3 px earn a tenth of the whole way with reach, almost nothing with change.
    const change = Array.from(changeDistance(cands, now, goal).dataSync());
    const firstStepGain = (v: number[]) => (v[0]! - v[1]!) / (v[0]! - v[v.length - 1]!);
    expect(firstStepGain(reach)).toBeGreaterThan(0.09);
    expect(firstStepGain(change)).toBeLessThan(0.01);
    // Nothing to reach when the goal is the current picture; standing still while the goal moved costs the most.
    expect(Array.from(reachDistance(cands, now, now).dataSync())).toEqual(xs.map(() => 0));
    expect(reachDistance(now.expandDims(0) as tf.Tensor4D, now, goal).dataSync()[0]).toBe(1);
  });
});
