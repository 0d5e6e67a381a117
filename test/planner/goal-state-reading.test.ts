/**
 * Presets with `goalState: "read"` take the goal's gripper position and open/closed state from
 * what the state reader sees in the goal pictures: the reading looks at the pixels only, never at
 * what a storyboard recorded with them, and the handover finds the picture's gripper the same way.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/core/errors.js';
import type { Observation } from '../../src/core/types.js';
import type { StateReader, ReadState } from '../../src/model/state-reader.js';
import { oracleGoalReads, recordGoalReads } from '../../src/planner/goal-reads.js';
import { CLOSED_ABOVE, GoalStateReading, loadGoalStateReading } from '../../src/planner/goal-state-reading.js';
import { goalPictureSize } from '../../src/planner/episode.js';
import { GoalSequence } from '../../src/planner/goal-sequence.js';
import { loadPlannerPreset, recordedGoalFields, validatePreset } from '../../src/planner/presets.js';
import type { Subgoal } from '../../src/sim/goals.js';

/** A picture whose first pixel's red value says where the gripper is (x = red / 100) and whose green value its closedness. */
function picture(red: number, green: number, recorded?: number[]): Observation {
  const image = new Uint8Array(2 * 2 * 3);
  image[0] = red;
  image[1] = green;
  return { image, width: 2, height: 2, stamp: 0, ...(recorded && { proprio: Float32Array.from(recorded) }) };
}

/** Stands in for a trained reader: it reads the pixels the pictures above encode. */
function pixelReader(): { reader: StateReader; reads: number } {
  const box = { reads: 0, reader: undefined as unknown as StateReader };
  box.reader = {
    cfg: { fullOpening: 0.1 },
    read: (pictures: { image: Uint8Array }[]): ReadState[] => {
      box.reads += pictures.length;
      return pictures.map((p) => ({ position: [p.image[0]! / 100, 0.1, 0.2], closedness: p.image[1]! / 100 }));
    },
    dispose: () => {},
  } as unknown as StateReader;
  return box;
}

describe('goal states read off the pictures', () => {
  it('the planner gets the position and gripper state the reader sees, and nothing recorded is read', () => {
    const box = pixelReader();
    const reading = new GoalStateReading(box.reader);
    const reads = new Set<string>();
    // The storyboard recorded other positions and a closed gripper: none of it may reach the planner.
    const goal = recordGoalReads(
      { images: [picture(30, 0, [9, 9, 9, 0, 0.01]), picture(50, 60, [8, 8, 8, 0, 0.1])], instruction: 'pick can', gripper: 'open' },
      reads,
    );
    const read = reading.read(goal);
    expect(oracleGoalReads(reads)).toEqual([]);
    expect(reads.has('goal.images[1].image')).toBe(true);
    expect(read.instruction).toBe('pick can');
    expect(Array.from(read.images[0]!.proprio!)).toEqual([0.3, 0.1, 0.2, 0, 0.1].map(Math.fround));
    // Closedness 0.6 -> an opening of 4 cm, and the last picture's gripper reads as closed.
    expect(read.images[1]!.proprio![4]).toBeCloseTo(0.04, 6);
    expect(read.gripper).toBe('closed');
    expect(reading.read({ images: [picture(10, CLOSED_ABOVE * 100 - 1)] }).gripper).toBe('open');
    // The same goal object is read once.
    const before = box.reads;
    expect(reading.read(goal)).toBe(read);
    expect(box.reads).toBe(before);
  });

  it('aims a closed-gripper goal past its read position, along the move from where the gripper was when the goal came', () => {
    const reading = new GoalStateReading(pixelReader().reader, 0.01);
    const robotAt = (x: number) => picture(0, 0, [x, 0.1, 0.2, 0, 0.02]);
    // A pull: closed fingers (closedness 0.6), the picture's gripper at x 0.5, the robot at x 0.62.
    const pull = { images: [picture(50, 60)] };
    const aimed = reading.read(pull, robotAt(0.62));
    expect(aimed.gripper).toBe('closed');
    expect(aimed.images[0]!.proprio![0]).toBeCloseTo(0.49, 6);
    expect(Array.from(aimed.images[0]!.proprio!.slice(1, 3))).toEqual([0.1, 0.2].map(Math.fround));
    // The same goal keeps its aim while the robot moves; the handover still sees the picture as read.
    expect(reading.read(pull, robotAt(0.5))).toBe(aimed);
    expect(reading.readPicture(pull.images[0]!).proprio![0]).toBeCloseTo(0.5, 6);
    // A grasp in place (within 3 cm), an open-gripper goal, and no robot state are aimed at, not past.
    expect(reading.read({ images: [picture(50, 60)] }, robotAt(0.52)).images[0]!.proprio![0]).toBeCloseTo(0.5, 6);
    expect(reading.read({ images: [picture(50, 0)] }, robotAt(0.62)).images[0]!.proprio![0]).toBeCloseTo(0.5, 6);
    expect(reading.read({ images: [picture(50, 60)] }).images[0]!.proprio![0]).toBeCloseTo(0.5, 6);
    // Without the preset field there is no overshoot.
    expect(
      new GoalStateReading(pixelReader().reader).read({ images: [picture(50, 60)] }, robotAt(0.62)).images[0]!.proprio![0],
    ).toBeCloseTo(0.5, 6);
    expect(() => validatePreset({ ...loadPlannerPreset('wm-cem-read'), closedGoalOvershoot: 0.2 }, 'x.json')).toThrow(
      /x\.json: 'closedGoalOvershoot' must be a number in \[0, 0\.05\], got 0\.2/,
    );
    expect(() => validatePreset({ ...loadPlannerPreset('wm-cem-fast'), closedGoalOvershoot: 0.01 }, 'x.json')).toThrow(
      /'closedGoalOvershoot' applies only with goalState "read"/,
    );
  });

  it('pushes a reached closed-gripper goal on along its move while it stays current, up to its limit', () => {
    const push = { step: 0.03, reach: 0.01, max: 0.1 };
    const reading = new GoalStateReading(pixelReader().reader, 0.01, undefined, undefined, push);
    const robotAt = (x: number, z = 0.2) => picture(0, 0, [x, 0.1, z, 0, 0.02]);
    const aimX = (g: { images: Observation[] }) => g.images[0]!.proprio![0]!;
    // A push towards +x: closed fingers, the picture's gripper at x 0.5, the robot at x 0.4.
    const shove = { images: [picture(50, 60)] };
    const first = reading.read(shove, robotAt(0.4));
    expect(aimX(first)).toBeCloseTo(0.51, 6);
    // On the way (more than 1 cm from the aim) the aim stays, and so does the goal object.
    expect(reading.read(shove, robotAt(0.45))).toBe(first);
    expect(reading.read(shove, robotAt(0.5, 0.215))).toBe(first);
    // Reached but the goal is still current (the scene is not yet the picture's): 3 cm further, along x only.
    const pushed = reading.read(shove, robotAt(0.505));
    expect(aimX(pushed)).toBeCloseTo(0.54, 6);
    expect(Array.from(pushed.images[0]!.proprio!.slice(1, 3))).toEqual([0.1, 0.2].map(Math.fround));
    expect(reading.read(shove, robotAt(0.52))).toBe(pushed);
    // Each arrival moves it on, never more than 10 cm past the reading.
    expect(aimX(reading.read(shove, robotAt(0.54)))).toBeCloseTo(0.57, 6);
    expect(aimX(reading.read(shove, robotAt(0.57)))).toBeCloseTo(0.6, 6);
    expect(aimX(reading.read(shove, robotAt(0.6)))).toBeCloseTo(0.6, 6);
    // The handover still sees the picture where the reader does.
    expect(reading.readPicture(shove.images[0]!).proprio![0]).toBeCloseTo(0.5, 6);
    // Open-gripper goals and grasps in place are never pushed.
    const open = { images: [picture(50, 0)] };
    reading.read(open, robotAt(0.4));
    expect(aimX(reading.read(open, robotAt(0.5)))).toBeCloseTo(0.5, 6);
    const inPlace = { images: [picture(50, 60)] };
    reading.read(inPlace, robotAt(0.48));
    expect(aimX(reading.read(inPlace, robotAt(0.5)))).toBeCloseTo(0.5, 6);
    // A new goal object (the next picture, or the stage started again) starts from the reading.
    expect(aimX(reading.read({ images: [picture(50, 60)] }, robotAt(0.4)))).toBeCloseTo(0.51, 6);
    // Preset section: checked fields, and only with goalState "read".
    const p = loadPlannerPreset('experiments/read-push');
    expect(p.closedGoalPush).toEqual({ step: 0.03, reach: 0.01, max: 0.15 });
    expect(() => validatePreset({ ...p, closedGoalPush: { ...push, step: 0 } }, 'x.json')).toThrow(
      /x\.json: 'closedGoalPush\.step' must be a number in \[0\.001, 0\.05\], got 0/,
    );
    expect(() => validatePreset({ ...p, closedGoalPush: { step: 0.03, reach: 0.01 } }, 'x.json')).toThrow(/'closedGoalPush\.max' must be/);
    expect(() => validatePreset({ ...p, closedGoalPush: { ...push, far: 1 } }, 'x.json')).toThrow(
      /'closedGoalPush\.far' is not a preset field/,
    );
    expect(() => validatePreset({ ...loadPlannerPreset('wm-cem-fast'), closedGoalPush: push }, 'x.json')).toThrow(
      /'closedGoalPush' applies only with goalState "read"/,
    );
  });

  it('hands the next picture over when the robot is where the reader sees the gripper, not where it was recorded', () => {
    const reading = new GoalStateReading(pixelReader().reader);
    const sub = (red: number, recorded: number[], name: string): Subgoal => ({
      observation: picture(red, 0, recorded),
      stage: 0,
      expertSteps: 5,
      name,
      tolerance: 0.001,
    });
    // The recorded position is 40 cm away from what the picture shows (x 0.5).
    const board = [sub(50, [0.9, 0.1, 0.2, 0, 0.1], 'first'), sub(70, [0.7, 0.1, 0.2, 0, 0.1], 'second')];
    const robotAt = (x: number) => ({ ...picture(0, 0, [x, 0.1, 0.2, 0, 0.1]) });
    const far = () => 1; // the pictures never look alike: only the pose handover can fire
    const pose = { pose: 0.02, finger: 0.02 };
    const read = new GoalSequence(board, far, robotAt(0), {
      reachRatio: 0.3,
      patienceFactor: 10,
      minPatience: 50,
      pose,
      readPicture: (o) => reading.readPicture(o),
    });
    expect(read.update(robotAt(0.9), 0)).toBeUndefined();
    expect(read.update(robotAt(0.505), 0)).toEqual({ kind: 'reached', from: 0, to: 1 });
    // Without reading, the recorded position (and its 1 mm tolerance) decides.
    const recorded = new GoalSequence(board, far, robotAt(0), { reachRatio: 0.3, patienceFactor: 10, minPatience: 50, pose });
    expect(recorded.update(robotAt(0.5), 0)).toBeUndefined();
    expect(recorded.update(robotAt(0.9005), 0)).toEqual({ kind: 'reached', from: 0, to: 1 });
  });

  it('presets: goalState "read" reads no recording; a model without a reader is a UserError that says how to train one', () => {
    const p = loadPlannerPreset('wm-cem-read');
    expect(p.goalState).toBe('read');
    expect(recordedGoalFields(p)).toEqual([]);
    expect(recordedGoalFields({ ...p, goalState: undefined })).toEqual(
      expect.arrayContaining(['cost.pose', 'handover', 'poseProposal', 'actions.gripper', 'actions.carry']),
    );
    expect(() => validatePreset({ ...p, goalState: 'guess' }, 'x.json')).toThrow(
      /x\.json: 'goalState' must be "recorded" or "read", got "guess"/,
    );
    expect(loadGoalStateReading(loadPlannerPreset('wm-cem-fast'), '/nonexistent')).toBeUndefined();
    const empty = mkdtempSync(join(tmpdir(), 'sfwm-no-reader-'));
    expect(() => loadGoalStateReading(p, empty)).toThrow(UserError);
    expect(() => loadGoalStateReading(p, empty)).toThrow(
      new RegExp(`preset 'wm-cem-read' reads .* ${empty}/state-reader\\.safetensors does not exist .*model train-reader`),
    );
  });

  it('goal pictures are taken at the size the reader reads where it reads more pixels than the 64x80 camera frames', () => {
    const withReader = (imageHeight: number, imageWidth: number) => ({ imageHeight, imageWidth });
    expect(goalPictureSize(undefined)).toEqual({ h: 64, w: 80 });
    expect(goalPictureSize(withReader(64, 80))).toEqual({ h: 64, w: 80 });
    expect(goalPictureSize(withReader(32, 40))).toEqual({ h: 64, w: 80 });
    expect(goalPictureSize(withReader(128, 160))).toEqual({ h: 128, w: 160 });
  });
});
