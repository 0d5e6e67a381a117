/**
 * The three ways to act, side by side in one evaluation with the shipped model: the model's policy
 * alone (`wm-policy`), the world-model planner (`wm`), and the same planner with the simulator as
 * its model (`oracle:wm`).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { evaluate, readFinished } from '../../src/eval/evaluate.js';
import { SimOraclePlanning } from '../../src/planner/sim-oracle.js';
import { WorldModelPlanning } from '../../src/planner/world-model-planner.js';
import { ROOT } from '../helpers/dist.js';
import { SHIPPED_MODEL } from '../../src/util/package-root.js';

const POLICIES = ['wm-policy', 'wm', 'oracle:wm'];

describe('eval: policy alone, world-model planner and simulator planner in one report', () => {
  afterEach(() => vi.restoreAllMocks());

  it('two episodes each on the shipped model: three rows with success rates in [0, 1], the oracle planning with the simulator', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sfwm-three-'));
    const simPlans = vi.spyOn(SimOraclePlanning.prototype, 'plan');
    const modelPlans = vi.spyOn(WorldModelPlanning.prototype, 'plan');
    const report = await evaluate({
      policies: POLICIES,
      tasks: ['drawer-close'],
      episodes: { 'drawer-close': 2 },
      seed: 9100,
      outDir: out,
      workers: 1,
      checkpoint: join(ROOT, SHIPPED_MODEL),
      backend: 'wasm',
      failureGifs: 0,
    });
    expect(Object.keys(report.policies)).toEqual(POLICIES);
    for (const p of POLICIES) {
      const t = report.policies[p]!.tasks['drawer-close']!;
      expect([p, t.episodes, t.seeds]).toEqual([p, 2, [9100, 9101]]);
      expect(t.success_rate).toBeGreaterThanOrEqual(0);
      expect(t.success_rate).toBeLessThanOrEqual(1);
      expect(report.policies[p]!.average_success_rate).toBe(t.success_rate);
    }
    // Every decision of the oracle row was a plan with the simulator as the model, every other planner
    // decision one with the world model: one plan per recorded decision latency.
    const episodes = readFinished(join(out, 'episodes.jsonl'));
    const decisions = (policies: string[]) =>
      episodes.filter((e) => policies.includes(e.policy)).reduce((n, e) => n + e.latenciesMs.length, 0);
    expect(decisions(['oracle:wm'])).toBeGreaterThan(0);
    expect(simPlans).toHaveBeenCalledTimes(decisions(['oracle:wm']));
    expect(modelPlans).toHaveBeenCalledTimes(decisions(['wm-policy', 'wm']));
  }, 900_000);
});
