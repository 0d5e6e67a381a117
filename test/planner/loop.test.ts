import { asyncScheduler, NEVER, Subject, throwError, timer, EMPTY, type Observable } from 'rxjs';
import { map } from 'rxjs/operators';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createOptimizingPlanner,
  execute,
  ExecutionProgress,
  latestPairs,
  planLatest,
  safePlanFor,
  type PlanCost,
  type PlannerEvent,
} from '../../src/planner/loop.js';
import type { OptimizerSettings } from '../../src/planner/optimizer.js';
import type { Goal, Observation, Plan } from '../../src/core/types.js';
import { safeAction, type Rt1Action } from '../../src/core/action.js';

type Obs = ReturnType<typeof obs>;
const obs = (stamp: number) => ({ image: new Uint8Array(3), height: 1, width: 1, stamp });
const act = (x: number): Rt1Action => ({
  worldVector: [x, 0, 0],
  rotationDelta: [0, 0, 0],
  gripperClosedness: 0,
  terminateEpisode: [0, 1, 0],
});
const planFrom = (stamp: number, xs: number[] = [stamp]): Plan => ({
  actions: xs.map(act),
  cost: stamp,
  iterations: 1,
  candidatesEvaluated: 1,
  latencyMs: 0,
  observationStamp: stamp,
  safe: false,
});
const pairs = (...stamps: number[]) =>
  Object.fromEntries(stamps.map((s, i) => [String.fromCharCode(97 + i), [obs(s), 'g']])) as Record<string, [Obs, string]>;

function scheduler() {
  return new TestScheduler((a, b) => expect(a).toEqual(b));
}

describe('planLatest (marble tests, virtual time)', () => {
  it('plans from the latest observation only: frames arriving while busy are dropped (and reported), the newest kept', () => {
    const events: PlannerEvent[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('abc-----d--|', pairs(1, 2, 3, 4));
      // Each plan takes 3 frames of virtual time.
      const step = (o: Obs): Observable<Plan> => timer(3).pipe(map(() => planFrom(o.stamp)));
      const out = input.pipe(planLatest(step, { budgetMs: 100, graceMs: 0, safePlan: safePlanFor, report: (e) => events.push(e) }));
      // a planned 0-3; b and c arrive meanwhile, c replaces b (b is never planned); c planned 3-6; d arrives at 8, planned 8-11.
      expectObservable(out.pipe(map((p) => p.observationStamp))).toBe('---x--y----(z|)', { x: 1, y: 3, z: 4 });
    });
    expect(events.map((e) => `${e.type}:${e.observationStamp}`)).toEqual(['dropped:2', 'plan:1', 'plan:3', 'plan:4']);
  });

  it('a missed deadline emits the safe action with its reason, aborts the step, and planning continues', () => {
    const events: PlannerEvent[] = [];
    const aborted: string[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('a------b---|', pairs(1, 2));
      const step = (o: Obs, _g: string, signal: AbortSignal): Observable<Plan> => {
        signal.addEventListener('abort', () => aborted.push(`${o.stamp}: ${(signal.reason as Error).message}`));
        return o.stamp === 1 ? NEVER : timer(1).pipe(map(() => planFrom(2)));
      };
      const out = input.pipe(planLatest(step, { budgetMs: 3, graceMs: 2, safePlan: safePlanFor, report: (e) => events.push(e) }));
      expectObservable(out.pipe(map((p) => (p.safe ? `${p.reason} ${JSON.stringify(p.actions)} ${p.latencyMs}` : 'ok')))).toBe(
        '-----x--y--|',
        {
          x: `deadline missed (5 ms) ${JSON.stringify([safeAction()])} 5`,
          y: 'ok',
        },
      );
    });
    expect(aborted).toEqual(['1: deadline missed (5 ms)']);
    expect(events.map((e) => e.type)).toEqual(['safe', 'plan']);
  });

  it('an error in planning emits the safe action and reports the error itself', () => {
    const events: PlannerEvent[] = [];
    const boom = new Error('model exploded');
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('a-|', pairs(1));
      const out = input.pipe(
        planLatest(() => throwError(() => boom), { budgetMs: 5, graceMs: 0, safePlan: safePlanFor, report: (e) => events.push(e) }),
      );
      expectObservable(out.pipe(map((p) => `${p.safe}:${p.reason}:${JSON.stringify(p.actions)}`))).toBe('x-|', {
        x: `true:planning error: model exploded:${JSON.stringify([safeAction()])}`,
      });
    });
    expect(events).toEqual([{ type: 'safe', observationStamp: 1, latencyMs: 0, reason: 'planning error: model exploded', error: boom }]);
  });

  it('a step that ends without a plan is an error, not silence', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-|', pairs(1)).pipe(planLatest(() => EMPTY, { budgetMs: 5, graceMs: 0, safePlan: safePlanFor }));
      expectObservable(out.pipe(map((p) => p.reason))).toBe('x-|', { x: 'planning error: the plan step finished without a plan' });
    });
  });

  it('unsubscribing cancels the running plan (abort signal, inner unsubscribed) and fires no deadline afterwards', () => {
    let aborted = false;
    const events: PlannerEvent[] = [];
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const inner = cold('-----x', { x: planFrom(1) });
      const input = cold('a', pairs(1));
      const step = (_o: unknown, _g: unknown, signal: AbortSignal) => {
        signal.addEventListener('abort', () => (aborted = true));
        return inner;
      };
      // Budget 3: had the deadline timer survived the unsubscription at 2, it would fire at 3 (the
      // scheduler flushes every scheduled action) and report a safe plan.
      expectObservable(
        input.pipe(planLatest(step, { budgetMs: 3, graceMs: 0, safePlan: safePlanFor, report: (e) => events.push(e) })),
        '--!',
      ).toBe('');
      expectSubscriptions(inner.subscriptions).toBe('^-!');
    });
    expect(aborted).toBe(true);
    expect(events).toEqual([]);
  });

  it('completes after the running and the pending plan when the source completes', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const step = (o: Obs): Observable<Plan> => timer(2).pipe(map(() => planFrom(o.stamp)));
      const out = cold('ab|', pairs(1, 2)).pipe(planLatest(step, { budgetMs: 10, graceMs: 0, safePlan: safePlanFor }));
      expectObservable(out.pipe(map((p) => p.observationStamp))).toBe('--x-(y|)', { x: 1, y: 2 });
    });
  });
});

describe('latestPairs', () => {
  it('no pair before the first goal; a new goal replans the latest observation; completes with the observations', () => {
    scheduler().run(({ cold, hot, expectObservable }) => {
      const o$ = hot('-a--b----c|', { a: 1, b: 2, c: 3 });
      const g$ = hot('---x---y-----', { x: 'X', y: 'Y' });
      expectObservable(latestPairs(o$, g$).pipe(map(([o, g]) => `${o}${g}`))).toBe('---pq--r-s|', { p: '1X', q: '2X', r: '2Y', s: '3Y' });
      void cold;
    });
  });
});

describe('execute (receding horizon)', () => {
  it('one action per tick from the current plan; a new plan restarts; exhausted or no plan -> safe action', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const plans = hot('--p-------q---', { p: planFrom(5, [5, 6]), q: planFrom(9, [9]) });
      const ticks = hot('-t-t-t-t---t-t|');
      const progress = new ExecutionProgress();
      const out = plans.pipe(execute(ticks, { progress })).pipe(map((a) => a.worldVector[0]));
      expectObservable(out).toBe('-z-a-b-z---c-z|', { z: 0, a: 5, b: 6, c: 9 });
    });
  });

  it('a plan older than maxPlanAgeMs is stale: the safe action instead of its remaining actions', () => {
    scheduler().run(({ hot, expectObservable }) => {
      const plans = hot('p----------', { p: planFrom(1, [1, 2, 3, 4]) });
      const ticks = hot('-t-t-t-t-|');
      expectObservable(plans.pipe(execute(ticks, { maxPlanAgeMs: 4 })).pipe(map((a) => a.worldVector[0]))).toBe('-a-b-z-z-|', {
        a: 1,
        b: 2,
        z: 0,
      });
    });
  });

  it('counts the actions sent per plan, for the next warm start', () => {
    const plans = new Subject<Plan>();
    const ticks = new Subject<void>();
    const progress = new ExecutionProgress();
    const sub = execute(ticks, { progress })(plans).subscribe();
    const p = planFrom(1, [1, 2, 3]);
    plans.next(p);
    ticks.next();
    ticks.next();
    expect(progress.executed(p)).toBe(2);
    plans.next(planFrom(2));
    expect(progress.executed(p)).toBe(0);
    sub.unsubscribe();
  });
});

describe('createOptimizingPlanner (fake timers)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const settings: OptimizerSettings = {
    kind: 'cem',
    horizon: 2,
    actionDim: 2,
    candidates: 16,
    iterations: 20,
    elites: 4,
    temperature: 0.1,
    initStd: 0.5,
    minStd: 0.01,
    proposalFraction: 0,
    warmStartPad: 'zero',
  };
  const target = [0.4, -0.2, 0.3, 0.1];
  const quadratic = async (c: Float32Array, n: number) =>
    Float32Array.from({ length: n }, (_, i) => target.reduce((s, t, j) => s + (c[i * 4 + j]! - t) ** 2, 0));
  const toAction = (v: Float32Array) => act(v[0]! + 10 * v[1]!);
  const observation = (stamp: number): Observation => ({ image: new Uint8Array(3), height: 1, width: 1, stamp });
  const goal: Goal = { images: [observation(-1)] };

  function harness(
    makeCost: (o: Observation, g: Goal) => PlanCost | Promise<PlanCost>,
    extra: Partial<Parameters<typeof createOptimizingPlanner>[0]> = {},
  ) {
    const p = createOptimizingPlanner({
      optimizer: settings,
      makeCost,
      toAction,
      budgetMs: 100,
      graceMs: 50,
      seed: 3,
      scheduler: asyncScheduler,
      ...extra,
    });
    const observations = new Subject<Observation>();
    const goals = new Subject<Goal>();
    const plans: Plan[] = [];
    const events: PlannerEvent[] = [];
    p.events$.subscribe((e) => events.push(e));
    const sub = p.planner(observations, goals).subscribe((x) => plans.push(x));
    return { p, observations, goals, plans, events, sub };
  }

  it('optimises the cost made for each (observation, goal), maps the sequence to actions, disposes the cost', async () => {
    const made: number[] = [];
    let disposed = 0;
    const h = harness((o) => (made.push(o.stamp), { cost: quadratic, dispose: () => disposed++ }));
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(10);
    expect(h.plans).toEqual([]); // no plan without a goal
    h.goals.next(goal);
    await vi.advanceTimersByTimeAsync(10);
    expect(h.plans).toHaveLength(1);
    const plan = h.plans[0]!;
    expect(plan.safe).toBe(false);
    expect(plan.observationStamp).toBe(1);
    expect(plan.cost).toBeLessThan(1e-3);
    Array.from(plan.sequence!).forEach((v, j) => expect(Math.abs(v - target[j]!)).toBeLessThan(0.05));
    expect(plan.actions.map((a) => a.worldVector[0])).toEqual([0, 1].map((t) => plan.sequence![2 * t]! + 10 * plan.sequence![2 * t + 1]!));
    expect(made).toEqual([1]);
    expect(disposed).toBe(1);
    expect(h.events.map((e) => e.type)).toEqual(['plan']);
    h.sub.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('warm-starts from the previous plan shifted by the executed steps', async () => {
    const means: number[][] = [];
    const cost = async (c: Float32Array, n: number) => (means.push(Array.from(c.subarray(0, 4))), quadratic(c, n));
    const h = harness(() => ({ cost, dispose() {} }), { optimizer: { ...settings, iterations: 3 }, executeSteps: 1 });
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(10);
    h.observations.next(observation(2));
    await vi.advanceTimersByTimeAsync(10);
    const first = Array.from(h.plans[0]!.sequence!);
    // The second plan's first population starts at the first plan's step 1, zero-padded.
    expect(means[3]).toEqual([first[2], first[3], 0, 0]);
    h.p.reset();
    h.observations.next(observation(3));
    await vi.advanceTimersByTimeAsync(10);
    expect(means[6]).toEqual([0, 0, 0, 0]);
    h.sub.unsubscribe();
  });

  it('proposals and imagined frames come from the per-plan cost', async () => {
    let asked = 0;
    const h = harness(
      () => ({
        cost: quadratic,
        proposals: async (n) => ((asked += n), new Float32Array(n * 4).fill(0.1)),
        imagine: async (best) => [Uint8Array.from(best, (v) => Math.round(100 * (v + 1)))],
        dispose() {},
      }),
      { optimizer: { ...settings, iterations: 2, proposalFraction: 0.25 } },
    );
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(10);
    expect(asked).toBe(8);
    expect(h.plans[0]!.imagined).toEqual([Uint8Array.from(h.plans[0]!.sequence!, (v) => Math.round(100 * (v + 1)))]);
    h.sub.unsubscribe();
  });

  it('a cost slower than the deadline: safe action at budget + grace, the cost disposed once it stops, the next plan waits for it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const log: string[] = [];
    const h = harness((o) => ({
      cost: async (c, n) => (o.stamp === 1 ? (log.push('slow cost'), await gate) : undefined, quadratic(c, n)),
      dispose: () => log.push(`dispose ${o.stamp}`),
    }));
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(149);
    expect(h.plans).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.plans.map((p) => [p.safe, p.reason, p.actions])).toEqual([[true, 'deadline missed (150 ms)', [safeAction()]]]);
    h.observations.next(observation(2));
    await vi.advanceTimersByTimeAsync(20);
    // Plan 2 has not started its cost: plan 1's optimiser is still inside its cost call.
    expect(log).toEqual(['slow cost']);
    release();
    await vi.advanceTimersByTimeAsync(1);
    expect(log).toEqual(['slow cost', 'dispose 1', 'dispose 2']);
    expect(h.plans.map((p) => [p.observationStamp, p.safe])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(h.events.map((e) => e.type)).toEqual(['safe', 'plan']);
    h.sub.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a plan that arrives late (a cost that blocked the event loop, so no timer could fire) is a missed deadline too', async () => {
    const h = harness(() => ({ cost: async (c, n) => (vi.setSystemTime(Date.now() + 400), quadratic(c, n)), dispose() {} }), {
      optimizer: { ...settings, iterations: 1 },
    });
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.plans.map((p) => [p.safe, p.reason, p.latencyMs])).toEqual([[true, 'deadline missed (plan took 400 ms, limit 150 ms)', 400]]);
    expect(h.events.map((e) => e.type)).toEqual(['safe']);
    h.sub.unsubscribe();
  });

  it('an error in the cost factory or the cost gives the safe action, reported with the error', async () => {
    const h = harness((o) => {
      if (o.stamp === 1) throw new Error('goal image has the wrong size');
      return { cost: async () => new Float32Array(16).fill(NaN), dispose() {} };
    });
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(1);
    h.observations.next(observation(2));
    await vi.advanceTimersByTimeAsync(1);
    expect(h.plans.map((p) => p.reason)).toEqual([
      'planning error: goal image has the wrong size',
      'planning error: no candidate got a finite cost (320 evaluated)',
    ]);
    expect(h.events.map((e) => e.type === 'safe' && e.error instanceof Error)).toEqual([true, true]);
    h.sub.unsubscribe();
  });

  it('unsubscribing aborts the optimisation; the cost is disposed when its call returns; no timer is left', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    let disposed = 0;
    const h = harness(() => ({ cost: async (c, n) => (calls++, await gate, quadratic(c, n)), dispose: () => disposed++ }));
    h.goals.next(goal);
    h.observations.next(observation(1));
    await vi.advanceTimersByTimeAsync(10);
    h.sub.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);
    expect(disposed).toBe(0);
    release();
    await vi.advanceTimersByTimeAsync(0);
    expect(disposed).toBe(1);
    expect(calls).toBe(1); // aborted between iterations: no second cost call
    expect(h.plans).toEqual([]);
  });
});
