import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { futureCosts, modelCost, stepWeights, type CostReference } from '../../src/planner/cost.js';
import type { CostWeights, Futures, PlanModel } from '../../src/planner/plan-model.js';
import type { Goal, Observation } from '../../src/core/types.js';
import { Rng } from '../../src/util/rng.js';

const NONE: CostWeights = { representation: 0, pixel: 0, pyramid: 0, change: 0, reach: 0, pose: 0, actionMagnitude: 0, terminal: 0 };
const [H, W] = [4, 4];

function reference(goalValue: number, goalPosition?: [number, number, number]): CostReference {
  return { now: tf.zeros([H, W, 3]) as tf.Tensor3D, goal: tf.fill([H, W, 3], goalValue) as tf.Tensor3D, goalPosition };
}

/** n candidates x 2 steps whose frames are filled with `values[i][t]`. */
function futures(values: number[][], extra: Partial<Futures> = {}): () => Futures {
  return () => ({ frames: tf.stack(values.map((row) => tf.stack(row.map((v) => tf.fill([H, W, 3], v))))) as tf.Tensor5D, ...extra });
}

describe('stepWeights', () => {
  it('puts the terminal share on the last step and spreads the rest evenly', () => {
    expect(stepWeights(4, 0)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(stepWeights(2, 1)).toEqual([0, 1]);
    expect(stepWeights(2, 0.5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});

describe('futureCosts (the one cost of every model)', () => {
  const zeros = new Float32Array(2 * 2 * 1);

  it('pixel MSE per step, mixed by the step weights', () => {
    const ref = reference(0.5);
    // Candidate 0 reaches the goal picture at step 1, candidate 1 never moves.
    const c = futureCosts(
      { ...NONE, pixel: 2, terminal: 0.5 },
      ref,
      futures([
        [0, 0.5],
        [0, 0],
      ]),
      zeros,
      2,
      2,
      1,
    );
    const w = stepWeights(2, 0.5);
    expect(c[0]).toBeCloseTo(2 * 0.25 * w[0]!, 6);
    expect(c[1]).toBeCloseTo(2 * 0.25 * (w[0]! + w[1]!), 6);
    tf.dispose([ref.now, ref.goal]);
  });

  it('adds the mean squared action and the pose term; asks for positions and representation only when they count', () => {
    const ref = reference(0, [1, 0, 0]);
    let asked = { positions: 0, representation: 0 };
    const positions = () => (asked.positions++, Float64Array.from([0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]));
    const representation = () => (asked.representation++, tf.ones([2, 2]) as tf.Tensor2D);
    const actions = Float32Array.from([0.5, 0.5, 0, 0]);
    const base = futureCosts(
      { ...NONE, actionMagnitude: 1, terminal: 1 },
      ref,
      futures(
        [
          [0, 0],
          [0, 0],
        ],
        { positions, representation },
      ),
      actions,
      2,
      2,
      1,
    );
    expect(Array.from(base)).toEqual([0.25, 0]);
    expect(asked).toEqual({ positions: 0, representation: 0 });
    // pose 2, terminal 0: candidate 0 is 1 m away at step 0 and there at step 1; candidate 1 is there throughout.
    const pose = futureCosts(
      { ...NONE, pose: 2, representation: 3 },
      ref,
      futures(
        [
          [0, 0],
          [0, 0],
        ],
        { positions, representation },
      ),
      actions,
      2,
      2,
      1,
    );
    expect(pose[0]).toBeCloseTo(2 * 0.5 * 1 + 3, 6);
    expect(pose[1]).toBeCloseTo(3, 6);
    expect(asked).toEqual({ positions: 1, representation: 1 });
    // A goal without a recorded gripper position has no pose term.
    asked = { positions: 0, representation: 0 };
    const noTarget = reference(0);
    expect(
      Array.from(
        futureCosts(
          { ...NONE, pose: 2 },
          noTarget,
          futures(
            [
              [0, 0],
              [0, 0],
            ],
            { positions },
          ),
          actions,
          2,
          2,
          1,
        ),
      ),
    ).toEqual([0, 0]);
    expect(asked.positions).toBe(0);
    tf.dispose([ref.now, ref.goal, noTarget.now, noTarget.goal]);
  });

  it('frees the futures it asked for', () => {
    const ref = reference(0.5);
    const before = tf.memory().numTensors;
    futureCosts(
      { ...NONE, pixel: 1, pyramid: 1, change: 1, reach: 1 },
      ref,
      futures([
        [0, 0.5],
        [0.2, 0.1],
      ]),
      zeros,
      2,
      2,
      1,
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([ref.now, ref.goal]);
  });
});

describe('modelCost', () => {
  const image = (v: number, stamp = 0): Observation => ({ image: new Uint8Array(H * W * 3).fill(v), height: H, width: W, stamp });

  function fakeModel(log: string[]): PlanModel {
    return {
      imageHeight: H,
      imageWidth: W,
      rollout(obs, _goal, horizon, rng) {
        log.push(`rollout ${obs.stamp} horizon ${horizon} draw ${rng.int(10)}`);
        return {
          predict: (c, n) => ({ frames: tf.zeros([n, horizon, H, W, 3]) as tf.Tensor5D }),
          dispose: () => log.push('dispose'),
        };
      },
    };
  }

  it('scores the model futures against the goal with the preset weights, and frees everything on dispose', async () => {
    const log: string[] = [];
    const make = modelCost(fakeModel(log), { cost: { ...NONE, pixel: 1, terminal: 1 }, optimizer: { horizon: 2 } }, 1);
    const goal: Goal = { images: [image(255)] };
    const before = tf.memory().numTensors;
    const cost = await make(image(0, 7), goal, new Rng(1));
    const c = await cost.cost(new Float32Array(3 * 2), 3);
    // Predicted frames at 0 against a white goal picture (1 in [-1, 1] units): MSE 1.
    expect(Array.from(c)).toEqual([1, 1, 1]);
    cost.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(log).toEqual([`rollout 7 horizon 2 draw ${new Rng(1).int(10)}`, 'dispose']);
  });

  it('a goal without a picture is an error, and the rollout it had made is freed', () => {
    const log: string[] = [];
    const make = modelCost(fakeModel(log), { cost: NONE, optimizer: { horizon: 2 } }, 1);
    expect(() => make(image(0), { images: [] }, new Rng(1))).toThrow(/goal has no image/);
    expect(log.at(-1)).toBe('dispose');
  });
});
