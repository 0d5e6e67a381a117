/**
 * The planning loop in RxJS. `planLatest` turns (observation, goal) pairs into plans, planning
 * from the latest pair only: while a plan is being made, newer observations replace each other
 * (never queued) and the newest is planned next. Every plan runs against a deadline; a missed
 * deadline or an error yields a safe plan (zero motion, gripper unchanged) with its reason.
 * Unsubscribing aborts the running plan and clears its timer. `executePlans` turns plans and a
 * control tick into one action per tick (receding horizon: the previous plan keeps running
 * while the next is computed; an exhausted plan gives the safe action).
 */
import { Observable, race, timer, of, type SchedulerLike, type Subscription, type OperatorFunction, combineLatest } from 'rxjs';
import { catchError, filter, map, take } from 'rxjs/operators';
import { safeAction, type Rt1Action } from '../robot/action.js';
import type { Goal, Observation, Plan, Planner } from './types.js';

export type PlanStep<O, G> = (obs: O, goal: G, signal: AbortSignal) => Observable<Plan>;

export interface PlanLatestOptions<O> {
  budgetMs: number;
  graceMs: number;
  scheduler?: SchedulerLike;
  safePlan: (obs: O, reason: string) => Plan;
}

export function planLatest<O, G>(step: PlanStep<O, G>, o: PlanLatestOptions<O>): OperatorFunction<[O, G], Plan> {
  return (source) =>
    new Observable<Plan>((sub) => {
      let running: Subscription | undefined;
      let abort: AbortController | undefined;
      let pending: [O, G] | undefined;
      let sourceDone = false;
      const start = (v: [O, G]) => {
        abort = new AbortController();
        const ac = abort;
        const work = step(v[0], v[1], ac.signal).pipe(
          take(1),
          catchError((e: unknown) => of(o.safePlan(v[0], `planning error: ${e instanceof Error ? e.message : String(e)}`))),
        );
        const deadline = timer(o.budgetMs + o.graceMs, o.scheduler).pipe(map(() => o.safePlan(v[0], `deadline missed (${o.budgetMs + o.graceMs} ms)`)));
        let finished = false;
        const s = race(work, deadline).subscribe({
          next: (p) => {
            if (p.safe) ac.abort();
            sub.next(p);
          },
          complete: () => {
            finished = true;
            running = undefined;
            if (pending) {
              const next = pending;
              pending = undefined;
              start(next);
            } else if (sourceDone) sub.complete();
          },
        });
        // A plan that completed synchronously has already cleared `running` (and maybe started the next).
        if (!finished) running = s;
      };
      const src = source.subscribe({
        next: (v) => (running ? (pending = v) : start(v)),
        error: (e) => sub.error(e),
        complete: () => {
          sourceDone = true;
          if (!running) sub.complete();
        },
      });
      return () => {
        src.unsubscribe();
        running?.unsubscribe();
        abort?.abort();
      };
    });
}

/** A Planner from a plan step: pairs every observation with the latest goal (none planned before a goal). */
export function makePlanner(step: PlanStep<Observation, Goal>, o: Omit<PlanLatestOptions<Observation>, 'safePlan'>): Planner {
  return (observations$, goals$) =>
    combineLatest([observations$, goals$]).pipe(
      filter(([obs]) => obs !== undefined),
      planLatest(step, { ...o, safePlan: safePlanFor }),
    );
}

export function safePlanFor(obs: Observation, reason: string): Plan {
  return { actions: [safeAction()], cost: Infinity, iterations: 0, candidatesEvaluated: 0, latencyMs: 0, observationStamp: obs.stamp, safe: true, reason };
}

/**
 * One action per tick from the latest plan: a new plan restarts at its first action; when the
 * current plan is used up (or none has arrived yet) the safe action is sent.
 */
export function executePlans(plans$: Observable<Plan>, tick$: Observable<unknown>): Observable<Rt1Action> {
  return new Observable<Rt1Action>((sub) => {
    let plan: Plan | undefined;
    let index = 0;
    const ps = plans$.subscribe({ next: (p) => ((plan = p), (index = 0)), error: (e) => sub.error(e) });
    const ts = tick$.subscribe({
      next: () => sub.next(plan && index < plan.actions.length ? plan.actions[index++]! : safeAction()),
      complete: () => sub.complete(),
      error: (e) => sub.error(e),
    });
    return () => {
      ps.unsubscribe();
      ts.unsubscribe();
    };
  });
}
