/**
 * The product presets plan from what a real robot's goal carries: the pictures, the instruction
 * and the robot's own current state. A simulator storyboard also records, with each picture, where
 * the gripper was (the picture's proprioception) and whether it was closed (`goal.gripper`); a
 * preset that reads either is an oracle. Checked on the planner's inputs: the goal handed to each
 * preset records every property read from it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeAction } from '../../src/core/action.js';
import type { Observation } from '../../src/core/types.js';
import { loadPlannerPreset, presetNames } from '../../src/planner/presets.js';
import { loadWorldModelPlanning, type WorldModelPlanning } from '../../src/planner/world-model-planner.js';
import { SimEnv } from '../../src/sim/env.js';
import { subgoals } from '../../src/sim/goals.js';
import { shippedModel } from '../../src/util/package-root.js';
import { useTestBackend } from '../helpers/tf.js';
import { describeGoalReads, oracleGoalReads, recordGoalReads, recordReads } from '../../src/planner/goal-reads.js';

/** The shipped model: its directory holds the state reader that presets with goalState "read" use. */
const MODEL = shippedModel();
const TASK = 'pick-can';
const SEED = 3;
const [H, W] = [32, 40];

interface Scene {
  now: Observation[];
  pictures: Observation[];
  instruction: string;
}

/** Two consecutive camera frames of an episode and the storyboard's pictures, all with proprioception as the simulator records it. */
async function scene(): Promise<Scene> {
  const board = await subgoals(TASK, SEED, H, W, 'phase');
  const env = await SimEnv.create({ task: TASK, seed: SEED, imageHeight: H, imageWidth: W });
  try {
    const first = env.reset(SEED);
    const second = env.step({ ...safeAction(), worldVector: [0.02, 0, 0] });
    return {
      now: [first.observation, second.observation],
      pictures: board.slice(0, 2).map((g) => g.observation),
      instruction: env.task.instruction,
    };
  } finally {
    env.close();
  }
}

/** Plans twice (a fresh plan and a warm-started one) and returns every property read from the goal and the observations. */
/** `observations: false` hands the observations over plain (scoring workers get a structured clone of them). */
async function goalReads(planning: WorldModelPlanning, s: Scene, observations = true): Promise<Set<string>> {
  const reads = new Set<string>();
  for (const p of s.pictures) expect(p.proprio?.length).toBeGreaterThanOrEqual(5);
  const goal = recordGoalReads({ images: s.pictures, instruction: s.instruction, gripper: 'closed' }, reads);
  planning.reset(SEED);
  for (const [i, o] of s.now.entries()) {
    const plan = await planning.plan(observations ? recordReads({ ...o }, 'observation', reads) : o, goal);
    expect([i, plan.safe, plan.reason]).toEqual([i, false, undefined]);
    expect(plan.actions.length).toBeGreaterThan(0);
  }
  return reads;
}

describe('what the product presets read of a goal', () => {
  let s: Scene;
  const open: WorldModelPlanning[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-goal-reads-'));
  /**
   * The preset with a smaller search (at most 4 candidates, one iteration, one flow step): what a
   * plan reads of its goal comes from the cost, the action constraints and the proposals, none of
   * which the search size changes, and the quality preset's full search takes minutes per plan here.
   */
  const load = async (preset: string, planWorkers = 1) => {
    const full = loadPlannerPreset(preset);
    const small = {
      ...full,
      optimizer: {
        ...full.optimizer,
        candidates: Math.min(full.optimizer.candidates, 4),
        elites: Math.min(full.optimizer.elites, 2),
        iterations: 1,
      },
      rollout: { ...full.rollout, flowSteps: 1 },
    };
    const file = join(dir, `${preset.replace('/', '-')}.json`);
    writeFileSync(file, JSON.stringify(small));
    const p = await loadWorldModelPlanning(file, MODEL, { seed: 0, lockstep: true, backend: 'wasm', planWorkers });
    open.push(p);
    return p;
  };
  beforeAll(async () => {
    await useTestBackend();
    s = await scene();
  }, 60_000);
  afterAll(() => open.splice(0).forEach((p) => p.dispose()));

  it('the goal pictures, never the positions or gripper states recorded with them', async () => {
    const names = presetNames();
    expect(names).toEqual(expect.arrayContaining(['wm-cem-fast', 'wm-policy']));
    for (const name of names) {
      const reads = await goalReads(await load(name), s);
      // What a robot's goal carries may be read; the pictures are read (the planner-less policy needs only the instruction and the camera).
      expect([name, oracleGoalReads(reads)]).toEqual([name, []]);
      expect([name, reads.has('observation.image')]).toEqual([name, true]);
      // What the demo prints comes from the same reads.
      expect([name, describeGoalReads(reads)]).toEqual([
        name,
        expect.stringMatching(/^the planner read .*and never the gripper positions/),
      ]);
    }
  }, 300_000);

  it('the same with the candidates scored on two threads: the workers get the pictures, not what was recorded with them', async () => {
    const planning = await load('wm-cem-fast', 2);
    const reads = await goalReads(planning, s, false);
    expect(planning.planWorkers).toBe(2);
    expect(oracleGoalReads(reads)).toEqual([]);
    expect(reads.has('goal.images[1].image')).toBe(true);
  }, 120_000);

  it('catches an oracle preset reading them', async () => {
    const reads = await goalReads(await load('experiments/oracle-cem-straight'), s);
    expect(oracleGoalReads(reads)).toEqual(expect.arrayContaining(['goal.gripper', expect.stringMatching(/^goal\.images\[1\]\.proprio$/)]));
    // The robot's current state (its own proprioception) is allowed and used for the straight move.
    expect(reads.has('observation.proprio')).toBe(true);
    expect(describeGoalReads(reads)).toBe(
      "ORACLE: the planner read the goal pictures and the instruction and the gripper positions and open/closed gripper states recorded with the pictures, which a real robot's goal does not carry",
    );
  }, 120_000);

  it('describes a planner that read the pictures only, or nothing', () => {
    expect(describeGoalReads(new Set(['goal.images', 'goal.images[0].image']))).toBe(
      'the planner read the goal pictures, and never the gripper positions or open/closed states recorded with the pictures',
    );
    expect(describeGoalReads(new Set(['goal.instruction']))).toMatch(/^the planner read the instruction, and never/);
    expect(describeGoalReads(new Set())).toMatch(/^the planner read nothing of its goals/);
  });
});
