import { describe, expect, it } from 'vitest';
import { episodeSetup } from '../../src/cli/command.js';
import { HEAD_CAMERA } from '../../src/sim/camera.js';
import { shiftAlongRay } from '../../src/sim/goal-noise.js';
import type { Subgoal } from '../../src/sim/goals.js';

const picture = (x: number, y: number, z: number, extra: Partial<Subgoal> = {}): Subgoal => ({
  observation: { image: new Uint8Array(12), height: 2, width: 2, stamp: 0, proprio: Float32Array.from([x, y, z, 0.3, 0.07]) },
  stage: 0,
  expertSteps: 5,
  name: 'p',
  tolerance: 0.01,
  ...extra,
});

describe('goal positions moved along the camera ray (a diagnostic for oracle presets)', () => {
  const board = Array.from({ length: 4000 }, (_, i) => picture(0.4 + 0.0001 * i, -0.1 + 0.00005 * i, 0.05 + 0.00003 * i));

  it('moves each recorded position along the ray from the camera by normal noise of the given standard deviation', () => {
    const moved = shiftAlongRay(board, 0.03, 7);
    const shifts = moved.map((g, i) => {
      const p = board[i]!.observation.proprio!;
      const q = g.observation.proprio!;
      const ray = [0, 1, 2].map((k) => p[k]! - HEAD_CAMERA.pos[k]!);
      const step = [0, 1, 2].map((k) => q[k]! - p[k]!);
      const len = Math.hypot(...ray);
      const along = step.reduce((s, v, k) => s + (v * ray[k]!) / len, 0);
      // Nothing across the ray: what one camera sees of the position stays.
      const across = Math.hypot(...step.map((v, k) => v - (along * ray[k]!) / len));
      expect(across).toBeLessThan(1e-6);
      // Yaw and opening stay as recorded.
      expect([q[3], q[4]]).toEqual([p[3], p[4]]);
      return along;
    });
    const mean = shifts.reduce((a, b) => a + b, 0) / shifts.length;
    const sd = Math.sqrt(shifts.reduce((a, b) => a + (b - mean) ** 2, 0) / shifts.length);
    expect(Math.abs(mean)).toBeLessThan(0.003);
    expect(sd).toBeGreaterThan(0.028);
    expect(sd).toBeLessThan(0.032);
  });

  it('is the same for the same seed, differs for another, and drops the recorded tolerance of a moved picture', () => {
    const a = shiftAlongRay(board.slice(0, 5), 0.02, 3);
    const b = shiftAlongRay(board.slice(0, 5), 0.02, 3);
    const c = shiftAlongRay(board.slice(0, 5), 0.02, 4);
    expect(a.map((g) => [...g.observation.proprio!])).toEqual(b.map((g) => [...g.observation.proprio!]));
    expect(a[0]!.observation.proprio![0]).not.toBe(c[0]!.observation.proprio![0]);
    expect(a.every((g) => g.tolerance === undefined)).toBe(true);
    // The board it was given is left as it was.
    expect(board[0]!.observation.proprio![0]).toBeCloseTo(0.4, 6);
    expect(board[0]!.tolerance).toBe(0.01);
  });

  it('leaves pictures without a recorded position, and the whole board at noise 0, as they are; refuses a negative noise', () => {
    const bare: Subgoal = { ...picture(0, 0, 0), observation: { image: new Uint8Array(12), height: 2, width: 2, stamp: 0 } };
    expect(shiftAlongRay([bare], 0.05, 1)[0]).toBe(bare);
    expect(shiftAlongRay(board, 0, 1)).toBe(board);
    expect(() => shiftAlongRay(board, -0.01, 1)).toThrow(/at least 0 m/);
  });

  it('--goal-noise is metres, 0 when absent, and refused outside 0-0.5 m with the flag named', () => {
    expect(episodeSetup({}).goalNoise).toBe(0);
    expect(episodeSetup({ 'goal-noise': '0.02' }).goalNoise).toBe(0.02);
    expect(() => episodeSetup({ 'goal-noise': '-0.01' })).toThrow(/--goal-noise must be between 0 and 0.5 m, got -0.01/);
    expect(() => episodeSetup({ 'goal-noise': '2' })).toThrow(/--goal-noise must be between 0 and 0.5 m/);
    expect(() => episodeSetup({ 'goal-noise': 'far' })).toThrow(/--goal-noise expects a number, got 'far'/);
  });
});
