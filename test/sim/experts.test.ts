import { describe, expect, it } from 'vitest';
import type { Rt1Action } from '../../src/core/action.js';
import { SimEnv, type StepResult } from '../../src/sim/env.js';
import { expertLabeller, expertScript, makeScriptedPolicy, validateScript } from '../../src/sim/expert.js';
import { listTasks } from '../../src/sim/tasks.js';
import { distance } from '../../src/util/vec3.js';

async function runExpert(task: string, seed: number, opts: { noise?: number; explore?: number } = {}) {
  const env = await SimEnv.create({ task, seed, imageHeight: 8, imageWidth: 10 });
  const p = makeScriptedPolicy('expert', task, seed, opts);
  let r = env.reset();
  p.reset(env);
  const yaws: number[] = [];
  while (!r.done) {
    const a = p.act(r);
    yaws.push(a.rotationDelta[2]);
    r = env.step(a);
  }
  env.close();
  return { r, yaws };
}

describe('expert scripts', () => {
  it('every task has a valid script in policies/experts/', () => {
    for (const t of listTasks()) expect(expertScript(t.name).task).toBe(t.name);
  });

  it('bad scripts fail with the file, phase and field', () => {
    const ok = { name: 'a', anchor: 'knob', offset: [0, 0, 0], gripper: 'open' };
    expect(() => validateScript({ task: 'x', phases: [ok, { ...ok, anchor: 'moon' }] }, 'x.json')).toThrow(
      /x\.json: phase 1 \("a"\): "anchor" must be one of/,
    );
    expect(() => validateScript({ task: 'x', phases: [{ ...ok, offset: [0, 0] }] }, 'x.json')).toThrow(/"offset" must be 3 numbers/);
    expect(() => validateScript({ task: 'x', phases: [{ ...ok, speeed: 1 }] }, 'x.json')).toThrow(/unknown field "speeed"/);
    expect(() => validateScript({ task: 'x', phases: [{ ...ok, yaw: 'spin' }] }, 'x.json')).toThrow(/"yaw" must be/);
    expect(() => validateScript({ task: 'x', phases: [] }, 'x.json')).toThrow(/"phases": expected a non-empty array/);
  });

  it('the move-near expert turns the gripper square to the block before grasping, then back', async () => {
    const { r, yaws } = await runExpert('move-near', 3);
    expect(r.success).toBe(true);
    expect(Math.min(...yaws)).toBeLessThan(-0.2);
    expect(Math.max(...yaws)).toBeGreaterThan(0.2);
  });

  it('the drawer-chain expert goes from the apple to the push without catching its fingers on the open drawer', async () => {
    // With the retreat from the apple 8 cm up (11 cm now), the closed fingers met the open drawer's
    // front on the way to the knob and slid up it for about 20 of the task's 120 steps.
    for (const seed of [0, 1]) {
      const env = await SimEnv.create({ task: 'drawer-chain', seed, imageHeight: 8, imageWidth: 10 });
      const p = makeScriptedPolicy('expert', 'drawer-chain', seed);
      let r = env.reset();
      p.reset(env);
      let stalled = 0;
      let prev = env.scene.gripper().pos;
      while (!r.done) {
        const a = p.act(r);
        r = env.step(a);
        const pos = env.scene.gripper().pos;
        const asked = Math.hypot(...a.worldVector);
        const moved = distance(pos, prev);
        if (r.stagesDone === 2 && asked > 0.02 && moved < 0.25 * asked) stalled++;
        prev = pos;
      }
      env.close();
      expect(r.success, `seed ${seed}`).toBe(true);
      expect(stalled, `seed ${seed}`).toBeLessThanOrEqual(2);
    }
  });

  it('with noise and exploration the expert still mostly succeeds (CI: a few seeds)', async () => {
    let ok = 0;
    for (const seed of [0, 1, 2]) ok += (await runExpert('pick-can', seed, { noise: 0.005, explore: 0.05 })).r.success ? 1 : 0;
    expect(ok).toBeGreaterThanOrEqual(2);
  });
});

describe('the expert as a labeller of states another policy reaches (DAgger)', () => {
  const still = {
    worldVector: [0, 0, 0] as [number, number, number],
    rotationDelta: [0, 0, 0] as [number, number, number],
    gripperClosedness: 0,
    terminateEpisode: [0, 1, 0] as [number, number, number],
  };
  type Labeller = ReturnType<typeof expertLabeller>;

  /** The robot executes the labeller's own moves until `until` holds. */
  function followLabels(env: SimEnv, labeller: Labeller, r: StepResult, until: (r: StepResult) => boolean) {
    let label = labeller.act(r);
    while (!until(r) && !r.done) {
      r = env.step(label);
      label = labeller.act(r);
    }
    return { r, label };
  }

  /** The robot opens its fingers and moves off back and up its own way; the labeller sees every step, as in sim dagger. */
  function letGoAndMoveOff(env: SimEnv, labeller: Labeller): Rt1Action {
    let label: Rt1Action | undefined;
    for (let t = 0; t < 4; t++) label = labeller.act(env.step({ ...still, worldVector: [-0.04, 0, 0.03], gripperClosedness: -1 }));
    return label!;
  }

  it('keeps labelling the move to a waypoint the robot does not reach, where the demonstrating expert gives up after 25 steps', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const labeller = expertLabeller('pick-can', 0);
    const demo = makeScriptedPolicy('expert', 'pick-can', 0) as ReturnType<typeof expertLabeller>;
    labeller.reset(env);
    demo.reset(env);
    const labels: Rt1Action[] = [];
    for (let t = 0; t < 40; t++) {
      labels.push(labeller.act(r));
      demo.act(r);
      r = env.step(still); // the robot does not move
    }
    env.close();
    expect(demo.phaseIndex).toBeGreaterThan(0);
    expect(labeller.phaseIndex).toBe(0);
    for (const a of labels) {
      expect(a.gripperClosedness).toBe(-1);
      expect(Math.hypot(...a.worldVector)).toBeGreaterThan(0.01);
      a.worldVector.forEach((v, i) => expect(v).toBeCloseTo(labels[0]!.worldVector[i]!, 6));
    }
  });

  it('labels a descent for a gripper already over the can below the approach height, where a fresh demonstration goes up first', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const can = env.scene.bodyPos(env.taskSetup.targets[0]!);
    // Drive the gripper high over the can, then down to 12 cm over it: between the script's approach (17 cm) and grasp (7 cm) heights.
    for (let t = 0; t < 30; t++) {
      const g = env.scene.gripper().pos;
      const d = [can[0] - g[0], can[1] - g[1], can[2] + (t < 20 ? 0.25 : 0.12) - g[2]];
      const s = Math.min(1, 0.04 / Math.max(Math.hypot(...d), 1e-9));
      r = env.step({ ...still, worldVector: [d[0]! * s, d[1]! * s, d[2]! * s], gripperClosedness: -1 });
    }
    const g = env.scene.gripper().pos;
    expect(Math.hypot(g[0] - can[0], g[1] - can[1])).toBeLessThan(0.015);
    expect(g[2] - can[2]).toBeCloseTo(0.12, 2);
    const now = env.scene.bodyPos(env.taskSetup.targets[0]!);
    expect(Math.hypot(now[0] - can[0], now[1] - can[1], now[2] - can[2])).toBeLessThan(0.001); // not knocked
    const labeller = expertLabeller('pick-can', 0);
    labeller.reset(env);
    const label = labeller.act(r);
    const demo = makeScriptedPolicy('expert', 'pick-can', 0);
    demo.reset(env);
    const demoMove = demo.act(r);
    env.close();
    expect(labeller.phaseIndex).toBe(1);
    expect(label.worldVector[2]).toBeLessThan(-0.01);
    expect(demoMove.worldVector[2]).toBeGreaterThan(0.01);
  });

  it('labels the carry, fingers closed, for an object the robot already holds, not a new approach with open fingers', async () => {
    const env = await SimEnv.create({ task: 'drawer-place', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const demo = makeScriptedPolicy('expert', 'drawer-place', 0) as ReturnType<typeof expertLabeller>;
    demo.reset(env);
    const phases = expertScript('drawer-place').phases;
    const lift = phases.findIndex((p) => p.name === 'lift');
    // The demonstration opens the drawer, grasps the apple and starts lifting it.
    while (demo.phaseIndex < lift && !r.done) r = env.step(demo.act(r));
    for (let t = 0; t < 2; t++) r = env.step(demo.act(r));
    expect(r.stagesDone).toBe(1);
    // A labeller that comes in now starts at "above knob", skips the finished stage to "above apple", and sees the apple held.
    const labeller = expertLabeller('drawer-place', 0);
    labeller.reset(env);
    const label = labeller.act(r);
    expect(labeller.phaseIndex).toBe(lift);
    expect(label.gripperClosedness).toBe(1);
    expect(label.worldVector[2]).toBeGreaterThan(0.01);
    // Fingers closed on nothing beside the apple hold nothing: that labeller still approaches with open fingers.
    for (let t = 0; t < 6; t++) r = env.step({ ...still, gripperClosedness: -1 });
    for (let t = 0; t < 4; t++) r = env.step({ ...still, worldVector: [0, 0.04, 0], gripperClosedness: 1 });
    const empty = expertLabeller('drawer-place', 0);
    empty.reset(env);
    const approach = empty.act(r);
    env.close();
    expect(phases[empty.phaseIndex]!.gripper).toBe('open');
    expect(approach.gripperClosedness).toBe(-1);
  });

  it("labels the way to the drawer for an apple carried up and across at once, not back over the apple's old spot", async () => {
    const env = await SimEnv.create({ task: 'drawer-place', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const demo = makeScriptedPolicy('expert', 'drawer-place', 0) as ReturnType<typeof expertLabeller>;
    demo.reset(env);
    const phases = expertScript('drawer-place').phases;
    const lift = phases.findIndex((p) => p.name === 'lift');
    while (demo.phaseIndex < lift && !r.done) r = env.step(demo.act(r));
    const labeller = expertLabeller('drawer-place', 0);
    labeller.reset(env);
    let label = labeller.act(r);
    expect(labeller.phaseIndex).toBe(lift);
    const grasped = env.scene.gripper().pos;
    const d = env.scene.drawerInterior();
    const drawer = [grasped[0], (d.yMin + d.yMax) / 2];
    // The robot rises and heads for the drawer together, never passing the lift's waypoint 32 cm over the grasp.
    for (let t = 0; t < 6; t++) {
      const g = env.scene.gripper().pos;
      const dy = Math.sign(drawer[1]! - g[1]) * 0.035;
      r = env.step({ ...still, worldVector: [0, dy, 0.03], gripperClosedness: 1 });
      label = labeller.act(r);
    }
    const g = env.scene.gripper().pos;
    const towards = Math.sign(drawer[1]! - grasped[1]);
    env.close();
    expect(Math.abs(g[1] - grasped[1])).toBeGreaterThan(0.15);
    expect(phases[labeller.phaseIndex]!.name).toBe('above drawer');
    expect(label.gripperClosedness).toBe(1);
    expect(label.worldVector[1] * towards).toBeGreaterThan(0); // on towards the drawer, not back
  });

  it("goes on with the next stage once the robot has let go after a finished stage, not to the stage's retreat waypoint", async () => {
    const env = await SimEnv.create({ task: 'drawer-place', seed: 0, imageHeight: 8, imageWidth: 10 });
    const r = env.reset();
    const phases = expertScript('drawer-place').phases;
    const retreat = phases.findIndex((p) => p.name === 'retreat');
    // The labeller follows the robot through the drawer stage (its own moves executed) up to its release.
    const labeller = expertLabeller('drawer-place', 0);
    labeller.reset(env);
    const held = followLabels(env, labeller, r, () => labeller.phaseIndex >= retreat - 1);
    expect(held.r.stagesDone).toBe(1);
    expect(held.label.gripperClosedness).toBe(1); // still holding the knob: the release comes next
    // The robot lets go and moves off its own way, wide of the retreat waypoint.
    const label = letGoAndMoveOff(env, labeller);
    env.close();
    expect(phases[labeller.phaseIndex]!.name).toBe('above apple');
    expect(label.gripperClosedness).toBe(-1);
  });

  it('goes on with the next stage when the robot lets go of the knob mid-pull once the drawer is open, not on with the pull', async () => {
    const env = await SimEnv.create({ task: 'drawer-chain', seed: 0, imageHeight: 8, imageWidth: 10 });
    const r = env.reset();
    const phases = expertScript('drawer-chain').phases;
    const pull = phases.findIndex((p) => p.name === 'pull');
    // The robot executes the labeller's own moves until the drawer counts as open, part-way through the pull.
    const labeller = expertLabeller('drawer-chain', 0);
    labeller.reset(env);
    const held = followLabels(env, labeller, r, (x) => x.stagesDone >= 1);
    expect(labeller.phaseIndex).toBe(pull);
    expect(held.label.gripperClosedness).toBe(1); // holding the knob: the pull goes on
    // The robot lets go there and moves off its own way.
    const label = letGoAndMoveOff(env, labeller);
    env.close();
    expect(phases[labeller.phaseIndex]!.name).toBe('above apple');
    expect(label.gripperClosedness).toBe(-1);
  });

  it('labels the release for an apple lowered straight into the drawer, not a climb back to the waypoint above it', async () => {
    const env = await SimEnv.create({ task: 'drawer-chain', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const phases = expertScript('drawer-chain').phases;
    const above = phases.findIndex((p) => p.name === 'above drawer');
    const labeller = expertLabeller('drawer-chain', 0);
    labeller.reset(env);
    ({ r } = followLabels(env, labeller, r, () => labeller.phaseIndex >= above));
    let label: Rt1Action | undefined;
    expect(r.stagesDone).toBe(1);
    // The robot carries the apple over the drawer 3 cm aside and 4 cm below the expert's waypoint
    // there (outside its 1.5 cm), then lowers it straight in: it never passes that waypoint.
    const d = env.scene.drawerInterior();
    const e = env.scene.drawerExposed();
    const x = Math.min((e.xMin + e.xMax) / 2, e.xMax - 0.045);
    const y = (d.yMin + d.yMax) / 2 + 0.03;
    const over = [x, y, d.floor + 0.245 - 0.04];
    const into = [x, y, d.floor + 0.1];
    for (let t = 0; t < 60 && r.stagesDone < 2; t++) {
      const g = env.scene.gripper().pos;
      const to = Math.hypot(g[0] - over[0]!, g[1] - over[1]!) > 0.005 ? over : into;
      const v = [to[0]! - g[0], to[1]! - g[1], to[2]! - g[2]];
      const s = Math.min(1, 0.03 / Math.max(Math.hypot(...v), 1e-9));
      r = env.step({ ...still, worldVector: [v[0]! * s, v[1]! * s, v[2]! * s], gripperClosedness: 1 });
      label = labeller.act(r);
    }
    env.close();
    expect(r.stagesDone).toBe(2);
    expect(phases[labeller.phaseIndex]!.name).toBe('release');
    expect(label?.gripperClosedness).toBe(-1);
  });

  it('starts the apple stage over when the robot lets the apple go outside the drawer near the top of its workspace', async () => {
    const env = await SimEnv.create({ task: 'drawer-chain', seed: 0, imageHeight: 8, imageWidth: 10 });
    const phases = expertScript('drawer-chain').phases;
    const release = phases.findIndex((p) => p.name === 'release' && p.stage === 1);
    const labeller = expertLabeller('drawer-chain', 0);
    labeller.reset(env);
    // The labeller carries the apple over the drawer; there the robot takes it out in front, at the top of its workspace, and lets go.
    let { r } = followLabels(env, labeller, env.reset(), () => labeller.phaseIndex >= release - 1);
    for (let t = 0; t < 8; t++) {
      const g = env.scene.gripper().pos;
      r = env.step({ ...still, worldVector: [Math.max(-0.05, 0.42 - g[0]), 0, 0.05], gripperClosedness: 1 });
      labeller.act(r);
    }
    for (let t = 0; t < 4; t++) labeller.act((r = env.step({ ...still, gripperClosedness: -1 })));
    expect(r.stagesDone).toBe(1); // the apple is not in the drawer
    // Then it follows the labels: the retreat's waypoint, 11 cm higher, is out of reach; the labeller must not wait for it.
    ({ r } = followLabels(env, labeller, r, () => (phases[labeller.phaseIndex]!.stage ?? 0) === 1 && labeller.phaseIndex < release - 4));
    env.close();
    expect(r.done).toBe(false);
    expect(phases[labeller.phaseIndex]!.name).toBe('above apple');
  });

  it('driving the robot itself, the labeller finishes the drawer tasks: after letting go it retreats clear of the drawer first', async () => {
    for (const task of ['drawer-place', 'drawer-chain']) {
      const env = await SimEnv.create({ task, seed: 0, imageHeight: 8, imageWidth: 10 });
      let r = env.reset();
      const phases = expertScript(task).phases;
      const labeller = expertLabeller(task, 0);
      labeller.reset(env);
      let label = labeller.act(r);
      const afterLetGo: string[] = [];
      while (!r.done) {
        const wasClosed = env.gripperClosedCommanded;
        r = env.step(label);
        label = labeller.act(r);
        if (wasClosed && !env.gripperClosedCommanded && r.stagesDone === 1) afterLetGo.push(phases[labeller.phaseIndex]!.name);
      }
      env.close();
      expect(r.success, task).toBe(true);
      expect(afterLetGo[0], task).toMatch(/release|retreat/);
    }
  });

  it('skips the phases of a stage that is already done when it had not grasped for it yet', async () => {
    const env = await SimEnv.create({ task: 'drawer-place', seed: 0, imageHeight: 8, imageWidth: 10 });
    let r = env.reset();
    const demo = makeScriptedPolicy('expert', 'drawer-place', 0);
    demo.reset(env);
    while (r.stagesDone < 1 && !r.done) r = env.step(demo.act(r));
    expect(r.stagesDone).toBe(1);
    // A labeller that comes in now, with the drawer open: its script starts at "above knob" (stage 0).
    const labeller = expertLabeller('drawer-place', 0);
    labeller.reset(env);
    const label = labeller.act(r);
    env.close();
    const phases = expertScript('drawer-place').phases;
    expect(phases[labeller.phaseIndex]!.stage).toBe(1);
    expect(phases.findIndex((p) => p.stage === 1)).toBe(labeller.phaseIndex);
    expect(label.gripperClosedness).toBe(-1);
  });
});

// The bar: >= 95 % over 100 seeded episodes per task (about 2 minutes on 2 cores; `npm run bench -- --only sim` prints the table).
describe.skipIf(!process.env.SELFFLOW_SLOW_TESTS)('expert success over 100 seeds (slow)', () => {
  for (const t of listTasks()) {
    it(`${t.name}: >= 95/100`, async () => {
      let ok = 0;
      for (let seed = 0; seed < 100; seed++) ok += (await runExpert(t.name, seed)).r.success ? 1 : 0;
      expect(ok).toBeGreaterThanOrEqual(95);
    }, 600_000);
  }
});
