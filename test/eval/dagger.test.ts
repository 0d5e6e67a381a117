/**
 * DAgger data: a policy drives, the scripted expert labels every step, and the policy's training
 * keeps those episodes whatever their outcome.
 */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Rt1Action } from '../../src/core/action.js';
import type { Goal, Observation } from '../../src/core/types.js';
import { loadCard } from '../../src/data/card.js';
import { declaredImageSize } from '../../src/image/decode.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { collectDagger, daggerEpisode } from '../../src/eval/dagger.js';
import { episodeFrameSize, type EpisodePlanning } from '../../src/planner/episode.js';
import { loadPlannerPreset } from '../../src/planner/presets.js';
import { policySamples } from '../../src/train/action-policy-training.js';
import { runCli } from '../helpers/cli.js';
import { readRunManifest } from '../../src/core/run-manifest.js';
import { ROOT } from '../helpers/dist.js';
import { SHIPPED_MODEL } from '../../src/util/package-root.js';

const STILL: Rt1Action = { worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] };

/** A policy that never moves the robot, counting its plans and keeping the goals it was handed (`preset`: whose settings it claims). */
function standStill(presetName = 'wm-policy'): EpisodePlanning & { plans: number; goals: Goal[]; observations: Observation[] } {
  const preset = loadPlannerPreset(presetName);
  return {
    plans: 0,
    goals: [],
    observations: [],
    preset,
    cfg: { imageHeight: 32, imageWidth: 40 },
    async plan(obs, goal) {
      this.plans++;
      this.goals.push(goal);
      this.observations.push(obs);
      return {
        actions: Array(preset.executeSteps).fill(STILL),
        cost: 0,
        iterations: 1,
        candidatesEvaluated: 0,
        latencyMs: 0,
        observationStamp: obs.stamp,
        safe: false,
      };
    },
    reset() {},
    imageDistance: () => 0,
    dispose() {},
  };
}

const SIZE = { imageHeight: 32, imageWidth: 40 };

describe('DAgger episodes', () => {
  it("record the expert's labels for the states the policy reaches, and mix in the expert's moves by beta", async () => {
    const planning = standStill();
    const still = (await daggerEpisode(planning, 'pick-can', 0, { beta: 0, ...SIZE }))!;
    // The robot never moved, so the episode failed, and every label is the expert's move towards the can with open fingers.
    expect(still.success).toBe(false);
    expect(planning.plans).toBeGreaterThan(1);
    const steps = still.record.steps;
    for (const s of steps.slice(0, -1)) {
      expect(Math.hypot(...(s['action/world_vector'] as number[]))).toBeGreaterThan(0.01);
      expect(s['action/gripper_closedness_action']).toEqual([-1]);
    }
    expect(steps.at(-1)!.reward).toBe(0);
    // With beta 1 every executed move is the expert's label: the scripted expert's own success.
    const driven = (await daggerEpisode(planning, 'pick-can', 0, { beta: 1, ...SIZE }))!;
    expect(driven.success).toBe(true);
  }, 60_000);

  it('with a goal-driven preset, plan towards the storyboard as in eval, and skip a layout without one', async () => {
    const planning = standStill('wm-cem-fast');
    expect(planning.preset.optimizer.kind).not.toBe('policy');
    const FRAME = { imageHeight: 64, imageWidth: 80 };
    const still = (await daggerEpisode(planning, 'pick-can', 0, { beta: 0, ...FRAME }))!;
    // The goal is the storyboard's first picture (the gripper above the can), never the current frame.
    expect(planning.goals.every((g, i) => g.images[0] !== planning.observations[i])).toBe(true);
    expect(planning.goals[0]!.images[0]!.image).not.toEqual(planning.observations[0]!.image);
    expect(planning.goals[0]!.instruction).toBe('pick coke can');
    // Every executed step is recorded with the expert's label, and the last with the outcome.
    expect(still.success).toBe(false);
    expect(still.record.steps.length).toBe(planning.plans * planning.preset.executeSteps + 1);
    expect(still.record.steps[0]!['observation/image']).toBeInstanceOf(Uint8Array);
    const driven = (await daggerEpisode(standStill('wm-cem-fast'), 'pick-can', 0, { beta: 1, ...FRAME }))!;
    expect(driven.success).toBe(true);
    // drawer-place 15135: the expert's replay fails, so there are no goal pictures and nothing to record.
    expect(await daggerEpisode(standStill('wm-cem-fast'), 'drawer-place', 15135, { beta: 0, ...FRAME })).toBeUndefined();
    await expect(daggerEpisode(planning, 'pick-can', 0, { beta: 0, ...SIZE })).rejects.toThrow(
      /goal-driven preset 'wm-cem-fast' records planned episodes, whose frames are 64x80, not 32x40/,
    );
  }, 120_000);

  it("with a policy that reads larger pictures, render the closed loop's camera at its size and record that", async () => {
    expect(episodeFrameSize(undefined)).toEqual({ height: 64, width: 80 });
    expect(episodeFrameSize({ imageHeight: 32, imageWidth: 40 })).toEqual({ height: 64, width: 80 });
    const large = () => Object.assign(standStill('wm-cem-fast'), { policyInput: { imageHeight: 128, imageWidth: 160 } });
    await expect(daggerEpisode(large(), 'pick-can', 0, { beta: 0, imageHeight: 64, imageWidth: 80 })).rejects.toThrow(
      /goal-driven preset 'wm-cem-fast' records planned episodes, whose frames are 128x160, not 64x80/,
    );
    const planning = large();
    const r = (await daggerEpisode(planning, 'pick-can', 0, { beta: 1, imageHeight: 128, imageWidth: 160 }))!;
    expect(r.success).toBe(true);
    expect(planning.observations.every((o) => o.height === 128 && o.width === 160)).toBe(true);
    expect(declaredImageSize(r.record.steps[0]!['observation/image'] as Uint8Array)).toEqual({ width: 160, height: 128 });
  }, 120_000);

  it('are kept by the policy training with --successful-only when given as relabelled, and dropped as plain data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-dagger-'));
    const r = await collectDagger({ planning: standStill(), beta: 0, tasks: ['pick-can'], episodes: 2, outDir: dir, seed: 0, ...SIZE });
    expect([r.episodes, r.successes]).toEqual([2, 0]);
    const card = loadCard('rt1');
    const stats = readRunManifest(join(ROOT, SHIPPED_MODEL)).actionStats;
    const o = { card, stats, height: 32, width: 40, chunk: 4, valFraction: 0, successfulOnly: true };
    await expect(policySamples({ ...o, dataDirs: [dir] })).rejects.toThrow(/no episodes to train the action policy on/);
    const kept = await policySamples({ ...o, dataDirs: [], relabelledDirs: [dir] });
    expect(kept.episodes).toEqual({ kept: 2, relabelled: 2, unsuccessful: 0 });
    let steps = 0;
    for await (const ep of readEpisodes(dir, card)) steps += ep.steps;
    expect(kept.pixels.length).toBe(steps);
    // The chunk of the first sample holds the first labels: a move, not the zero the robot executed.
    expect(Math.max(...kept.chunks.subarray(0, 3).map(Math.abs))).toBeGreaterThan(0);
  }, 60_000);

  it('`sim dagger` drives with the shipped policy and `model train-policy --relabelled` learns from the result', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'sfwm-dagger-cli-')), 'data');
    const sim = 'sim dagger --task drawer-close --episodes 1 --seed 0 --beta 0.5 --image-size 32x40 --backend wasm --out';
    const r = await runCli([...sim.split(' '), dir]);
    expect([r.code, r.out]).toEqual([
      0,
      expect.stringMatching(/drawer-close: [01]\/1 successful \(50 % of steps the policy's\)[\s\S]*wrote 1 expert-labelled episodes/),
    ]);
    const model = mkdtempSync(join(tmpdir(), 'sfwm-dagger-model-'));
    cpSync(join(ROOT, SHIPPED_MODEL, 'run.json'), join(model, 'run.json'));
    const train = (relabelled: string, more: string) =>
      runCli(['model', 'train-policy', '--model', model, '--data-dir', dir, '--relabelled', relabelled, ...more.split(' ')]);
    const t = await train(dir, '--successful-only --steps 2 --batch-size 4 --image-size 32x40 --val-fraction 0 --backend wasm');
    expect([t.code, t.err]).toEqual([0, expect.stringMatching(/action policy: \d+ episodes \(1 expert-relabelled\)/)]);
    const bad = await train(join(dir, 'nope'), '--backend wasm');
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining(join(dir, 'nope'))]);
  }, 120_000);
});
