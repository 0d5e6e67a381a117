import { Subject, timer, throwError, NEVER, type Observable } from 'rxjs';
import { map } from 'rxjs/operators';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { executePlans, planLatest, safePlanFor } from '../../src/planner/loop.js';
import type { Plan } from '../../src/planner/types.js';
import { safeAction } from '../../src/robot/action.js';

const obs = (stamp: number) => ({ image: new Uint8Array(3), height: 1, width: 1, stamp });
const planFrom = (stamp: number): Plan => ({ actions: [{ worldVector: [stamp, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] }], cost: stamp, iterations: 1, candidatesEvaluated: 1, latencyMs: 0, observationStamp: stamp, safe: false });

function scheduler() {
  return new TestScheduler((a, b) => expect(a).toEqual(b));
}

describe('planLatest (marble tests)', () => {
  it('plans from the latest observation only: frames arriving while busy are dropped, the newest kept', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('abc-----d--|', { a: [obs(1), 'g'], b: [obs(2), 'g'], c: [obs(3), 'g'], d: [obs(4), 'g'] } as Record<string, [ReturnType<typeof obs>, string]>);
      // Each plan takes 3 frames of virtual time.
      const step = (o: ReturnType<typeof obs>): Observable<Plan> => timer(3).pipe(map(() => planFrom(o.stamp)));
      const out = input.pipe(planLatest(step, { budgetMs: 100, graceMs: 0, safePlan: safePlanFor }));
      // a planned 0-3; b and c arrive meanwhile, c replaces b (b is never planned); c planned 3-6; d arrives at 8, planned 8-11.
      expectObservable(out.pipe(map((p) => p.observationStamp))).toBe('---x--y----(z|)', { x: 1, y: 3, z: 4 });
    });
  });

  it('a missed deadline emits the safe action with its reason, and planning continues', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('a------b---|', { a: [obs(1), 'g'], b: [obs(2), 'g'] } as Record<string, [ReturnType<typeof obs>, string]>);
      const step = (o: ReturnType<typeof obs>): Observable<Plan> => (o.stamp === 1 ? NEVER : timer(1).pipe(map(() => planFrom(2))));
      const out = input.pipe(planLatest(step, { budgetMs: 3, graceMs: 2, safePlan: safePlanFor }));
      expectObservable(out.pipe(map((p) => (p.safe ? `${p.reason}` : 'ok')))).toBe('-----x--y--|', { x: 'deadline missed (5 ms)', y: 'ok' });
    });
  });

  it('an error in planning emits the safe action and reports the error', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const input = cold('a-|', { a: [obs(1), 'g'] } as Record<string, [ReturnType<typeof obs>, string]>);
      const out = input.pipe(planLatest(() => throwError(() => new Error('model exploded')), { budgetMs: 5, graceMs: 0, safePlan: safePlanFor }));
      expectObservable(out.pipe(map((p) => `${p.safe}:${p.reason}:${JSON.stringify(p.actions[0])}`))).toBe('x-|', { x: `true:planning error: model exploded:${JSON.stringify(safeAction())}` });
    });
  });

  it('unsubscribing cancels the running plan (abort signal) and leaves no timer', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      let aborted = false;
      const inner = cold('-----x', { x: planFrom(1) });
      const input = cold('a', { a: [obs(1), 'g'] } as Record<string, [ReturnType<typeof obs>, string]>);
      const step = (_o: unknown, _g: unknown, signal: AbortSignal) => {
        signal.addEventListener('abort', () => (aborted = true));
        return inner;
      };
      expectObservable(input.pipe(planLatest(step, { budgetMs: 50, graceMs: 0, safePlan: safePlanFor })), '--!').toBe('');
      expectSubscriptions(inner.subscriptions).toBe('^-!');
      return () => expect(aborted).toBe(true);
    });
  });
});

describe('executePlans', () => {
  it('sends one action per tick from the current plan, the safe action when it runs out or before any plan', () => {
    const plans = new Subject<Plan>();
    const ticks = new Subject<void>();
    const got: number[] = [];
    const sub = executePlans(plans, ticks).subscribe((a) => got.push(a.worldVector[0]));
    ticks.next();
    plans.next({ ...planFrom(5), actions: [planFrom(5).actions[0]!, planFrom(6).actions[0]!] });
    ticks.next();
    ticks.next();
    ticks.next();
    plans.next(planFrom(9));
    ticks.next();
    sub.unsubscribe();
    expect(got).toEqual([0, 5, 6, 0, 9]);
  });
});
