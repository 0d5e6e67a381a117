import type { ActionStats } from '../../src/core/action-stats.js';

/** Action statistics of an arm and a gripper: x, y, z each map -0.06..0.06 m to -1..1; the gripper -1..1 to itself. */
export const ARM_AND_GRIPPER_STATS: ActionStats = {
  names: ['world_vector.x', 'world_vector.y', 'world_vector.z', 'gripper_closedness_action'],
  count: 1,
  mean: [0, 0, 0, 0],
  std: [1, 1, 1, 1],
  min: [-0.06, -0.06, -0.06, -1],
  max: [0.06, 0.06, 0.06, 1],
  q01: [-0.06, -0.06, -0.06, -1],
  q99: [0.06, 0.06, 0.06, 1],
};

/**
 * A small planner preset for tests, as raw JSON for validatePreset: CEM, horizon 2, no proposals,
 * pixel cost only. `optimizer` values are merged into the default optimizer; other fields replace
 * whole top-level sections or fields.
 */
export function rawTestPreset(fields: { optimizer?: Record<string, unknown>; [k: string]: unknown } = {}): Record<string, unknown> {
  const { optimizer, ...rest } = fields;
  return {
    optimizer: {
      kind: 'cem',
      horizon: 2,
      candidates: 6,
      iterations: 2,
      elites: 2,
      temperature: 0.1,
      initStd: 0.3,
      minStd: 0.05,
      proposalFraction: 0,
      warmStartPad: 'repeat',
      ...optimizer,
    },
    budgetMs: 1000,
    graceMs: 100,
    rollout: { flowSteps: 1, integrator: 'euler' },
    cost: { representation: 0, pixel: 1, actionMagnitude: 0, terminal: 0 },
    executeSteps: 1,
    ...rest,
  };
}
