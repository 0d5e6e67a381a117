import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { pyramidDistance, pyramidLevels } from '../../src/planner/image-distance.js';
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
});
