/**
 * A planner in a worker thread, as an RxJS Planner for the service. A world-model plan blocks its
 * thread for seconds (synchronous tensor reads); on the main thread that would stall the twist
 * republish, e-stop handling, the stale-camera check and signal handlers. Here the worker plans
 * and this side keeps the planner semantics on the main thread's clock, with the same operators
 * as every other planner (latestPairs and planLatest, src/planner/loop.ts):
 *
 * - latest-only: newer observations replace a waiting one, never queue;
 * - a new goal replans the latest observation; nothing is planned before the first goal;
 * - deadline (the preset's budget + grace) by timer here, so a blocked worker still yields the safe
 *   plan on time; the worker is told to abort (it sees that at its next await) and its late plan
 *   is discarded; unsubscribing aborts too. The worker's plan step starts a plan only once the
 *   aborted one has stopped (src/planner/optimizing-planner.ts);
 * - a worker that dies errors the plan stream (the service answers with the zero command).
 *
 * Images go across as transferred copies (the service keeps its own frame for replanning).
 */
import { compiledWorkerScript } from '../util/worker-script.js';
import { Worker } from 'node:worker_threads';
import { map, merge, Observable } from 'rxjs';
import { latestPairs, planLatest, safePlanFor } from '../planner/loop.js';
import type { Goal, Observation, Plan, Planner } from '../core/types.js';
import { UserError, errorMessage } from '../core/errors.js';
import type { FromWorker, PlannerWorkerInfo, ToWorker } from './planner-worker-host.js';
import type { PlanTiming } from './service.js';

/**
 * The compiled world-model worker entry, or undefined when running from TypeScript sources
 * without a build (a worker cannot load .ts): then dist/ is used if it has been built.
 */
export function worldModelWorkerScript(): string | undefined {
  return compiledWorkerScript(import.meta.url, 'planner-worker-main.js');
}

export interface WorkerPlannerOptions {
  /** Worker entry script (compiled JS) that calls hostPlanner. */
  script: string | URL;
  workerData?: unknown;
  /** How long to wait for the worker's `ready` (model loading). */
  readyTimeoutMs?: number;
  log?: (line: string) => void;
  /** Aborting while the worker loads terminates it (serve stopped by a signal during startup). */
  signal?: AbortSignal;
}

export interface WorkerPlanner {
  readonly info: PlannerWorkerInfo;
  readonly planner: Planner;
  /** Forget the warm start and context (new episode). */
  reset(seed?: number): void;
  close(): Promise<void>;
}

/** An observation waiting for the worker, with when it arrived (the service's latency bookkeeping wants the wait). */
interface Queued {
  obs: Observation;
  stamp: number;
  arrived: number;
}

function copyObservation(o: Observation, transfer: ArrayBuffer[]): Observation {
  const image = o.image.slice();
  transfer.push(image.buffer);
  const out: Observation = { image, height: o.height, width: o.width, stamp: o.stamp };
  if (o.proprio) {
    out.proprio = o.proprio.slice();
    transfer.push(out.proprio.buffer as ArrayBuffer);
  }
  return out;
}

export async function startWorkerPlanner(o: WorkerPlannerOptions): Promise<WorkerPlanner> {
  const log = o.log ?? (() => {});
  const worker = new Worker(o.script, { workerData: o.workerData });
  let exited = false;
  const listeners = new Set<(m: FromWorker) => void>();
  const deathListeners = new Set<(why: string) => void>();
  worker.on('message', (m: FromWorker) => {
    if (m.type === 'log') log(m.line);
    for (const l of listeners) l(m);
  });
  const died = (why: string) => {
    exited = true;
    for (const l of deathListeners) l(why);
  };
  worker.on('error', (e) => died(`planner worker failed: ${e.message}`));
  worker.on('exit', (code) => died(`planner worker exited (code ${code})`));

  const info = await new Promise<PlannerWorkerInfo>((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`planner worker: not ready within ${o.readyTimeoutMs ?? 120_000} ms`)),
      o.readyTimeoutMs ?? 120_000,
    );
    const onMsg = (m: FromWorker) => {
      if (m.type === 'ready') done(undefined, m.info);
      else if (m.type === 'fatal') done(m.user ? new UserError(m.message) : new Error(`planner worker: ${m.message}`));
    };
    const onDeath = (why: string) => done(new Error(why));
    const onAbort = () => done(new Error(`planner worker: loading stopped (${errorMessage(o.signal!.reason)})`));
    const done = (e?: Error, v?: PlannerWorkerInfo) => {
      clearTimeout(timer);
      listeners.delete(onMsg);
      deathListeners.delete(onDeath);
      o.signal?.removeEventListener('abort', onAbort);
      if (e) {
        void worker.terminate();
        reject(e);
      } else resolve(v!);
    };
    listeners.add(onMsg);
    deathListeners.add(onDeath);
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
  const post = (m: ToWorker, transfer: ArrayBuffer[] = []) => {
    if (!exited) worker.postMessage(m, transfer);
  };
  let ids = 0;
  let goalIds = 0;

  /** One plan request to the worker: answered by its plan, or an error; unsubscribing before the answer tells the worker to abort. */
  const request = (q: Queued, goalId: number): Observable<Plan> =>
    new Observable<Plan>((sub) => {
      const id = ++ids;
      const queuedMs = performance.now() - q.arrived;
      let answered = false;
      const onMsg = (m: FromWorker) => {
        if ((m.type !== 'plan' && m.type !== 'plan-error') || m.id !== id) return;
        answered = true;
        if (m.type === 'plan-error') sub.error(new Error(m.message));
        else {
          const timed: Plan & PlanTiming = { ...m.plan, queuedMs };
          sub.next(timed);
          sub.complete();
        }
      };
      listeners.add(onMsg);
      const transfer: ArrayBuffer[] = [];
      post({ type: 'plan', id, goalId, obs: copyObservation(q.obs, transfer) }, transfer);
      return () => {
        listeners.delete(onMsg);
        // The deadline passed or the stream stopped: the worker gives up at its next await; a late plan is dropped here.
        if (!answered) post({ type: 'abort', id });
      };
    });

  // The main thread keeps the planner semantics (latest pair only, deadline, safe plans) with loop.ts's planLatest; the worker only plans.
  const planner: Planner = (observations$, goals$) => {
    let posted: { goal: Goal; id: number } | undefined;
    const step = (q: Queued, goal: Goal): Observable<Plan> => {
      if (posted?.goal !== goal) {
        posted = { goal, id: ++goalIds };
        const transfer: ArrayBuffer[] = [];
        post(
          {
            type: 'goal',
            goalId: posted.id,
            goal: { images: goal.images.map((i) => copyObservation(i, transfer)), instruction: goal.instruction },
          },
          transfer,
        );
      }
      return request(q, posted.id);
    };
    const plans$ = latestPairs(observations$, goals$).pipe(
      map(([obs, goal]): [Queued, Goal] => [{ obs, stamp: obs.stamp, arrived: performance.now() }, goal]),
      planLatest(step, {
        budgetMs: info.budgetMs,
        graceMs: info.graceMs,
        safePlan: (q, reason, latencyMs) => safePlanFor(q.obs, reason, latencyMs),
      }),
    );
    // A worker that dies errors the plan stream (the service answers with the zero command).
    const died$ = new Observable<never>((sub) => {
      const onDeath = (why: string) => sub.error(new Error(why));
      deathListeners.add(onDeath);
      if (exited) onDeath('planner worker is not running');
      return () => deathListeners.delete(onDeath);
    });
    return merge(plans$, died$);
  };

  return {
    info,
    planner,
    reset: (seed) => post({ type: 'reset', seed }),
    async close() {
      if (exited) return;
      const gone = new Promise<void>((r) => worker.once('exit', () => r()));
      post({ type: 'close' });
      // A worker stuck in a plan cannot read `close`: give it a moment, then stop it.
      const t = setTimeout(() => void worker.terminate(), 1000);
      await gone;
      clearTimeout(t);
      log('planner worker stopped');
    },
  };
}
