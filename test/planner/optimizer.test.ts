import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { optimize, shiftPlan, type OptimizerSettings } from '../../src/planner/optimizer.js';
import { loadPlannerPreset } from '../../src/planner/presets.js';
import { Rng } from '../../src/util/rng.js';

const base: OptimizerSettings = { kind: 'cem', horizon: 3, actionDim: 2, candidates: 64, iterations: 30, elites: 8, temperature: 0.05, initStd: 0.5, minStd: 0.01, proposalFraction: 0, warmStartPad: 'repeat' };
const target = Float32Array.from([0.5, -0.3, 0.2, 0.7, -0.6, 0.1]);
const quadratic = async (c: Float32Array, n: number) => Float32Array.from({ length: n }, (_, i) => target.reduce((s, t, j) => s + (c[i * 6 + j]! - t) ** 2, 0));

describe('optimisers', () => {
  for (const kind of ['cem', 'mppi'] as const) {
    it(`${kind} finds the minimum of a quadratic and is deterministic for a seed`, async () => {
      const a = await optimize({ ...base, kind }, quadratic, { rng: new Rng(1) });
      expect(a.bestCost).toBeLessThan(0.01);
      a.best.forEach((v, j) => expect(Math.abs(v - target[j]!)).toBeLessThan(0.08));
      const b = await optimize({ ...base, kind }, quadratic, { rng: new Rng(1) });
      expect(Array.from(b.best)).toEqual(Array.from(a.best));
      expect(a.candidatesEvaluated).toBe(64 * 30);
      expect(a.costHistory.every((c, i) => i === 0 || c <= a.costHistory[i - 1]!)).toBe(true);
    });
  }

  it('escapes to the better basin of a two-well cost and respects the [-1, 1] box', async () => {
    // Wells at -0.6 (depth 0.5) and +0.7 (depth 1.0) per coordinate; the global minimum is all +0.7.
    const twoWell = async (c: Float32Array, n: number) =>
      Float32Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let j = 0; j < 6; j++) {
          const x = c[i * 6 + j]!;
          s += -0.5 * Math.exp(-((x + 0.6) ** 2) / 0.02) - 1.0 * Math.exp(-((x - 0.7) ** 2) / 0.02);
        }
        return s;
      });
    const r = await optimize({ ...base, initStd: 0.8 }, twoWell, { rng: new Rng(3) });
    r.best.forEach((v) => expect(Math.abs(v - 0.7)).toBeLessThan(0.1));
    const clipped = await optimize({ ...base, iterations: 5 }, async (c, n) => Float32Array.from({ length: n }, (_, i) => -c[i * 6]!), { rng: new Rng(2) });
    expect(clipped.best.every((v) => v >= -1 && v <= 1)).toBe(true);
  });

  it('a warm start and good proposals reach the optimum with far fewer candidates', async () => {
    const few = { ...base, candidates: 8, iterations: 2, elites: 2 };
    const cold = await optimize(few, quadratic, { rng: new Rng(4) });
    const warm = await optimize(few, quadratic, { rng: new Rng(4), warmStart: target });
    const proposed = await optimize({ ...few, proposalFraction: 0.5 }, quadratic, {
      rng: new Rng(4),
      proposals: async (n) => {
        const out = new Float32Array(n * 6);
        for (let i = 0; i < n; i++) out.set(target.map((t) => t + 0.01 * i), i * 6);
        return out;
      },
    });
    expect(warm.bestCost).toBeLessThan(1e-9);
    expect(proposed.bestCost).toBeLessThan(1e-3);
    expect(cold.bestCost).toBeGreaterThan(proposed.bestCost);
  });

  it('stops at the deadline and on abort (anytime), keeping the best so far', async () => {
    let t = 0;
    const slow = async (c: Float32Array, n: number) => ((t += 100), quadratic(c, n));
    const r = await optimize(base, slow, { rng: new Rng(5), deadline: 250, now: () => t });
    expect(r.iterations).toBe(3);
    const ac = new AbortController();
    ac.abort();
    expect((await optimize(base, quadratic, { rng: new Rng(5), signal: ac.signal })).iterations).toBe(0);
  });

  it('shifts the previous plan for the warm start', () => {
    const plan = Float32Array.from([1, 1, 2, 2, 3, 3]);
    expect(Array.from(shiftPlan(plan, 1, 3, 2, 'repeat'))).toEqual([2, 2, 3, 3, 3, 3]);
    expect(Array.from(shiftPlan(plan, 1, 3, 2, 'zero'))).toEqual([2, 2, 3, 3, 0, 0]);
  });
});

describe('planner presets', () => {
  it('loads the shipped presets and names the file and field of a bad one', () => {
    for (const name of ['wm-cem-fast', 'wm-cem-quality', 'wm-mppi']) expect(loadPlannerPreset(name).name).toBe(name);
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-preset-'));
    const file = join(dir, 'bad.json');
    const raw = JSON.parse(JSON.stringify(loadPlannerPreset('wm-cem-fast')));
    raw.optimizer.elites = 100;
    writeFileSync(file, JSON.stringify(raw));
    expect(() => loadPlannerPreset(file)).toThrow(new RegExp(`${file.replace(/[/.]/g, '\\$&')}: 'optimizer.elites' must be an integer in \\[1, 16\\]`));
  });
});
