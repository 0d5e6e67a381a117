import { describe, expect, it } from 'vitest';
import { optimize } from '../../src/planner/optimizer.js';
import { moveCap, pinnedDims } from '../../src/planner/pinned-actions.js';
import { denormaliseActions, type ActionStats } from '../../src/core/action-stats.js';
import { validatePreset } from '../../src/planner/presets.js';
import type { Observation } from '../../src/core/types.js';
import { SimOraclePlanning } from '../../src/planner/sim-oracle.js';
import { subgoals } from '../../src/sim/goals.js';
import { Rng } from '../../src/util/rng.js';
import { ARM_AND_GRIPPER_STATS, rawTestPreset } from '../helpers/presets.js';

// Yaw +-0.3 rad maps to +-1; the gripper -1..1 to itself; x is asymmetric so 0 is not the middle.
const names = ['world_vector.x', 'rotation_delta.yaw', 'gripper_closedness_action'];
const stats: ActionStats = {
  names,
  count: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  min: [-0.02, -0.3, -1],
  max: [0.06, 0.3, 1],
  q01: [-0.02, -0.3, -1],
  q99: [0.06, 0.3, 1],
};
const base = rawTestPreset({
  name: 'p',
  optimizer: { iterations: 3, initStd: 0.6 },
  graceMs: 1000,
  cost: { representation: 0, pixel: 0, pyramid: 1, actionMagnitude: 0, terminal: 1 },
});

describe('pinned action parts', () => {
  it('holds raw values and takes the gripper from the goal, in the normalised space', () => {
    const pins = validatePreset(
      { ...base, actions: { hold: { 'world_vector.x': 0, 'rotation_delta.yaw': 0.15 }, gripper: 'goal' } },
      'p.json',
    ).actions;
    expect(pinnedDims(pins, stats, { images: [], gripper: 'closed' })).toEqual([
      { index: 0, value: -0.5 },
      { index: 1, value: 0.5 },
      { index: 2, value: 1 },
    ]);
    // A goal that does not say how the gripper is leaves it to the search.
    expect(pinnedDims(pins, stats, { images: [] }).map((p) => p.index)).toEqual([0, 1]);
    expect(pinnedDims(pins, stats, { images: [], gripper: 'open' })[2]).toEqual({ index: 2, value: -1 });
    // Presets without the section search everything.
    expect(pinnedDims(validatePreset(base, 'p.json').actions, stats, { images: [], gripper: 'closed' })).toEqual([]);
  });

  it('every candidate the cost sees, and the plan, carry the pinned values; the rest is searched', async () => {
    const seen: number[][] = [];
    const cost = async (c: Float32Array, n: number) => {
      for (let i = 0; i < n * 2; i++) seen.push([c[i * 3]!, c[i * 3 + 1]!, c[i * 3 + 2]!]);
      // Prefers x at +0.8: a cost the pinned dimension would otherwise follow.
      return Float32Array.from({ length: n }, (_, i) => (c[i * 6]! - 0.8) ** 2 + (c[i * 6 + 2]! - 0.8) ** 2);
    };
    const warm = new Float32Array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9]);
    const r = await optimize(
      {
        kind: 'cem',
        horizon: 2,
        actionDim: 3,
        candidates: 6,
        iterations: 3,
        elites: 2,
        temperature: 0.1,
        initStd: 0.6,
        minStd: 0.05,
        proposalFraction: 0,
        warmStartPad: 'repeat',
      },
      cost,
      { rng: new Rng(1), warmStart: warm, pinned: [{ index: 1, value: 0.25 }] },
    );
    expect(seen).toHaveLength(3 * 6 * 2);
    expect(seen.every((a) => a[1] === 0.25)).toBe(true);
    expect(new Set(seen.map((a) => a[0])).size).toBeGreaterThan(10);
    expect(r.best[1]).toBe(0.25);
    expect(r.best[4]).toBe(0.25);
  });

  it('a preset holding an action the model does not have is refused when the planner is built', () => {
    const preset = validatePreset({ ...base, actions: { hold: { 'rotation_delta.roll': 0 } } }, 'p.json');
    expect(() => new SimOraclePlanning(preset, { imageHeight: 32, imageWidth: 40 }, stats)).toThrow(
      /planner preset 'p', actions: pinned action 'rotation_delta.roll' is not one of the model's actions/,
    );
  });

  it("the expert's storyboard says when the gripper is closed (pick-can: open above and around the can, closed once grasped)", async () => {
    const board = await subgoals('pick-can', 0, 16, 20, 'phase');
    expect(board.map((g) => g.gripper)).toEqual(['open', 'open', 'closed', 'closed']);
  });

  describe('move cap: a speed limit (actions.speed), lower while the gripper holds something (actions.carry)', () => {
    const s4 = ARM_AND_GRIPPER_STATS;
    const pins = validatePreset({ ...base, actions: { gripper: 'goal', carry: { speed: 0.03, minOpening: 0 } } }, 'p.json').actions;
    const moveOf = (seq: Float32Array, t: number) =>
      Math.hypot(...Array.from(denormaliseActions(s4, seq.subarray(t * 4, t * 4 + 3 + 1)).subarray(0, 3)));

    const withFingers = (opening: number): Observation => ({
      image: new Uint8Array(0),
      height: 0,
      width: 0,
      stamp: 0,
      proprio: Float32Array.from([0.5, 0, 0.3, 0, opening]),
    });

    it('scales a move longer than the cap down to it while holding, keeping its direction; short moves, open goals and empty fingers are untouched', () => {
      const cap = moveCap(pins, s4, { images: [], gripper: 'closed' }, withFingers(0.021))!;
      // Step 0: 6 cm along x and 6 cm along -z (8.5 cm); step 1: 1.2 cm along y.
      const seq = new Float32Array([1, 0, -1, 1, 0, 0.2, 0, 1]);
      cap(seq);
      expect(moveOf(seq, 0)).toBeCloseTo(0.03, 6);
      expect(seq[0]).toBeCloseTo(-seq[2]!, 6); // still diagonal
      expect(seq[3]).toBe(1); // the gripper part is left alone
      expect(Array.from(seq.subarray(4))).toEqual([0, Math.fround(0.2), 0, 1]);
      expect(moveCap(pins, s4, { images: [], gripper: 'open' }, withFingers(0.021))).toBeUndefined();
      // Closed on nothing (pushing a drawer shut): full speed. No reported opening: assume something is held.
      expect(moveCap(pins, s4, { images: [], gripper: 'closed' }, withFingers(-0.03))).toBeUndefined();
      expect(moveCap(pins, s4, { images: [], gripper: 'closed' })).toBeDefined();
      expect(moveCap(validatePreset(base, 'p.json').actions, s4, { images: [], gripper: 'closed' })).toBeUndefined();
    });

    it('every candidate the cost sees is within the cap', async () => {
      const cap = moveCap(pins, s4, { images: [], gripper: 'closed' })!;
      let longest = 0;
      const cost = async (c: Float32Array, n: number) => {
        for (let t = 0; t < n * 2; t++) longest = Math.max(longest, moveOf(c, t));
        return Float32Array.from({ length: n }, (_, i) => -c[i * 8]!); // wants to go fast along +x
      };
      const r = await optimize(
        {
          kind: 'cem',
          horizon: 2,
          actionDim: 4,
          candidates: 6,
          iterations: 3,
          elites: 2,
          temperature: 0.1,
          initStd: 0.6,
          minStd: 0.05,
          proposalFraction: 0,
          warmStartPad: 'repeat',
        },
        cost,
        { rng: new Rng(2), constrain: cap },
      );
      expect(longest).toBeLessThanOrEqual(0.03 + 1e-6);
      expect(longest).toBeGreaterThan(0.029);
      expect(moveOf(r.best, 0)).toBeLessThanOrEqual(0.03 + 1e-6);
    });

    it('actions.speed caps every move; carry lowers it further while holding', () => {
      const both = validatePreset(
        { ...base, actions: { gripper: 'goal', speed: 0.054, carry: { speed: 0.03, minOpening: 0 } } },
        'p.json',
      ).actions;
      const capped = (goal: 'open' | 'closed', fingers: number) => {
        const seq = new Float32Array([1, -1, -1, 0]); // 6 cm on every axis: 10.4 cm long
        moveCap(both, s4, { images: [], gripper: goal }, withFingers(fingers))!(seq);
        return seq;
      };
      expect(moveOf(capped('open', 0.09), 0)).toBeCloseTo(0.054, 6);
      expect(moveOf(capped('closed', -0.03), 0)).toBeCloseTo(0.054, 6); // closed on nothing
      expect(moveOf(capped('closed', 0.021), 0)).toBeCloseTo(0.03, 6);
      const s = capped('open', 0.09);
      expect(s[0]).toBeCloseTo(-s[1]!, 6); // direction kept
      // A carry faster than speed does not lift the limit.
      const slowAll = validatePreset({ ...base, actions: { speed: 0.02, carry: { speed: 0.03, minOpening: 0 } } }, 'p.json').actions;
      const seq = new Float32Array([1, 0, 0, 0]);
      moveCap(slowAll, s4, { images: [], gripper: 'closed' })!(seq);
      expect(moveOf(seq, 0)).toBeCloseTo(0.02, 6);
      expect(() => validatePreset({ ...base, actions: { speed: 0 } }, 'p.json')).toThrow(
        /p.json: 'actions.speed' must be a number in \[0.001, 1\], got 0/,
      );
      expect(
        () =>
          new SimOraclePlanning(
            validatePreset({ ...base, actions: { speed: 0.05 } }, 'p.json'),
            { imageHeight: 32, imageWidth: 40 },
            stats,
          ),
      ).toThrow(/actions\.speed needs the model's actions world_vector\.x/);
    });

    it('a cap on a model without world-vector actions is refused when the planner is built', () => {
      const preset = validatePreset({ ...base, actions: { carry: { speed: 0.03, minOpening: 0 } } }, 'p.json');
      expect(() => new SimOraclePlanning(preset, { imageHeight: 32, imageWidth: 40 }, stats)).toThrow(
        /actions\.carry needs the model's actions world_vector\.x/,
      );
    });
  });
});
