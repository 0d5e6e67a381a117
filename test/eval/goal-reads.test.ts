/**
 * `model read-goals`: the state reader's errors on the storyboard pictures the planner is handed,
 * scored against the state the simulator recorded with them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/backends.js';
import { readGoalPictures, summarizeGoalReads, worstGoalReads, type GoalPictureRead } from '../../src/eval/goal-reads.js';
import { subgoals } from '../../src/sim/goals.js';
import { jpegRoundTrip } from '../../src/image/jpeg.js';
import type { CameraSettings } from '../../src/sim/env.js';
import { ALL_TASKS } from '../../src/cli/command.js';
import { TASKS } from '../../src/sim/tasks.js';
import { runCli } from '../helpers/cli.js';

const read = (error: number, commanded?: 'open' | 'closed', readClosed = false): GoalPictureRead => ({
  task: 't',
  seed: 1,
  name: `e${error}`,
  error,
  along: -0.6 * error,
  across: 0.8 * error,
  commanded,
  readClosed,
});

describe('summarizeGoalReads', () => {
  it('gives the mean, median, 90th percentile and max of the position errors and counts open/closed misreads', () => {
    const reads = [
      read(0.01, 'open', false),
      read(0.02, 'closed', false),
      read(0.03, 'closed', true),
      read(0.04, undefined, true),
      read(0.1, 'open', true),
    ];
    const s = summarizeGoalReads(reads);
    expect(s.pictures).toBe(5);
    expect(s.mean).toBeCloseTo(0.04, 10);
    expect(s.alongMean).toBeCloseTo(0.024, 10); // sizes: the sign of along does not cancel
    expect(s.acrossMean).toBeCloseTo(0.032, 10);
    expect(s.median).toBe(0.03);
    expect(s.p90).toBe(0.1);
    expect(s.max).toBe(0.1);
    expect(s.stateChecked).toBe(4);
    expect(s.stateMisreads).toBe(2);
    expect(worstGoalReads(reads, 2).map((r) => r.error)).toEqual([0.1, 0.04]);
  });

  it('reports nothing read as NaN rather than zero error', () => {
    const s = summarizeGoalReads([]);
    expect(s.pictures).toBe(0);
    expect(s.mean).toBeNaN();
    expect(s.stateMisreads).toBe(0);
  });
});

describe('readGoalPictures', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('hands the reader pixels only and scores it against the recorded gripper position and command', async () => {
    const seen: string[][] = [];
    // A stand-in reader that always sees the gripper at the origin and closed.
    const reads = await readGoalPictures(
      (pictures) => {
        seen.push(...pictures.map((p) => Object.keys(p).sort()));
        return pictures.map(() => ({ position: [0, 0, 0], closedness: 1 }));
      },
      ['pick-can'],
      [100],
      { height: 64, width: 80, granularity: 'phase' },
    );
    const board = await subgoals('pick-can', 100, 64, 80, 'phase');
    expect(reads).toHaveLength(board.length);
    expect(seen.every((k) => k.join() === 'height,image,width')).toBe(true);
    board.forEach((g, i) => {
      const p = g.observation.proprio!;
      expect(reads[i]!.name).toBe(g.name);
      expect(reads[i]!.error).toBeCloseTo(Math.hypot(p[0]!, p[1]!, p[2]!), 6);
      expect(Math.hypot(reads[i]!.along, reads[i]!.across)).toBeCloseTo(reads[i]!.error, 6);
      // The origin lies below and behind the head camera's view of the table: read nearer the camera.
      expect(reads[i]!.along).toBeLessThan(0);
    });
    const open = board.filter((g) => g.gripper === 'open').length;
    expect(open).toBeGreaterThan(0);
    expect(summarizeGoalReads(reads).stateMisreads).toBe(open);
  });

  /** The pixels a stand-in reader is handed for one task's stage pictures on seed 100, with the camera's settings. */
  async function picturesHanded(task: string, camera: CameraSettings): Promise<Uint8Array[]> {
    const seen: Uint8Array[] = [];
    await readGoalPictures(
      (pictures) => {
        seen.push(...pictures.map((p) => p.image));
        return pictures.map(() => ({ position: [0, 0, 0], closedness: 1 }));
      },
      [task],
      [100],
      { height: 64, width: 80, granularity: 'stage', camera },
    );
    return seen;
  }

  it('renders the storyboard with shadows when asked, for a reader trained on shadowed pictures', async () => {
    const seen = await picturesHanded('pick-can', { shadows: true });
    const shadowed = await subgoals('pick-can', 100, 64, 80, 'stage', { shadows: true });
    const plain = await subgoals('pick-can', 100, 64, 80, 'stage');
    expect(seen).toEqual(shadowed.map((g) => g.observation.image));
    expect(seen[0]).not.toEqual(plain[0]!.observation.image);
  });

  it("hands the reader the pictures through the camera's JPEG when asked, as the stored training pictures were", async () => {
    const seen = await picturesHanded('move-near', { jpegQuality: 92 });
    const plain = await subgoals('move-near', 100, 64, 80, 'stage');
    expect(seen).toEqual(plain.map((g) => jpegRoundTrip(g.observation.image, 80, 64, 92)));
  });

  it('skips a layout whose expert replay fails, as eval does, and says so', async () => {
    const excluded: string[] = [];
    const reads = await readGoalPictures(
      (pictures) => pictures.map(() => ({ position: [0, 0, 0], closedness: 1 })),
      ['drawer-place'],
      [15114],
      { height: 64, width: 80, granularity: 'phase' },
      undefined,
      (task, seed, why) => excluded.push(`${task} ${seed}: ${why}`),
    );
    expect(reads).toEqual([]);
    expect(excluded).toEqual([expect.stringMatching(/^drawer-place 15114: expert did not complete drawer-place on seed 15114/)]);
  });
});

describe('selfflow-wm model read-goals', () => {
  it("reads the shipped reader's goal-picture errors for the named task and seeds", async () => {
    const r = await runCli([
      'model',
      'read-goals',
      '--tasks',
      'drawer-open',
      '--seed',
      '100',
      '--seeds',
      '1',
      '--backend',
      'wasm',
      '--json',
    ]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.seeds).toEqual([100]);
    // The shipped reader reads 128x160, more than the camera's 64x80 frames, so the goal pictures are taken at its size, as plan and eval take them.
    expect(j.imageSize).toBe('128x160');
    expect(j.perTask.map((t: { task: string }) => t.task)).toEqual(['drawer-open']);
    expect(j.all.pictures).toBeGreaterThan(2);
    // The shipped reader sees a drawer pull's gripper within about a centimetre (docs/training.md).
    expect(j.all.median).toBeLessThan(0.03);
    expect(j.reads.every((x: GoalPictureRead) => x.task === 'drawer-open' && x.seed === 100)).toBe(true);
  });

  it("says in its JSON and its header that the goal pictures came through the camera's JPEG, by default, and not with --camera-jpeg 0", async () => {
    const args = ['model', 'read-goals', '--tasks', 'drawer-open', '--seeds', '1', '--backend', 'wasm'];
    const j = await runCli([...args, '--json']);
    expect(j.code, j.err).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ cameraJpeg: 92, shadows: false });
    const t = await runCli(args);
    expect(t.out).toMatch(/goal pictures \(phase, 128x160, through JPEG quality 92\)/);
    const raw = await runCli([...args, '--camera-jpeg', '0', '--json']);
    expect(JSON.parse(raw.out)).toMatchObject({ cameraJpeg: 0 });
  });

  it('reads every simulator task by default', () => {
    expect(ALL_TASKS.split(',')).toEqual(TASKS.map((t) => t.name));
  });

  it('refuses an unknown granularity, two readers at once and a negative --worst, and names a missing reader file', async () => {
    const g = await runCli(['model', 'read-goals', '--goals', 'every', '--backend', 'wasm']);
    expect(g.code).not.toBe(0);
    expect(g.err).toMatch(/--goals must be stage, phase or dense, got 'every'/);
    const both = await runCli(['model', 'read-goals', '--checkpoint', 'models/tiny-sim-explore', '--reader', 'r.safetensors']);
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/give either --checkpoint DIR \(its state reader\) or --reader PATH, not both/);
    const q = await runCli(['model', 'read-goals', '--camera-jpeg', '101']);
    expect(q.err).toMatch(/--camera-jpeg must be 0 \(raw\) or an integer quality from 1 to 100, got 101/);
    const w = await runCli(['model', 'read-goals', '--worst=-1']);
    expect(w.err).toMatch(/--worst must be >= 0, got -1/);
    const m = await runCli(['model', 'read-goals', '--reader', '/nonexistent/reader.safetensors', '--seeds', '1', '--backend', 'wasm']);
    expect(m.code).not.toBe(0);
    expect(m.err).toMatch(/\/nonexistent\/reader\.safetensors: no such file \(expected a selfflow-wm state reader\)/);
  });
});
