import { beforeAll, describe, expect, it } from 'vitest';
import { seededNormal } from '../../src/flow/noise.js';
import { maxAbsDiff, useTestBackend } from '../helpers/tf.js';

describe('seeded sampling noise', () => {
  beforeAll(useTestBackend);

  it('is the same on every call for every seed, 0 included (tfjs alone draws seed 0 from Math.random)', () => {
    for (const seed of [0, 1, 12345]) {
      const a = seededNormal([64], seed).dataSync();
      const b = seededNormal([64], seed).dataSync();
      expect(maxAbsDiff(a, b), `seed ${seed}`).toBe(0);
    }
    expect(maxAbsDiff(seededNormal([64], 0).dataSync(), seededNormal([64], 1).dataSync())).toBeGreaterThan(0.1);
  });
});
