import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { layoutSeeds } from '../../src/cli/command.js';
import {
  consecutiveSeeds,
  DEFAULT_PROBE,
  DEFAULT_PROBE_SEED,
  diagonalCredit,
  nearestShare,
  PROBE_DIRECTIONS,
  probeActions,
  type ProbedModel,
} from '../../src/eval/action-probe.js';
import { observationToTensor } from '../../src/planner/frames.js';
import { runCli } from '../helpers/cli.js';
import { useTestBackend } from '../helpers/tf.js';

const size = { imageHeight: 32, imageWidth: 40 };
const probe = { ...DEFAULT_PROBE, tasks: ['pick-can', 'drawer-open'], seeds: [100], warmSteps: [3] };

/** Plays the actions out in the simulator: the true end frames. */
const reference: ProbedModel = {
  contextFrames: 1,
  ...size,
  imagineEnd(state, actions, repeat) {
    const snap = state.env.snapshot();
    const frames = actions.map((a) => {
      state.env.restore(snap);
      let obs = state.context[0]!;
      for (let k = 0; k < repeat; k++) obs = state.env.step(a).observation;
      return observationToTensor(obs, size.imageHeight, size.imageWidth);
    });
    state.env.restore(snap);
    return tf.stack(frames) as tf.Tensor4D;
  },
};

describe('action probe', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('credits a row when its own column is nearest, sharing the credit among tied columns', () => {
    expect(
      diagonalCredit([
        [1, 3, 2],
        [0, 5, 5],
        [2, 2, 1],
      ]),
    ).toEqual([1, 0, 1]);
    // Two actions with the same true outcome: each of the two rows gets half.
    expect(
      diagonalCredit([
        [0, 0, 4],
        [0, 0, 4],
        [3, 3, 1],
      ]),
    ).toEqual([0.5, 0.5, 1]);
    // What each row was taken for: its nearest column, ties split.
    expect(
      nearestShare([
        [1, 3, 2],
        [0, 0, 4],
      ]),
    ).toEqual([
      [1, 0, 0],
      [0.5, 0.5, 0],
    ]);
  });

  it('a model that plays the actions out in the simulator is right; one that ignores the action scores chance', async () => {
    const right = await probeActions(reference, probe);
    expect(right.states).toBe(2);
    expect(right.trials).toBe(12);
    expect(right.accuracy).toBe(1);
    expect(right.imaginedMse).toBe(0);
    expect(right.noMotionMse).toBeGreaterThan(0);
    expect(right.confusion).toEqual(PROBE_DIRECTIONS.map((_, i) => PROBE_DIRECTIONS.map((_, j) => (i === j ? 1 : 0))));
    // Nothing moves: every action imagines the same frame, so each state gets exactly one of six right.
    const still: ProbedModel = {
      contextFrames: 2,
      ...size,
      imagineEnd(state, actions) {
        expect(state.context).toHaveLength(2);
        const now = observationToTensor(state.context[1]!, size.imageHeight, size.imageWidth);
        const out = tf.stack(actions.map(() => now)) as tf.Tensor4D;
        now.dispose();
        return out;
      },
    };
    const chance = await probeActions(still, probe);
    expect(chance.correct).toBe(2);
    expect(chance.imaginedMse).toBeCloseTo(chance.noMotionMse, 6);
    // The separation of the true end frames depends on the states only, not on the model.
    expect(right.separationByDirection).toHaveLength(6);
    for (const s of right.separationByDirection) expect(s).toBeGreaterThan(0);
    expect(chance.separationByDirection).toEqual(right.separationByDirection);
    // Imagining the opposite direction's true end frame is off by at least the separation (the nearest other direction's).
    const opposite: ProbedModel = {
      ...reference,
      imagineEnd: (state, actions, repeat) =>
        reference.imagineEnd(
          state,
          actions.map((_, i) => actions[i ^ 1]!),
          repeat,
        ),
    };
    const swapped = await probeActions(opposite, probe);
    expect(swapped.accuracy).toBe(0);
    // Each direction is taken for its opposite, every time.
    swapped.confusion.forEach((row, i) => expect(row[i ^ 1]).toBe(1));
    for (const row of chance.confusion) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const meanSeparation = right.separationByDirection.reduce((x, y) => x + y, 0) / 6;
    expect(swapped.imaginedMse).toBeGreaterThanOrEqual(meanSeparation - 1e-9);
  });

  it('with shadows, the true end frames of the x and z moves lie further apart (a height cue for the one camera)', async () => {
    const plain = await probeActions(reference, probe);
    const shaded = await probeActions(reference, { ...probe, shadows: true });
    expect(shaded.accuracy).toBe(1);
    // +x, -x, +z, -z: the moves that "up looks like away" confuses without shadows (docs/results.md, item 12).
    const xz = (r: typeof plain) => [0, 1, 4, 5].reduce((sum, i) => sum + r.separationByDirection[i]!, 0);
    expect(xz(shaded)).toBeGreaterThan(1.2 * xz(plain));
  });

  it('says so when the expert finishes every task before the first warm-up step, instead of reporting NaN', async () => {
    const never: ProbedModel = {
      contextFrames: 1,
      ...size,
      imagineEnd: () => {
        throw new Error('no state should be probed');
      },
    };
    await expect(probeActions(never, { ...probe, tasks: ['drawer-close'], warmSteps: [500] })).rejects.toThrow(
      /finished every task before the first warm-up step \(500\)/,
    );
  });

  it('probes the layouts of the seeds it is given and says which', async () => {
    expect(DEFAULT_PROBE.seeds).toEqual(consecutiveSeeds(DEFAULT_PROBE_SEED, 3));
    const firstFrames: Uint8Array[] = [];
    const still: ProbedModel = {
      contextFrames: 1,
      ...size,
      imagineEnd(state, actions) {
        firstFrames.push(state.context[0]!.image);
        const now = observationToTensor(state.context[0]!, size.imageHeight, size.imageWidth);
        const out = tf.stack(actions.map(() => now)) as tf.Tensor4D;
        now.dispose();
        return out;
      },
    };
    const one = { ...probe, tasks: ['pick-can'] };
    const a = await probeActions(still, { ...one, seeds: [100] });
    const b = await probeActions(still, { ...one, seeds: [731] });
    expect([a.tasks, a.seeds, b.seeds]).toEqual([['pick-can'], [100], [731]]);
    // Another seed is another layout: the probed state looks different.
    expect(Buffer.from(firstFrames[0]!).equals(Buffer.from(firstFrames[1]!))).toBe(false);
  });

  it('--seed S --seeds N probes S .. S+N-1; --seeds a,b,c probes exactly those; anything else is refused by name', () => {
    expect(layoutSeeds({ seeds: '3' }, 100)).toEqual([100, 101, 102]);
    expect(layoutSeeds({ seed: '5000', seeds: '3' }, 100)).toEqual([5000, 5001, 5002]);
    expect(layoutSeeds({ seed: '42', seeds: '1' }, 100)).toEqual([42]);
    expect(layoutSeeds({ seeds: '7, 9,12' }, 100)).toEqual([7, 9, 12]);
    expect(() => layoutSeeds({ seed: '5', seeds: '7,9' }, 100)).toThrow(/either --seed S .* or --seeds a,b,c/);
    expect(() => layoutSeeds({ seeds: '0' }, 100)).toThrow(/--seeds must be >= 1/);
    expect(() => layoutSeeds({ seeds: '7,x' }, 100)).toThrow(/--seeds must be an integer seed .* got 'x'/);
    expect(() => layoutSeeds({ seeds: '7,7' }, 100)).toThrow(/lists a seed twice/);
    expect(() => layoutSeeds({ seed: '-3', seeds: '2' }, 100)).toThrow(/--seed must be an integer seed .* got '-3'/);
    expect(() => layoutSeeds({ seed: '2147483647', seeds: '2' }, 100)).toThrow(/runs past the largest seed/);
  });

  it('model probe --seed on the shipped model: the JSON names the seeds probed, whether with shadows, and how it imagined', async () => {
    const r = await runCli([
      'model',
      'probe',
      '--seed',
      '900',
      '--seeds',
      '1',
      '--tasks',
      'drawer-close',
      '--shadows',
      '--flow-steps',
      '1',
      '--action-guidance',
      '0.5',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out) as {
      seeds: number[];
      tasks: string[];
      states: number;
      trials: number;
      shadows: boolean;
      rollout: { flowSteps: number; integrator: string; actionGuidance: number };
      accuracyByDirection: number[];
      confusion: number[][];
    };
    expect([out.seeds, out.tasks, out.shadows]).toEqual([[900], ['drawer-close'], true]);
    // What each direction was taken for: six rows of six shares, the diagonal its accuracy.
    expect(out.confusion.map((row) => row.length)).toEqual([6, 6, 6, 6, 6, 6]);
    out.confusion.forEach((row, i) => {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      expect(row[i]).toBe(out.accuracyByDirection[i]);
    });
    expect(out.rollout).toEqual({ flowSteps: 1, integrator: 'euler', actionGuidance: 0.5 });
    expect(out.trials).toBe(out.states * 6);
    const bad = await runCli(['model', 'probe', '--seed', '900', '--seeds', '1,2', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not both/);
    const tooMuch = await runCli(['model', 'probe', '--action-guidance', '11', '--json']);
    expect([tooMuch.code, tooMuch.err]).toEqual([2, expect.stringMatching(/--action-guidance must be a number in \[0, 10\], got 11/)]);
    const fraction = await runCli(['model', 'probe', '--flow-steps', '1.5', '--json']);
    expect([fraction.code, fraction.err]).toEqual([2, expect.stringMatching(/--flow-steps must be an integer in \[1, 100\], got 1.5/)]);
  }, 120_000);
});
