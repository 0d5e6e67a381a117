/** Each task's stage predicates on hand-built states: objects and the drawer are posed directly, no policy involved. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimEnv } from '../../src/sim/env.js';
import type { ObjectName } from '../../src/sim/state.js';
import { taskByName } from '../../src/sim/tasks.js';

const envs = new Map<string, SimEnv>();

beforeAll(async () => {
  for (const t of ['pick-can', 'move-near', 'drawer-open', 'drawer-close', 'drawer-place', 'drawer-chain'])
    envs.set(t, await SimEnv.create({ task: t, seed: 7, imageHeight: 8, imageWidth: 10 }));
});
afterAll(() => envs.forEach((e) => e.close()));

/** Poses the scene (no physics step: the state is exactly what we set) and returns each stage predicate's verdict. */
function verdicts(task: string, pose: (env: SimEnv) => void): boolean[] {
  const env = envs.get(task)!;
  env.reset(7);
  pose(env);
  const s = env.scene;
  s.mj.mj_forward(s.model, s.data);
  return taskByName(task).predicates.map((p) => p(s, env.taskSetup));
}

const put = (o: ObjectName, pos: [number, number, number]) => (env: SimEnv) => env.scene.placeObject(o, pos);

describe('task predicates on hand-built states', () => {
  it('reset layouts satisfy no stage (drawer-close starts open)', () => {
    for (const t of envs.keys()) {
      expect(
        verdicts(t, () => {}),
        t,
      ).toEqual(taskByName(t).predicates.map(() => false));
    }
    expect(envs.get('drawer-close')!.scene.drawerOpening()).toBeGreaterThan(0.12);
  });

  it('pick-can: the can counts as lifted 8 cm above its resting height, not 5 cm', () => {
    expect(verdicts('pick-can', put('can', [0.5, -0.1, 0.056 + 0.09]))).toEqual([true]);
    expect(verdicts('pick-can', put('can', [0.5, -0.1, 0.056 + 0.05]))).toEqual([false]);
  });

  it('move-near: blue within 10 cm of yellow (centres) and resting on the table', () => {
    const yellowAt = (env: SimEnv) => env.scene.bodyPos('block_yellow');
    const beside =
      (dx: number, z = 0.026) =>
      (env: SimEnv) => {
        const y = yellowAt(env);
        env.scene.placeObject('block_blue', [y[0] + dx, y[1], z]);
      };
    expect(verdicts('move-near', beside(0.08))).toEqual([true]);
    expect(verdicts('move-near', beside(0.12))).toEqual([false]);
    expect(verdicts('move-near', beside(0.08, 0.12))).toEqual([false]); // still held above it
  });

  it('drawer-open needs 12 cm; drawer-close needs under 3 cm', () => {
    expect(verdicts('drawer-open', (e) => e.scene.setJoint('drawer', -0.13))).toEqual([true]);
    expect(verdicts('drawer-open', (e) => e.scene.setJoint('drawer', -0.1))).toEqual([false]);
    expect(verdicts('drawer-close', (e) => e.scene.setJoint('drawer', -0.02))).toEqual([true]);
    expect(verdicts('drawer-close', (e) => e.scene.setJoint('drawer', -0.05))).toEqual([false]);
  });

  it('drawer-place: the apple counts only inside the drawer interior, below its rim', () => {
    const inside =
      (dz: number, dx = 0) =>
      (env: SimEnv) => {
        const s = env.scene;
        s.setJoint('drawer', -0.16);
        s.mj.mj_forward(s.model, s.data); // drawerInterior() reads the drawer body's pose
        const d = s.drawerInterior();
        s.placeObject('apple', [(d.xMin + d.xMax) / 2 + dx, (d.yMin + d.yMax) / 2, d.floor + dz]);
      };
    expect(verdicts('drawer-place', inside(0.03))).toEqual([true, true]);
    expect(verdicts('drawer-place', inside(0.2))).toEqual([true, false]); // above the drawer, not in it
    expect(verdicts('drawer-place', inside(0.03, -0.3))).toEqual([true, false]); // in front of it
    expect(verdicts('drawer-place', put('apple', [0.45, -0.1, 0.031]))).toEqual([false, false]);
  });

  it('drawer-chain: the last stage needs the drawer closed with the apple still inside', () => {
    const closedWithApple = (applePos: 'inside' | 'table') => (env: SimEnv) => {
      const s = env.scene;
      s.setJoint('drawer', -0.01);
      s.mj.mj_forward(s.model, s.data);
      const d = s.drawerInterior();
      s.placeObject('apple', applePos === 'inside' ? [d.xMax - 0.04, (d.yMin + d.yMax) / 2, d.floor + 0.032] : [0.45, -0.1, 0.031]);
    };
    expect(verdicts('drawer-chain', closedWithApple('inside'))).toEqual([false, true, true]);
    expect(verdicts('drawer-chain', closedWithApple('table'))).toEqual([false, false, false]);
  });

  it('stages are reached in order: a later predicate does not count before the earlier ones', async () => {
    const env = envs.get('drawer-chain')!;
    env.reset(7);
    const zero = {
      worldVector: [0, 0, 0] as [number, number, number],
      rotationDelta: [0, 0, 0] as [number, number, number],
      gripperClosedness: 0,
      terminateEpisode: [0, 1, 0] as [number, number, number],
    };
    // Closed drawer with the apple already inside satisfies predicates 2 and 3, but stage 1 (open) never happened.
    closedApple(env);
    expect(env.step(zero).stagesDone).toBe(0);
  });
});

function closedApple(env: SimEnv): void {
  const s = env.scene;
  s.mj.mj_forward(s.model, s.data);
  const d = s.drawerInterior();
  s.placeObject('apple', [d.xMax - 0.04, (d.yMin + d.yMax) / 2, d.floor + 0.032]);
}
