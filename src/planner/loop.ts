/**
 * The planning loop in RxJS.
 *
 * - `planLatest`: (observation, goal) pairs -> plans, from the latest pair only. While a plan is
 *   being made, newer pairs replace each other (never queued; each replaced one is reported as
 *   dropped) and the newest is planned next. Every plan runs against a deadline (budget + grace,
 *   by timer and checked again when the plan arrives); a missed deadline, an error or a plan step that ends without a plan yields a safe plan (zero
 *   motion, gripper unchanged) with its reason, reported on the event side channel too.
 *   Unsubscribing aborts the running plan and clears its timer.
 * - `makePlanner`: a Planner (observations$, goals$) -> plans$ around any plan step; no plan
 *   before the first goal, a new goal replans the latest observation, plans$ completes with
 *   observations$.
 * - `createOptimizingPlanner`: the one optimising plan step (src/planner/optimizing-planner.ts:
 *   a per-plan cost from a factory, disposed after every plan, also an aborted one; CEM/MPPI
 *   anytime within the budget, warm-started from the shifted previous plan) as a Planner.
 * - `executePlans` / `execute`: plans + a control tick -> one action per tick (receding horizon:
 *   the previous plan keeps running while the next is computed; an exhausted or stale plan gives
 *   the safe action).
 */
import {
  defer,
  from,
  Observable,
  race,
  Subject,
  timer,
  asyncScheduler,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { map, take, throwIfEmpty } from 'rxjs/operators';
import { safeAction, type Rt1Action } from '../core/action.js';
import { errorMessage } from '../core/errors.js';
import { createOptimizingPlanStep, type OptimizingPlanStepOptions } from './optimizing-planner.js';
import type { Goal, Observation, Plan, Planner } from '../core/types.js';

export type PlanStep<O, G> = (obs: O, goal: G, signal: AbortSignal) => Observable<Plan>;

/** What the loop reports besides the plans themselves (status displays, logs, metrics). */
export type PlannerEvent =
  | { type: 'plan'; observationStamp: number; latencyMs: number; iterations: number; candidatesEvaluated: number; cost: number }
  | { type: 'safe'; observationStamp: number; latencyMs: number; reason: string; error?: unknown }
  | { type: 'dropped'; observationStamp: number; reason: string };

export interface PlanLatestOptions<O> {
  budgetMs: number;
  /** Extra time after the budget before the plan counts as missed (the optimiser's last iteration may overrun). */
  graceMs: number;
  /** Clock of the deadline timer and latencies (a TestScheduler in marble tests). */
  scheduler?: SchedulerLike;
  safePlan: (obs: O, reason: string, latencyMs: number) => Plan;
  /** Side channel: every plan, safe plan and dropped observation. */
  report?: (e: PlannerEvent) => void;
}

const SHUTDOWN = 'planner shut down';

export function planLatest<O extends { stamp: number }, G>(step: PlanStep<O, G>, o: PlanLatestOptions<O>): OperatorFunction<[O, G], Plan> {
  const sched = o.scheduler ?? asyncScheduler;
  const limit = o.budgetMs + o.graceMs;
  return (source) =>
    new Observable<Plan>((sub) => {
      let running: Subscription | undefined;
      let abort: AbortController | undefined;
      let pending: [O, G] | undefined;
      let sourceDone = false;
      const start = (v: [O, G]) => {
        const [obs, goal] = v;
        const ac = (abort = new AbortController());
        const t0 = sched.now();
        const safe = (reason: string, error?: unknown): Plan => {
          const latencyMs = sched.now() - t0;
          o.report?.({ type: 'safe', observationStamp: obs.stamp, latencyMs, reason, error });
          return o.safePlan(obs, reason, latencyMs);
        };
        const work = defer(() => step(obs, goal, ac.signal)).pipe(
          take(1),
          throwIfEmpty(() => new Error('the plan step finished without a plan')),
          map((p) => {
            // A cost that never yields to the event loop (synchronous tensor reads) keeps the deadline
            // timer from firing until the plan is done, so lateness is also checked on arrival.
            const took = sched.now() - t0;
            if (!p.safe && took > limit) {
              ac.abort(new Error('deadline missed'));
              return safe(`deadline missed (plan took ${Math.round(took)} ms, limit ${limit} ms)`);
            }
            if (p.safe) o.report?.({ type: 'safe', observationStamp: obs.stamp, latencyMs: p.latencyMs, reason: p.reason ?? 'safe plan' });
            else
              o.report?.({
                type: 'plan',
                observationStamp: obs.stamp,
                latencyMs: p.latencyMs,
                iterations: p.iterations,
                candidatesEvaluated: p.candidatesEvaluated,
                cost: p.cost,
              });
            return p;
          }),
        );
        const guarded = new Observable<Plan>((inner) =>
          work.subscribe({
            next: (p) => inner.next(p),
            // An error is answered with the safe action, reported, never swallowed.
            error: (e: unknown) => (inner.next(safe(`planning error: ${errorMessage(e)}`, e)), inner.complete()),
            complete: () => inner.complete(),
          }),
        );
        const deadline = timer(limit, sched).pipe(map(() => safe(`deadline missed (${limit} ms)`)));
        let finished = false;
        const s = race(guarded, deadline).subscribe({
          next: (p) => {
            // The deadline won (or the step gave up): stop the optimiser at its next iteration boundary.
            if (p.safe) ac.abort(new Error(p.reason));
            sub.next(p);
          },
          complete: () => {
            finished = true;
            running = undefined;
            if (abort === ac) abort = undefined;
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
        next: (v) => {
          if (!running) return start(v);
          if (pending) {
            const why =
              pending[0].stamp === v[0].stamp
                ? 'superseded by a new goal while planning'
                : `superseded by the observation at ${v[0].stamp} while planning`;
            o.report?.({ type: 'dropped', observationStamp: pending[0].stamp, reason: why });
          }
          pending = v;
        },
        error: (e) => sub.error(e),
        complete: () => {
          sourceDone = true;
          if (!running) sub.complete();
        },
      });
      return () => {
        src.unsubscribe();
        running?.unsubscribe();
        abort?.abort(new Error(SHUTDOWN));
      };
    });
}

/**
 * Pairs every observation with the latest goal: nothing before the first goal; a new goal
 * replans the latest observation; completes when observations$ completes (goals$ may live on).
 */
export function latestPairs<O, G>(observations$: Observable<O>, goals$: Observable<G>): Observable<[O, G]> {
  return new Observable<[O, G]>((sub) => {
    let goal: { v: G } | undefined;
    let obs: { v: O } | undefined;
    const gs = goals$.subscribe({ next: (g) => ((goal = { v: g }), obs && sub.next([obs.v, g])), error: (e) => sub.error(e) });
    const os = observations$.subscribe({
      next: (o) => ((obs = { v: o }), goal && sub.next([o, goal.v])),
      error: (e) => sub.error(e),
      complete: () => sub.complete(),
    });
    return () => {
      gs.unsubscribe();
      os.unsubscribe();
    };
  });
}

export interface MakePlannerOptions {
  budgetMs: number;
  graceMs: number;
  scheduler?: SchedulerLike;
  report?: (e: PlannerEvent) => void;
}

/** A Planner from a plan step (see planLatest and latestPairs for the semantics). */
export function makePlanner(step: PlanStep<Observation, Goal>, o: MakePlannerOptions): Planner {
  return (observations$, goals$) => latestPairs(observations$, goals$).pipe(planLatest(step, { ...o, safePlan: safePlanFor }));
}

/** The plan sent when planning failed: one safe action (zero motion, gripper unchanged). */
export function safePlanFor(obs: Observation, reason: string, latencyMs = 0): Plan {
  return {
    actions: [safeAction()],
    cost: Infinity,
    iterations: 0,
    candidatesEvaluated: 0,
    latencyMs,
    observationStamp: obs.stamp,
    safe: true,
    reason,
  };
}

export type { CostFactory, PlanCost } from './plan-model.js';

export interface OptimizingPlannerOptions extends OptimizingPlanStepOptions {
  graceMs: number;
  /** Clock of the deadline timer; also the budget's clock unless `now` is given (default performance.now without a scheduler). */
  scheduler?: SchedulerLike;
}

export interface OptimizingPlanner {
  planner: Planner;
  /** Every plan, safe plan (with its reason and error) and dropped observation. */
  events$: Observable<PlannerEvent>;
  /** Forget the warm start (a new episode); a seed restarts the random stream. */
  reset(seed?: number): void;
}

/**
 * The optimising plan step (src/planner/optimizing-planner.ts) as a Planner: latest pairs,
 * planLatest's deadline and safe plans, events on a side channel.
 */
export function createOptimizingPlanner(o: OptimizingPlannerOptions): OptimizingPlanner {
  const events = new Subject<PlannerEvent>();
  const step = createOptimizingPlanStep({ ...o, now: o.now ?? (o.scheduler ? () => o.scheduler!.now() : undefined) });
  const planner: Planner = (observations$, goals$) =>
    latestPairs(observations$, goals$).pipe(
      planLatest((obs, goal, signal) => from(step.plan(obs, goal, signal)), {
        budgetMs: o.budgetMs,
        graceMs: o.graceMs,
        scheduler: o.scheduler,
        safePlan: safePlanFor,
        report: (e) => events.next(e),
      }),
    );
  return { planner, events$: events.asObservable(), reset: (seed) => step.reset(seed) };
}

/**
 * Counts how many actions of each plan the executor has sent, so the next plan's warm start is
 * shifted by what really happened (pass it to executePlans and to createOptimizingPlanner's
 * `executed`: `(p) => progress.executed(p)`).
 */
export class ExecutionProgress {
  private current?: Plan;
  private sent = 0;

  started(plan: Plan): void {
    this.current = plan;
    this.sent = 0;
  }

  sentOne(): void {
    this.sent++;
  }

  /** Actions of `plan` sent so far (0 for a plan the executor never started). */
  executed(plan: Plan): number {
    return plan === this.current ? this.sent : 0;
  }
}

export interface ExecuteOptions {
  /** A plan that arrived longer ago than this (scheduler time) is stale: the safe action is sent instead. */
  maxPlanAgeMs?: number;
  scheduler?: SchedulerLike;
  progress?: ExecutionProgress;
}

/**
 * One action per tick from the latest plan: a new plan restarts at its first action; when the
 * current plan is used up, stale, or none has arrived yet, the safe action is sent. Completes
 * with tick$; plans$ completing leaves the last plan running out.
 */
export function executePlans(plans$: Observable<Plan>, tick$: Observable<unknown>, opts: ExecuteOptions = {}): Observable<Rt1Action> {
  const sched = opts.scheduler ?? asyncScheduler;
  return new Observable<Rt1Action>((sub) => {
    let plan: Plan | undefined;
    let arrived = 0;
    let index = 0;
    const ps = plans$.subscribe({
      next: (p) => {
        plan = p;
        index = 0;
        arrived = sched.now();
        opts.progress?.started(p);
      },
      error: (e) => sub.error(e),
    });
    const ts = tick$.subscribe({
      next: () => {
        const fresh = opts.maxPlanAgeMs === undefined || sched.now() - arrived <= opts.maxPlanAgeMs;
        if (plan && fresh && index < plan.actions.length) {
          opts.progress?.sentOne();
          sub.next(plan.actions[index++]!);
        } else sub.next(safeAction());
      },
      complete: () => sub.complete(),
      error: (e) => sub.error(e),
    });
    return () => {
      ps.unsubscribe();
      ts.unsubscribe();
    };
  });
}

/** executePlans as an operator on plans$: `plans$.pipe(execute(tick$))`. */
export function execute(tick$: Observable<unknown>, opts: ExecuteOptions = {}): OperatorFunction<Plan, Rt1Action> {
  return (plans$) => executePlans(plans$, tick$, opts);
}
