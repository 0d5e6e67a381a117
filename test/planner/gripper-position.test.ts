import { beforeAll, describe, expect, it } from 'vitest';
import type { ActionStats } from '../../src/core/action-stats.js';
import { predictedPoseCosts } from '../../src/planner/cost.js';
import { straightMove, type Vec3 } from '../../src/planner/gripper-position.js';
import { optimize } from '../../src/planner/optimizer.js';
import { Rng } from '../../src/util/rng.js';
import { validatePreset } from '../../src/planner/presets.js';
import { SimOraclePlanning } from '../../src/planner/sim-oracle.js';
import { loadWorldModelPlanning } from '../../src/planner/world-model-planner.js';
import type { Observation } from '../../src/core/types.js';
import { SimEnv } from '../../src/sim/env.js';
import { useTestBackend } from '../helpers/tf.js';
import { rawTestPreset } from '../helpers/presets.js';

// Normalised +-1 = +-6 cm per axis: the simulator's own limit.
const names = ['world_vector.x', 'world_vector.y', 'world_vector.z'];
const stats: ActionStats = {
  names,
  count: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  min: [-0.06, -0.06, -0.06],
  max: [0.06, 0.06, 0.06],
  q01: [-0.06, -0.06, -0.06],
  q99: [0.06, 0.06, 0.06],
};
const withGripperAt = (o: Observation, p: Vec3): Observation => ({ ...o, proprio: Float32Array.from([...p, 0, 0.045]) });

describe('gripper-position cost (cost.pose)', () => {
  beforeAll(useTestBackend);

  it('adds up, per step, the distance of the commanded path to the goal position', () => {
    // Candidate 0: +x twice (3 cm, then 6 cm from the start); candidate 1: -x twice. Goal 6 cm ahead.
    const cands = Float32Array.from([0.5, 0, 0, 0.5, 0, 0, -0.5, 0, 0, -0.5, 0, 0]);
    const c = predictedPoseCosts(cands, 2, 2, stats, [0.5, 0, 0.2], [0.56, 0, 0.2], [0.25, 0.75]);
    expect(c[0]).toBeCloseTo(0.25 * 0.03 + 0.75 * 0, 6);
    expect(c[1]).toBeCloseTo(0.25 * 0.09 + 0.75 * 0.12, 6);
  });

  it('straight move: the whole way left each step, shortened along the line to the largest move; its path ends at a near goal', () => {
    // 9 cm along +x and 3 cm along -y: step 1 is 2/3 of the way (6 cm on x, 2 cm on y), so the
    // path stays on the line instead of finishing y first; step 2 covers the 3 cm and 1 cm left.
    const m = straightMove(stats, [0.5, 0, 0.2], [0.59, -0.03, 0.2], 2);
    [1, -1 / 3, 0, 0.5, -1 / 6, 0].forEach((v, i) => expect(m[i]).toBeCloseTo(v, 5));
    // An asymmetric range: -y holds only 1 cm, so that axis sets the step for all three.
    const m2 = straightMove({ ...stats, q01: [-0.06, -0.01, -0.06] }, [0, 0, 0], [0.04, -0.04, 0], 1);
    [1 / 6, -1, 0].forEach((v, i) => expect(m2[i]).toBeCloseTo(v, 5));
    expect(predictedPoseCosts(m, 1, 2, stats, [0.5, 0, 0.2], [0.59, -0.03, 0.2], [0, 1])[0]).toBeCloseTo(0, 6);
    expect(() => straightMove({ ...stats, names: ['a', 'b', 'c'] }, [0, 0, 0], [1, 1, 1], 2)).toThrow(/world_vector/);
  });

  it('the included sequence is scored in the first iteration and wins when it is the best', async () => {
    const include = Float32Array.from([0.9, 0, 0, 0.9, 0, 0]);
    let first: Float32Array | undefined;
    const cost = async (c: Float32Array, n: number) => {
      first ??= c.slice();
      return Float32Array.from({ length: n }, (_, i) => Math.abs(c[i * 6]! - 0.9) + Math.abs(c[i * 6 + 3]! - 0.9));
    };
    const r = await optimize(
      {
        kind: 'cem',
        horizon: 2,
        actionDim: 3,
        candidates: 6,
        iterations: 1,
        elites: 2,
        temperature: 0.1,
        initStd: 0.1,
        minStd: 0.05,
        proposalFraction: 0,
        warmStartPad: 'repeat',
      },
      cost,
      { rng: new Rng(3), include },
    );
    expect(Array.from(first!.subarray(5 * 6))).toEqual(Array.from(include));
    expect(Array.from(r.best)).toEqual(Array.from(include));
  });

  it('is an optional preset field; a negative weight is refused with its name', () => {
    const cost = { representation: 0, pixel: 0, actionMagnitude: 0, terminal: 1 };
    const base = rawTestPreset({ name: 'p', optimizer: { initStd: 0.6 }, graceMs: 1000, cost });
    expect(validatePreset(base, 'p.json').cost.pose).toBe(0);
    expect(validatePreset(base, 'p.json').poseProposal).toBe(false);
    expect(validatePreset({ ...base, poseProposal: true }, 'p.json').poseProposal).toBe(true);
    expect(() => validatePreset({ ...base, poseProposal: 'yes' }, 'p.json')).toThrow(
      /p.json: 'poseProposal' must be true or false, got "yes"/,
    );
    // Refused when the planner is built, not at the first plan, for a model without world-vector actions.
    const noWorld: ActionStats = { ...stats, names: ['a', 'b', 'c'] };
    expect(
      () => new SimOraclePlanning(validatePreset({ ...base, poseProposal: true }, 'p.json'), { imageHeight: 32, imageWidth: 40 }, noWorld),
    ).toThrow(/planner preset 'p', actions: a straight move needs/);
    expect(() => validatePreset({ ...base, cost: { ...cost, pose: -1 } }, 'p.json')).toThrow(/p.json: 'cost.pose' must be a number/);
  });

  it("oracle: with the pose cost alone and an unchanged picture, moves towards the goal picture's gripper position", async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 32, imageWidth: 40 });
    try {
      const start = env.reset(0).observation;
      const p = start.proprio!;
      const goal = withGripperAt(start, [p[0]!, p[1]! + 0.1, p[2]!]);
      const preset = validatePreset(
        rawTestPreset({
          name: 'pose',
          optimizer: { candidates: 12, iterations: 3, elites: 3, initStd: 0.6 },
          graceMs: 1000,
          cost: { representation: 0, pixel: 0, pose: 5, actionMagnitude: 0, terminal: 1 },
        }),
        'pose preset',
      );
      const oracle = new SimOraclePlanning(preset, { imageHeight: 32, imageWidth: 40 }, stats, 1);
      oracle.attach(env);
      const plan = await oracle.plan(start, { images: [goal] });
      expect(plan.actions[0]!.worldVector[1]).toBeGreaterThan(0.02);
      // The cost is the simulated gripper's distance: positive, and below where it started (5 x 10 cm).
      expect(plan.cost).toBeGreaterThan(0);
      expect(plan.cost).toBeLessThan(5 * 0.1);
    } finally {
      env.close();
    }
  });

  it('learned planner (experiments/oracle-pose-only, shipped model): the predicted path leads to the goal position; without one the term is off', async () => {
    const planning = await loadWorldModelPlanning('experiments/oracle-pose-only', 'models/tiny-sim-shift', { seed: 3, lockstep: true });
    const env = await SimEnv.create({
      task: 'pick-can',
      seed: 0,
      imageHeight: planning.cfg.imageHeight,
      imageWidth: planning.cfg.imageWidth,
    });
    try {
      const start = env.reset(0).observation;
      const p = start.proprio!;
      const plan = await planning.plan(start, { images: [withGripperAt(start, [p[0]! - 0.1, p[1]!, p[2]!])], gripper: 'open' });
      expect(plan.actions[0]!.worldVector[0]).toBeLessThan(-0.02);
      // A goal picture without a recorded gripper position (a service goal): only the action magnitude is left.
      const free = await planning.plan(start, { images: [{ ...start, proprio: undefined }], gripper: 'open' });
      expect(free.cost).toBeLessThan(0.02);
    } finally {
      env.close();
      planning.dispose();
    }
  });
});
