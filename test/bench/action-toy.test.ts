import { beforeAll, describe, expect, it } from 'vitest';
import { movingSquareBatch } from '../../src/bench/action-toy.js';
import { Rng } from '../../src/util/rng.js';
import { useTestBackend } from '../helpers/tf.js';

describe('moving-square action check', () => {
  beforeAll(useTestBackend);

  it('moves the square by exactly the action and leaves the background', () => {
    const b = movingSquareBatch(new Rng(3), 6);
    const px = b.frames.arraySync();
    const act = b.actions.arraySync();
    for (let i = 0; i < 6; i++) {
      const red = (f: number) => {
        const cells: [number, number][] = [];
        px[i]![f]!.forEach((row, y) => row.forEach((c, x) => c[0]! > 0.8 && cells.push([x, y])));
        return cells;
      };
      const [before, after] = [red(0), red(1)];
      expect(before.length).toBe(16);
      expect(after.length).toBe(16);
      const [dx, dy] = [Math.round(act[i]![0]![0]! * 3), Math.round(act[i]![0]![1]! * 3)];
      expect(after).toEqual(before.map(([x, y]) => [x + dx, y + dy]));
    }
  });
});
