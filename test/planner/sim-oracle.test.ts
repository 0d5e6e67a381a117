import { beforeAll, describe, expect, it } from 'vitest';
import type { ActionStats } from '../../src/core/action-stats.js';
import { SimOraclePlanning } from '../../src/planner/sim-oracle.js';
import { validatePreset } from '../../src/planner/presets.js';
import { SimEnv } from '../../src/sim/env.js';
import { useTestBackend } from '../helpers/tf.js';
import { rawTestPreset } from '../helpers/presets.js';

// Normalised +-1 = +-6 cm per axis, +-0.3 rad yaw, gripper -1..1: the simulator's own limits.
const names = [
  'world_vector.x',
  'world_vector.y',
  'world_vector.z',
  'rotation_delta.roll',
  'rotation_delta.pitch',
  'rotation_delta.yaw',
  'gripper_closedness_action',
];
const lim = [0.06, 0.06, 0.06, 0.3, 0.3, 0.3, 1];
const stats: ActionStats = {
  names,
  count: 1,
  mean: lim.map(() => 0),
  std: lim.map(() => 1),
  min: lim.map((l) => -l),
  max: lim,
  q01: lim.map((l) => -l),
  q99: lim,
};
const preset = validatePreset(
  rawTestPreset({
    name: 't',
    optimizer: { candidates: 12, iterations: 3, elites: 3, initStd: 0.6 },
    graceMs: 1000,
    cost: { representation: 0, pixel: 0, pyramid: 1, actionMagnitude: 0, terminal: 1 },
  }),
  'test preset',
);

describe('planner with the simulator as its model (oracle)', () => {
  beforeAll(useTestBackend);

  it('plans towards a goal picture two moves away and leaves the episode where it was', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80 });
    try {
      const start = env.reset(0);
      const forward = {
        worldVector: [0.06, 0, 0] as [number, number, number],
        rotationDelta: [0, 0, 0] as [number, number, number],
        gripperClosedness: 0,
        terminateEpisode: [0, 1, 0] as [number, number, number],
      };
      env.step(forward);
      const goal = env.step(forward).observation;
      env.reset(0);
      const before = env.snapshot();
      const oracle = new SimOraclePlanning(preset, { imageHeight: 32, imageWidth: 40 }, stats, 1);
      oracle.attach(env);
      const plan = await oracle.plan(start.observation, { images: [goal] });
      expect(plan.actions[0]!.worldVector[0]).toBeGreaterThan(0.02); // forward, as the goal picture shows
      expect(plan.cost).toBeLessThan(0.5 * oracle.imageDistance(start.observation, goal));
      expect(env.snapshot()).toEqual(before);
    } finally {
      env.close();
    }
  });

  it('with the reach cost alone, heads for a goal picture six moves away', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80 });
    try {
      const start = env.reset(0);
      const side = {
        worldVector: [0, -0.06, 0] as [number, number, number],
        rotationDelta: [0, 0, 0] as [number, number, number],
        gripperClosedness: 0,
        terminateEpisode: [0, 1, 0] as [number, number, number],
      };
      let goal = start.observation;
      for (let i = 0; i < 6; i++) goal = env.step(side).observation;
      env.reset(0);
      const reachOnly = validatePreset(
        { ...preset, cost: { representation: 0, pixel: 0, pyramid: 0, change: 0, reach: 1, actionMagnitude: 0, terminal: 1 } },
        'reach preset',
      );
      const oracle = new SimOraclePlanning(reachOnly, { imageHeight: 32, imageWidth: 40 }, stats, 1);
      oracle.attach(env);
      const plan = await oracle.plan(start.observation, { images: [goal] });
      expect(plan.actions[0]!.worldVector[1]).toBeLessThan(-0.02);
    } finally {
      env.close();
    }
  });
});
