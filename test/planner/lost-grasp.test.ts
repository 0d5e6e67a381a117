import { describe, expect, it } from 'vitest';
import type { Observation } from '../../src/core/types.js';
import { HELD_STEPS, LostGrasp } from '../../src/planner/lost-grasp.js';
import { loadPlannerPreset, recordedGoalFields, validatePreset } from '../../src/planner/presets.js';

const fingers = (opening: number): Observation => ({
  image: new Uint8Array(3),
  height: 1,
  width: 1,
  stamp: 0,
  proprio: Float32Array.from([0.5, 0, 0.2, 0, opening]),
});
const settings = { holdingAbove: 0.01, holdingBelow: 0.075 };
const run = (openings: number[]) => {
  const t = new LostGrasp(settings);
  return openings.map((o) => t.update(fingers(o)));
};

describe('LostGrasp (preset section regrasp)', () => {
  it('fires once when fingers that held an object close on nothing', () => {
    // Open, close on a 5 cm block, hold it through the lift, then it slips out.
    expect(run([0.09, 0.045, 0.043, 0.04, 0.03, 0.02, 0.005, 0.0, 0.0])).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
      true,
      false,
      false,
    ]);
  });

  it('does the same for a knob that slips out of the fingers during a pull', () => {
    expect(run([0.09, 0.021, 0.021, 0.021, -0.002]).at(-1)).toBe(true);
  });

  it(`does not fire for fingers that close on nothing: they pass the holding band in fewer than ${HELD_STEPS} steps`, () => {
    expect(run([0.09, 0.045, 0.0, -0.03, -0.03])).toEqual([false, false, false, false, false]);
  });

  it('forgets a hold once the fingers open (a release), so closing them later on nothing is no loss', () => {
    expect(run([0.09, 0.056, 0.056, 0.056, 0.09, 0.09, 0.0, 0.0]).some(Boolean)).toBe(false);
  });

  it('ignores observations without a finger opening, and reset forgets the hold', () => {
    const t = new LostGrasp(settings);
    t.update(fingers(0.05));
    t.update(fingers(0.05));
    expect(t.update({ ...fingers(0), proprio: undefined })).toBe(false);
    t.reset();
    expect(t.update(fingers(0))).toBe(false);
  });
});

describe('preset section regrasp', () => {
  it('is validated, reads no recorded goal field, and the experiment preset carries it', () => {
    const wm = loadPlannerPreset('wm-cem-read');
    const p = validatePreset({ ...wm, regrasp: settings }, 'x.json');
    expect(p.regrasp).toEqual(settings);
    expect(recordedGoalFields(p)).toEqual([]);
    expect(loadPlannerPreset('experiments/read-regrasp').regrasp).toEqual(settings);
    expect(() => validatePreset({ ...wm, regrasp: { holdingAbove: 0.05, holdingBelow: 0.02 } }, 'x.json')).toThrow(
      /x\.json: 'regrasp\.holdingBelow' \(0\.02\) must exceed 'regrasp\.holdingAbove' \(0\.05\)/,
    );
    expect(() => validatePreset({ ...wm, regrasp: { ...settings, holdingAbove: -1 } }, 'x.json')).toThrow(
      /x\.json: 'regrasp\.holdingAbove' must be a number in \[0, 1\], got -1/,
    );
    expect(() => validatePreset({ ...wm, regrasp: { ...settings, steps: 3 } }, 'x.json')).toThrow(
      /x\.json: 'regrasp\.steps' is not a preset field/,
    );
  });
});
