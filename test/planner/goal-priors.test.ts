/**
 * Goal priors (preset section `goalPriors`): fingers that have just closed on something stay
 * closed, whatever the state reader sees in the next picture; away from the grasp the reading stands.
 */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/errors.js';
import type { Goal, Observation } from '../../src/core/types.js';
import type { ReadState, StateReader } from '../../src/model/state-reader.js';
import { GoalPriors, type GoalPriorSettings } from '../../src/planner/goal-priors.js';
import { GoalStateReading, loadGoalStateReading } from '../../src/planner/goal-state-reading.js';
import { loadPlannerPreset, recordedGoalFields, validatePreset } from '../../src/planner/presets.js';
import { SimOraclePlanning } from '../../src/planner/sim-oracle.js';
import { WorldModelPlanning } from '../../src/planner/world-model-planner.js';
import { loadInferenceWeights } from '../../src/train/run-files.js';
import { toTf } from '../../src/model/params.js';
import { HEAD_CAMERA, project } from '../../src/sim/camera.js';
import { ARM_AND_GRIPPER_STATS, rawTestPreset } from '../helpers/presets.js';

const SETTINGS: GoalPriorSettings = { holdingAbove: 0.01, atGrasp: 0.04 };
/** The reader's closed threshold for 9 cm fingers. */
const CLOSED_BELOW = 0.0675;
type V3 = [number, number, number];

const robot = (at: V3, opening: number): Observation => ({
  image: new Uint8Array(12),
  width: 2,
  height: 2,
  stamp: 0,
  proprio: Float32Array.from([...at, 0, opening]),
});
const goal = (at: V3, gripper: 'open' | 'closed'): Goal => ({ images: [robot(at, gripper === 'open' ? 0.09 : 0.05)], gripper });

describe('goal priors', () => {
  it('keeps a grasp: near where the fingers closed on something, a picture read as open is taken as closed', () => {
    const priors = new GoalPriors(SETTINGS, CLOSED_BELOW);
    // Open fingers come down, then close on a block (48 mm).
    expect(priors.apply(robot([0.5, -0.3, 0.15], 0.09), goal([0.49, -0.3, 0.1], 'open')).gripper).toBe('open');
    priors.apply(robot([0.5, -0.3, 0.093], 0.048), goal([0.49, -0.3, 0.1], 'open'));
    // The grasp picture, read open and 3 cm off, comes 1 cm from where the fingers closed: closed, aimed as read.
    const misread = goal([0.475, -0.29, 0.11], 'open');
    const taken = priors.apply(robot([0.51, -0.3, 0.093], 0.048), misread);
    expect(taken.gripper).toBe('closed');
    expect(taken.images).toBe(misread.images);
    // So does pick-can's carry picture ("can lifted", 15 cm up and across), read open as the grasp ends.
    expect(priors.apply(robot([0.5, -0.3, 0.1], 0.048), goal([0.42, -0.15, 0.23], 'open')).gripper).toBe('closed');
    // The same goal object stays decided while the robot moves on.
    expect(priors.apply(robot([0.45, -0.3, 0.2], 0.048), misread)).toBe(taken);
    // Closed pictures are never changed.
    const pull = goal([0.48, -0.3, 0.093], 'closed');
    expect(priors.apply(robot([0.5, -0.3, 0.093], 0.048), pull)).toBe(pull);
  });

  it('away from the grasp the reading stands: releases after a carry, and after a stage restart', () => {
    const priors = new GoalPriors(SETTINGS, CLOSED_BELOW);
    priors.apply(robot([0.5, -0.3, 0.093], 0.048), goal([0.5, -0.3, 0.093], 'closed'));
    // 20 cm away: a release picture stays open.
    const release = goal([0.5, -0.1, 0.13], 'open');
    expect(priors.apply(robot([0.5, -0.1, 0.1], 0.048), release)).toBe(release);
    // A restarted stage's first picture, far from where the gripper holds the object: open, as the goal asks.
    const again = goal([0.5, -0.3, 0.2], 'open');
    expect(priors.apply(robot([0.5, -0.1, 0.1], 0.048), again)).toBe(again);
  });

  it('corrects nothing while the fingers hold nothing, and forgets the grasp in a new episode', () => {
    for (const opening of [0, 0.09]) {
      const p = new GoalPriors(SETTINGS, CLOSED_BELOW);
      p.apply(robot([0.5, -0.3, 0.093], opening), goal([0.5, -0.3, 0.093], 'closed'));
      for (const g of [goal([0.49, -0.3, 0.1], 'open'), goal([0.5, -0.1, 0.2], 'open')])
        expect(p.apply(robot([0.5, -0.3, 0.093], opening), g)).toBe(g);
    }
    const priors = new GoalPriors(SETTINGS, CLOSED_BELOW);
    priors.apply(robot([0.5, -0.3, 0.093], 0.048), goal([0.5, -0.3, 0.093], 'closed'));
    priors.reset();
    // Without the reset the first grasp would still count; after it, fingers that close 10 cm away
    // hold something new, and a picture read open where the first grasp was stays open.
    priors.apply(robot([0.5, -0.2, 0.093], 0.048), goal([0.5, -0.2, 0.093], 'closed'));
    const g = goal([0.5, -0.27, 0.093], 'open');
    expect(priors.apply(robot([0.5, -0.3, 0.093], 0.048), g)).toBe(g);
  });

  it('runs on every read goal of a preset with the section, and is valid only with goalState "read"', () => {
    const reader = {
      cfg: { fullOpening: 0.09 },
      // Every picture reads open, 3 cm off the grasp.
      read: (pictures: unknown[]): ReadState[] => pictures.map(() => ({ position: [0.475, -0.29, 0.11], closedness: 0.1 })),
      dispose: () => {},
    } as unknown as StateReader;
    const picture = robot([9, 9, 9], 0);
    const reading = new GoalStateReading(reader, 0, SETTINGS);
    reading.read({ images: [picture] }, robot([0.5, -0.3, 0.093], 0.048));
    expect(reading.read({ images: [picture] }, robot([0.51, -0.3, 0.093], 0.048)).gripper).toBe('closed');
    // Without the section, or after a reset that forgets the grasp, the reading stands.
    expect(new GoalStateReading(reader).read({ images: [picture] }, robot([0.5, -0.3, 0.093], 0.048)).gripper).toBe('open');
    reading.reset();
    expect(reading.read({ images: [picture] }, robot([0.5, -0.3, 0.093], 0.09)).gripper).toBe('open');

    const wm = loadPlannerPreset('wm-cem-read');
    const withPriors = validatePreset({ ...wm, goalPriors: SETTINGS }, 'x.json');
    expect(withPriors.goalPriors).toEqual(SETTINGS);
    expect(recordedGoalFields(withPriors)).toEqual([]);
    expect(() => validatePreset({ ...loadPlannerPreset('wm-cem-fast'), goalPriors: SETTINGS }, 'x.json')).toThrow(
      /x\.json: 'goalPriors' applies only with goalState "read"/,
    );
    expect(() => validatePreset({ ...wm, goalPriors: { ...SETTINGS, atGrasp: -1 } }, 'x.json')).toThrow(
      /x\.json: 'goalPriors\.atGrasp' must be a number in \[0, 1\], got -1/,
    );
    expect(() => validatePreset({ ...wm, goalPriors: { ...SETTINGS, releaseWithin: 0.06 } }, 'x.json')).toThrow(
      /x\.json: 'goalPriors\.releaseWithin' is not a preset field/,
    );
  });

  it('sets a carried object down at the height it was picked up from, along the camera ray of the read placement', () => {
    const settings: GoalPriorSettings = { ...SETTINGS, setDown: { carriedAbove: 0.05, within: 0.06 } };
    expect(() => new GoalPriors(settings, CLOSED_BELOW)).toThrow(/setDown needs the pose of the camera/);
    const priors = new GoalPriors(settings, CLOSED_BELOW, HEAD_CAMERA);
    // The fingers close on a block at 9.3 cm; the lift's picture comes there, and keeps its reading.
    priors.apply(robot([0.5, -0.3, 0.093], 0.048), goal([0.5, -0.3, 0.093], 'closed'));
    const lift = goal([0.5, -0.3, 0.12], 'closed');
    expect(priors.apply(robot([0.5, -0.3, 0.093], 0.048), lift)).toBe(lift);
    // Carried 10 cm up, the placement picture is read 4 cm too high: slid down its ray to 9.3 cm.
    const place = goal([0.45, -0.1, 0.133], 'closed');
    const slid = priors.apply(robot([0.48, -0.2, 0.193], 0.048), place);
    const at = Array.from(slid.images[0]!.proprio!);
    expect(at[2]).toBeCloseTo(0.093, 6);
    const [before, after] = [project(HEAD_CAMERA, [0.45, -0.1, 0.133], 64, 80)!, project(HEAD_CAMERA, at.slice(0, 3) as V3, 64, 80)!];
    expect(after[0]).toBeCloseTo(before[0], 4);
    expect(after[1]).toBeCloseTo(before[1], 4);
    expect(at.slice(3)).toEqual(Array.from(place.images[0]!.proprio!.slice(3)));
    expect(slid.gripper).toBe('closed');
    // A placement read open is set down too, closed: the object is let go only once it is down.
    const dropped = priors.apply(robot([0.48, -0.2, 0.193], 0.048), goal([0.45, -0.1, 0.133], 'open'));
    expect(dropped.gripper).toBe('closed');
    expect(Array.from(dropped.images[0]!.proprio!.slice(0, 3))).toEqual(at.slice(0, 3));
    // The release after it comes with the gripper down at the set-down: read as it looks.
    const release = goal([0.46, -0.1, 0.1], 'open');
    expect(priors.apply(robot([0.46, -0.1, 0.095], 0.048), release)).toBe(release);
    // Read more than 6 cm from that height (a drawer's inside, a carry high above it), or with
    // nothing held: the reading stands.
    for (const g of [goal([0.45, -0.1, 0.3], 'closed'), goal([0.45, -0.1, 0.16], 'closed'), goal([0.45, -0.1, 0.16], 'open')])
      expect(priors.apply(robot([0.48, -0.2, 0.193], 0.048), g)).toBe(g);
    const empty = new GoalPriors(settings, CLOSED_BELOW, HEAD_CAMERA);
    empty.apply(robot([0.5, -0.3, 0.093], 0.0), goal([0.5, -0.3, 0.093], 'closed'));
    expect(empty.apply(robot([0.48, -0.2, 0.193], 0.0), place)).toBe(place);
    // Without the section nothing slides.
    const plain = new GoalPriors(SETTINGS, CLOSED_BELOW, HEAD_CAMERA);
    plain.apply(robot([0.5, -0.3, 0.093], 0.048), goal([0.5, -0.3, 0.093], 'closed'));
    expect(plain.apply(robot([0.48, -0.2, 0.193], 0.048), place)).toBe(place);
  });

  it("setDown is checked field by field, and needs the model directory's camera.json", () => {
    const wm = loadPlannerPreset('wm-cem-read');
    const setDown = { carriedAbove: 0.05, within: 0.06 };
    expect(validatePreset({ ...wm, goalPriors: { ...SETTINGS, setDown } }, 'x.json').goalPriors).toEqual({ ...SETTINGS, setDown });
    expect(() => validatePreset({ ...wm, goalPriors: { ...SETTINGS, setDown: { within: 0.06 } } }, 'x.json')).toThrow(
      /x\.json: 'goalPriors\.setDown\.carriedAbove' must be a number in \[0, 1\], got undefined/,
    );
    expect(() => validatePreset({ ...wm, goalPriors: { ...SETTINGS, setDown: { ...setDown, height: 0 } } }, 'x.json')).toThrow(
      /x\.json: 'goalPriors\.setDown\.height' is not a preset field/,
    );
    const preset = validatePreset({ ...wm, name: 'sd', goalPriors: { ...SETTINGS, setDown } }, 'sd.json');
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-no-camera-'));
    copyFileSync('models/tiny-sim-explore/state-reader.safetensors', join(dir, 'state-reader.safetensors'));
    expect(() => loadGoalStateReading(preset, dir)).toThrow(UserError);
    expect(() => loadGoalStateReading(preset, dir)).toThrow(
      new RegExp(`preset 'sd' slides set-down goals .* ${dir}/camera\\.json does not exist .*sim camera --out`),
    );
    writeFileSync(join(dir, 'camera.json'), '{}');
    expect(() => loadGoalStateReading(preset, dir)).toThrow(new RegExp(`${dir}/camera\\.json: 'format' must be`));
    copyFileSync('models/tiny-sim-explore/camera.json', join(dir, 'camera.json'));
    const reading = loadGoalStateReading(preset, dir)!;
    expect(reading).toBeDefined();
    reading.dispose();
  });

  it('both episode planners forget the grasp when a new episode starts', () => {
    const reader = { cfg: { fullOpening: 0.09 }, read: () => [], dispose: () => {} } as unknown as StateReader;
    const preset = validatePreset(rawTestPreset({ goalState: 'read', goalPriors: SETTINGS }), 'priors.json');
    const oracleReading = new GoalStateReading(reader, 0, SETTINGS);
    const oracle = new SimOraclePlanning(preset, { imageHeight: 2, imageWidth: 2 }, ARM_AND_GRIPPER_STATS, 0, oracleReading);
    const w = loadInferenceWeights('models/tiny-sim-explore');
    const modelReading = new GoalStateReading(reader, 0, SETTINGS);
    const wmPreset = validatePreset({ ...loadPlannerPreset('wm-cem-fast'), goalState: 'read', goalPriors: SETTINGS }, 'wm.json');
    const model = new WorldModelPlanning(
      toTf(w.tensors),
      w.cfg,
      w.manifest!.actionStats,
      w.manifest!.contextFrames,
      wmPreset,
      {},
      undefined,
      modelReading,
    );
    for (const [planning, reading] of [
      [oracle, oracleReading],
      [model, modelReading],
    ] as const) {
      let resets = 0;
      const forget = reading.reset.bind(reading);
      reading.reset = () => {
        resets++;
        forget();
      };
      planning.reset(1);
      expect(resets).toBe(1);
    }
    model.dispose();
  });
});
