import { describe, expect, it } from 'vitest';
import { runAnytime } from '../../src/planner/anytime.js';
import { cemUpdate, optimizeCem } from '../../src/planner/cem.js';
import { mppiWeights, optimizeMppi } from '../../src/planner/mppi.js';
import { optimize, type OptimizerSettings } from '../../src/planner/optimizer.js';
import { proposalCount, rankByCost, samplePopulation } from '../../src/planner/population.js';
import { shiftPlan } from '../../src/planner/sequence.js';
import { Rng } from '../../src/util/rng.js';

const base: OptimizerSettings = {
  kind: 'cem',
  horizon: 3,
  actionDim: 2,
  candidates: 64,
  iterations: 30,
  elites: 8,
  temperature: 0.05,
  initStd: 0.5,
  minStd: 0.01,
  proposalFraction: 0,
  warmStartPad: 'repeat',
};
const target = Float32Array.from([0.5, -0.3, 0.2, 0.7, -0.6, 0.1]);
const quadratic = async (c: Float32Array, n: number) =>
  Float32Array.from({ length: n }, (_, i) => target.reduce((s, t, j) => s + (c[i * 6 + j]! - t) ** 2, 0));
// Wells at -0.6 (depth 0.5) and +0.7 (depth 1.0) per coordinate: the global minimum is all +0.7, and the
// first mean (0) lies nearer the shallow well.
const twoWell = async (c: Float32Array, n: number) =>
  Float32Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < 6; j++) {
      const x = c[i * 6 + j]!;
      s += -0.5 * Math.exp(-((x + 0.6) ** 2) / 0.1) - 1.0 * Math.exp(-((x - 0.7) ** 2) / 0.1);
    }
    return s;
  });
const near = (a: Float32Array, b: ArrayLike<number>, tol: number) => a.forEach((v, j) => expect(Math.abs(v - b[j]!)).toBeLessThan(tol));

describe('CEM and MPPI find known minima', () => {
  for (const kind of ['cem', 'mppi'] as const) {
    it(`${kind}: quadratic with a known optimum, deterministic for a seed, best cost never rises`, async () => {
      const a = await optimize({ ...base, kind }, quadratic, { rng: new Rng(1) });
      expect(a.bestCost).toBeLessThan(0.01);
      near(a.best, target, 0.08);
      const b = await optimize({ ...base, kind }, quadratic, { rng: new Rng(1) });
      expect(Array.from(b.best)).toEqual(Array.from(a.best));
      expect(b.bestCost).toBe(a.bestCost);
      const c = await optimize({ ...base, kind }, quadratic, { rng: new Rng(2) });
      expect(Array.from(c.best)).not.toEqual(Array.from(a.best));
      expect(a.iterations).toBe(30);
      expect(a.stopReason).toBe('iterations');
      expect(a.candidatesEvaluated).toBe(64 * 30);
      expect(a.costHistory.every((v, i) => i === 0 || v <= a.costHistory[i - 1]!)).toBe(true);
    });

    it(`${kind}: a multimodal cost: the global well, not the nearer shallow one, for every seed tried`, async () => {
      for (let seed = 0; seed < 6; seed++) {
        const r = await optimize({ ...base, kind, initStd: 0.8, temperature: 0.3 }, twoWell, { rng: new Rng(seed) });
        near(r.best, new Array(6).fill(0.7), 0.05);
        expect(r.bestCost).toBeLessThan(-5.95);
      }
    });

    it(`${kind}: stays inside the [-1, 1] box when the optimum lies outside`, async () => {
      const r = await optimize(
        { ...base, kind, iterations: 8 },
        async (c, n) => Float32Array.from({ length: n }, (_, i) => -c[i * 6]! + c[i * 6 + 1]!),
        { rng: new Rng(2) },
      );
      expect(r.best.every((v) => v >= -1 && v <= 1)).toBe(true);
      expect(r.best[0]).toBeGreaterThan(0.9);
      expect(r.best[1]).toBeLessThan(-0.9);
    });
  }

  it('the entry points per kind are the ones optimize() dispatches to', async () => {
    const viaCem = await optimizeCem(base, quadratic, { rng: new Rng(9) });
    const viaMppi = await optimizeMppi(base, quadratic, { rng: new Rng(9) });
    expect(Array.from((await optimize(base, quadratic, { rng: new Rng(9) })).best)).toEqual(Array.from(viaCem.best));
    expect(Array.from((await optimize({ ...base, kind: 'mppi' }, quadratic, { rng: new Rng(9) })).best)).toEqual(Array.from(viaMppi.best));
    await expect(optimize({ ...base, kind: 'bogus' as 'cem' }, quadratic, { rng: new Rng(9) })).rejects.toThrow(
      /unknown optimiser kind "bogus"/,
    );
  });
});

describe('warm start and proposals', () => {
  const few = { ...base, candidates: 8, iterations: 2, elites: 2 };

  it('a warm start at the optimum is kept (the mean is always re-scored)', async () => {
    for (const kind of ['cem', 'mppi'] as const) {
      const cold = await optimize({ ...few, kind }, quadratic, { rng: new Rng(4) });
      const warm = await optimize({ ...few, kind }, quadratic, { rng: new Rng(4), warmStart: target });
      expect(warm.bestCost).toBeLessThan(1e-9);
      expect(cold.bestCost).toBeGreaterThan(0.05);
    }
  });

  it('good proposals reach the optimum with few candidates; they are counted', async () => {
    for (const kind of ['cem', 'mppi'] as const) {
      const requested: number[] = [];
      const proposals = async (n: number) => {
        requested.push(n);
        const out = new Float32Array(n * 6);
        for (let i = 0; i < n; i++)
          out.set(
            target.map((t) => t + 0.01 * i),
            i * 6,
          );
        return out;
      };
      const cold = await optimize({ ...few, kind }, quadratic, { rng: new Rng(4) });
      const withProposals = await optimize({ ...few, kind, proposalFraction: 0.5 }, quadratic, { rng: new Rng(4), proposals });
      expect(withProposals.bestCost).toBeLessThan(1e-3);
      expect(cold.bestCost).toBeGreaterThan(100 * withProposals.bestCost);
      expect(requested).toEqual([4, 4]);
      expect(withProposals.proposalsEvaluated).toBe(8);
      // Fraction 0 ignores the source altogether.
      const none = await optimize({ ...few, kind }, quadratic, { rng: new Rng(4), proposals });
      expect(none.proposalsEvaluated).toBe(0);
      expect(requested).toHaveLength(2);
    }
  });

  it('a broken proposal source or cost function is an error naming it, not a silent bad plan', async () => {
    const s = { ...few, proposalFraction: 0.5 };
    await expect(optimize(s, quadratic, { rng: new Rng(1), proposals: async () => new Float32Array(3) })).rejects.toThrow(
      /proposal source returned 3 values, expected 24/,
    );
    await expect(optimize(s, quadratic, { rng: new Rng(1), proposals: async (n) => new Float32Array(n * 6).fill(NaN) })).rejects.toThrow(
      /non-finite value at candidate 0/,
    );
    await expect(optimize(base, async () => new Float32Array(2), { rng: new Rng(1) })).rejects.toThrow(
      /cost function returned 2 values, expected 64/,
    );
    await expect(optimize(base, quadratic, { rng: new Rng(1), warmStart: new Float32Array(4) })).rejects.toThrow(
      /warm start has 4 values, expected horizon 3 x action dim 2 = 6/,
    );
  });

  it('proposals in the global well rescue a warm start stuck in the shallow one', async () => {
    for (const kind of ['cem', 'mppi'] as const) {
      const s = { ...base, kind, iterations: 5, temperature: 0.3 };
      const stuck = new Float32Array(6).fill(-0.6);
      const alone = await optimize(s, twoWell, { rng: new Rng(7), warmStart: stuck });
      const helped = await optimize({ ...s, proposalFraction: 0.1 }, twoWell, {
        rng: new Rng(7),
        warmStart: stuck,
        proposals: async (n) => new Float32Array(n * 6).fill(0.72),
      });
      expect(alone.bestCost).toBeGreaterThan(-4.5);
      expect(helped.bestCost).toBeLessThan(-5.9);
    }
  });

  it('NaN costs never become the best plan', async () => {
    const nanNearTarget = async (c: Float32Array, n: number) => {
      const q = await quadratic(c, n);
      return q.map((v) => (v < 0.05 ? NaN : v));
    };
    for (const kind of ['cem', 'mppi'] as const) {
      const r = await optimize({ ...base, kind, iterations: 10 }, nanNearTarget, { rng: new Rng(6) });
      expect(r.bestCost).toBeGreaterThanOrEqual(0.05);
      expect(Number.isFinite(r.bestCost)).toBe(true);
    }
  });
});

describe("kind 'policy' (no search)", () => {
  it('executes the first proposal as it is (clipped), scores nothing, and needs a proposal source', async () => {
    let costCalls = 0;
    const cost = async (c: Float32Array, n: number) => {
      costCalls++;
      return quadratic(c, n);
    };
    const proposal = Float32Array.from([0.1, 2, -0.3, 0.4, -5, 0.6]);
    const r = await optimize({ ...base, kind: 'policy' }, cost, { rng: new Rng(1), proposals: async (n) => (expect(n).toBe(1), proposal) });
    expect(Array.from(r.best)).toEqual(Array.from(Float32Array.from([0.1, 1, -0.3, 0.4, -1, 0.6])));
    expect(costCalls).toBe(0);
    expect(r.candidatesEvaluated).toBe(0);
    expect(r.proposalsEvaluated).toBe(1);
    await expect(optimize({ ...base, kind: 'policy' }, cost, { rng: new Rng(1) })).rejects.toThrow(/proposal source/);
  });
});

describe('anytime driver', () => {
  it('an abort that can only arrive through the event loop is honoured between iterations when the driver yields', async () => {
    const busy = async (c: Float32Array, n: number) => {
      const end = performance.now() + 15; // a synchronous cost: no event-loop turn while it runs
      while (performance.now() < end);
      return quadratic(c, n);
    };
    const run = async (between?: () => Promise<void>) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 0);
      return optimize({ ...base, candidates: 8, iterations: 5 }, busy, { rng: new Rng(1), signal: ac.signal, between });
    };
    const blind = await run();
    expect(blind.iterations).toBe(5); // the timer never got to fire
    const yielding = await run(() => new Promise((r) => setImmediate(r)));
    expect(yielding.stopReason).toBe('aborted');
    // The timer fires at the first or second break, depending on which event-loop phase the first one lands in.
    expect(yielding.iterations).toBeLessThanOrEqual(2);
  });

  it('stops before an iteration that would overrun the budget, and at the deadline without prediction', async () => {
    let t = 0;
    const slow = async (c: Float32Array, n: number) => ((t += 100), quadratic(c, n));
    const predicted = await optimize(base, slow, { rng: new Rng(5), deadline: 250, now: () => t });
    // After 2 iterations (t = 200) a third would end at 300 > 250.
    expect(predicted.iterations).toBe(2);
    expect(predicted.stopReason).toBe('budget');
    t = 0;
    const plain = await optimize(base, slow, { rng: new Rng(5), deadline: 250, now: () => t, predictive: false });
    expect(plain.iterations).toBe(3);
    t = 1000;
    const budget = await optimize(base, slow, { rng: new Rng(5), budgetMs: 450, now: () => t });
    expect(budget.iterations).toBe(4);
    expect(budget.elapsedMs).toBe(400);
    expect(budget.externalMs).toBe(400);
  });

  it('always runs one iteration, even with the budget already spent', async () => {
    const r = await optimize(base, quadratic, { rng: new Rng(5), budgetMs: 0 });
    expect(r.iterations).toBe(1);
    expect(Number.isFinite(r.bestCost)).toBe(true);
  });

  it('an abort between iterations ends the run with the best plan so far', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const r = await optimize(base, quadratic, {
      rng: new Rng(5),
      signal: ac.signal,
      onIteration: (i) => (seen.push(i.bestCost), i.iteration === 1 && ac.abort()),
    });
    expect(r.iterations).toBe(2);
    expect(r.stopReason).toBe('aborted');
    expect(r.bestCost).toBe(seen[1]);
    const pre = new AbortController();
    pre.abort();
    const none = await optimize(base, quadratic, { rng: new Rng(5), signal: pre.signal, warmStart: target });
    expect(none.iterations).toBe(0);
    expect(none.bestCost).toBe(Infinity);
    expect(Array.from(none.best)).toEqual(Array.from(target));
  });

  it('runs any distribution update under the same driver', async () => {
    let updates = 0;
    const r = await runAnytime(
      { horizon: 1, actionDim: 1, candidates: 4, iterations: 3, initStd: 0.1, proposalFraction: 0 },
      () => updates++,
      async (_c, n) => new Float32Array(n),
      { rng: new Rng(0) },
    );
    expect(updates).toBe(3);
    expect(r.candidatesEvaluated).toBe(12);
  });
});

describe('building blocks', () => {
  it('shifts the previous plan for the warm start', () => {
    const plan = Float32Array.from([1, 1, 2, 2, 3, 3]);
    expect(Array.from(shiftPlan(plan, 1, 3, 2, 'repeat'))).toEqual([2, 2, 3, 3, 3, 3]);
    expect(Array.from(shiftPlan(plan, 1, 3, 2, 'zero'))).toEqual([2, 2, 3, 3, 0, 0]);
    expect(Array.from(shiftPlan(plan, 0, 2, 2, 'zero'))).toEqual([1, 1, 2, 2]);
    expect(Array.from(shiftPlan(plan, 5, 2, 2, 'repeat'))).toEqual([3, 3, 3, 3]);
    expect(Array.from(shiftPlan(plan, 5, 2, 2, 'zero'))).toEqual([0, 0, 0, 0]);
    expect(Array.from(shiftPlan(plan, 2, 4, 2, 'repeat'))).toEqual([3, 3, 3, 3, 3, 3, 3, 3]);
    expect(() => shiftPlan(plan, 1, 3, 4, 'zero')).toThrow(/not a multiple of the action dimension 4/);
  });

  it('a population holds the clipped mean first, then proposals, then seeded Gaussian samples', async () => {
    const dist = { mean: Float32Array.from([2, 0]), std: Float32Array.from([0.1, 0.1]) };
    const pop = await samplePopulation(
      dist,
      5,
      new Rng(1),
      { source: async (n) => new Float32Array(n * 2).fill(-3), fraction: 0.4 },
      () => 0,
    );
    expect(Array.from(pop.candidates.subarray(0, 2))).toEqual([1, 0]);
    expect(Array.from(pop.candidates.subarray(2, 6))).toEqual([-1, -1, -1, -1]);
    expect(pop.proposals).toBe(2);
    expect(pop.candidates.subarray(6).every((v) => v >= -1 && v <= 1 && v !== 0)).toBe(true);
    expect(proposalCount(4, 1, true)).toBe(3);
    expect(proposalCount(4, 0.5, false)).toBe(0);
  });

  it('ranks by cost with NaN last and ties in index order; CEM refits to the elites', () => {
    expect(Array.from(rankByCost(Float32Array.from([3, NaN, 1, 1]), 4))).toEqual([2, 3, 0, 1]);
    const dist = { mean: new Float32Array(1), std: new Float32Array(1) };
    cemUpdate(dist, Float32Array.from([0.2, 0.4, 0.9]), Int32Array.from([0, 1, 2]), 3, { elites: 2, minStd: 0.01 });
    expect(dist.mean[0]).toBeCloseTo(0.3, 6);
    expect(dist.std[0]).toBeCloseTo(0.1, 6);
  });

  it('MPPI weights: normalised, the lowest cost weighs most, non-finite costs weigh nothing', () => {
    const w = mppiWeights(Float32Array.from([1, 2, Infinity, NaN]), 4, 1);
    expect(w[0]! + w[1]!).toBeCloseTo(1, 12);
    expect(w[0]! / w[1]!).toBeCloseTo(Math.E, 6);
    expect(w[2]).toBe(0);
    expect(w[3]).toBe(0);
  });
});
