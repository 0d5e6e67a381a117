import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROBE, diagonalCredit, probeActions, type ProbedModel } from '../../src/eval/action-probe.js';
import { observationToTensor } from '../../src/planner/frames.js';
import { useTestBackend } from '../helpers/tf.js';

const size = { imageHeight: 32, imageWidth: 40 };
const probe = { ...DEFAULT_PROBE, tasks: ['pick-can', 'drawer-open'], seeds: [100], warmSteps: [3] };

describe('action probe', () => {
  beforeAll(async () => {
    await useTestBackend();
  });

  it('credits a row when its own column is nearest, sharing the credit among tied columns', () => {
    expect(diagonalCredit([[1, 3, 2], [0, 5, 5], [2, 2, 1]])).toEqual([1, 0, 1]);
    // Two actions with the same true outcome: each of the two rows gets half.
    expect(diagonalCredit([[0, 0, 4], [0, 0, 4], [3, 3, 1]])).toEqual([0.5, 0.5, 1]);
  });

  it('a model that plays the actions out in the simulator is right; one that ignores the action scores chance', async () => {
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
    const right = await probeActions(reference, probe);
    expect(right.states).toBe(2);
    expect(right.trials).toBe(12);
    expect(right.accuracy).toBe(1);
    expect(right.imaginedMse).toBe(0);
    expect(right.noMotionMse).toBeGreaterThan(0);
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
  });

  it('says so when the expert finishes every task before the first warm-up step, instead of reporting NaN', async () => {
    const never: ProbedModel = {
      contextFrames: 1,
      ...size,
      imagineEnd: () => {
        throw new Error('no state should be probed');
      },
    };
    await expect(probeActions(never, { ...probe, tasks: ['drawer-close'], warmSteps: [500] })).rejects.toThrow(/finished every task before the first warm-up step \(500\)/);
  });
});
