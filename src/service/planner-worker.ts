/**
 * A planner in a worker thread, as an RxJS Planner for the service. A world-model plan blocks its
 * thread for seconds (synchronous tensor reads); on the main thread that would stall the twist
 * republish, e-stop handling, the stale-camera check and signal handlers. Here the worker plans
 * and this side keeps the planner semantics on the main thread's clock:
 *
 * - latest-only: one request in flight; newer observations replace a waiting one, never queue;
 * - a new goal replans the latest observation; nothing is planned before the first goal;
 * - deadline (the preset's budget + grace) by timer here, so a blocked worker still yields the safe
 *   plan on time; the worker is told to abort (it sees that at its next await) and its late plan
 *   is discarded; unsubscribing aborts too;
 * - a worker that dies errors the plan stream (the service answers with the zero command).
 *
 * Images go across as transferred copies (the service keeps its own frame for replanning).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Observable } from 'rxjs';
import { safePlanFor } from '../planner/loop.js';
import type { Goal, Observation, Plan, Planner } from '../planner/types.js';
import { UserError, errorMessage } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import type { FromWorker, PlannerWorkerInfo, ToWorker } from './planner-worker-host.js';
import type { PlanTiming } from './service.js';

/**
 * The compiled world-model worker entry, or undefined when running from TypeScript sources
 * without a build (a worker cannot load .ts): then dist/ is used if it has been built.
 */
export function worldModelWorkerScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  const candidate = here.endsWith('.js') ? join(here, '..', 'planner-worker-main.js') : join(packageRoot(), 'dist', 'src', 'service', 'planner-worker-main.js');
  return existsSync(candidate) ? candidate : undefined;
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
    for (const l of listeners) l(m);
  });
  const died = (why: string) => {
    exited = true;
    for (const l of deathListeners) l(why);
  };
  worker.on('error', (e) => died(`planner worker failed: ${e.message}`));
  worker.on('exit', (code) => died(`planner worker exited (code ${code})`));

  const info = await new Promise<PlannerWorkerInfo>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`planner worker: not ready within ${o.readyTimeoutMs ?? 120_000} ms`)), o.readyTimeoutMs ?? 120_000);
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
  const limit = info.budgetMs + info.graceMs;
  const post = (m: ToWorker, transfer: ArrayBuffer[] = []) => {
    if (!exited) worker.postMessage(m, transfer);
  };
  let ids = 0;
  let goalIds = 0;

  const planner: Planner = (observations$, goals$) =>
    new Observable<Plan>((sub) => {
      let goalId: number | undefined;
      let latest: Observation | undefined;
      let inFlight: { id: number; obs: Observation; t0: number; queuedMs: number; gaveUp: boolean; timer: NodeJS.Timeout } | undefined;
      let waiting: { obs: Observation; since: number } | undefined;
      let sourceDone = false;

      const send = (obs: Observation, queuedMs: number) => {
        const id = ++ids;
        const transfer: ArrayBuffer[] = [];
        post({ type: 'plan', id, goalId: goalId!, obs: copyObservation(obs, transfer) }, transfer);
        const timer = setTimeout(() => {
          if (inFlight?.id !== id) return;
          // The worker is still busy: the safe plan goes out now, its late plan will be dropped.
          inFlight.gaveUp = true;
          post({ type: 'abort', id });
          sub.next(safePlanFor(obs, `deadline missed (${limit} ms)`, performance.now() - inFlight.t0));
        }, limit);
        inFlight = { id, obs, t0: performance.now(), queuedMs, gaveUp: false, timer };
      };
      const submit = (obs: Observation) => {
        if (goalId === undefined) return;
        if (inFlight) waiting = { obs, since: performance.now() };
        else send(obs, 0);
      };
      const settle = () => {
        clearTimeout(inFlight!.timer);
        inFlight = undefined;
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          send(w.obs, performance.now() - w.since);
        } else if (sourceDone) sub.complete();
      };
      const onMsg = (m: FromWorker) => {
        if ((m.type !== 'plan' && m.type !== 'plan-error') || m.id !== inFlight?.id) return;
        const f = inFlight;
        if (!f.gaveUp) {
          if (m.type === 'plan-error') sub.next(safePlanFor(f.obs, `planning error: ${m.message}`, performance.now() - f.t0));
          else {
            const took = performance.now() - f.t0;
            // Checked on arrival too: a timer can fire late under load.
            if (!m.plan.safe && took > limit) sub.next(safePlanFor(f.obs, `deadline missed (plan took ${Math.round(took)} ms, limit ${limit} ms)`, took));
            else {
              const timed: Plan & PlanTiming = { ...m.plan, queuedMs: f.queuedMs };
              sub.next(timed);
            }
          }
        }
        settle();
      };
      const onDeath = (why: string) => {
        if (inFlight) clearTimeout(inFlight.timer);
        sub.error(new Error(why));
      };
      listeners.add(onMsg);
      deathListeners.add(onDeath);
      if (exited) onDeath('planner worker is not running');

      const gs = goals$.subscribe({
        next: (g: Goal) => {
          goalId = ++goalIds;
          const transfer: ArrayBuffer[] = [];
          post({ type: 'goal', goalId, goal: { images: g.images.map((i) => copyObservation(i, transfer)), instruction: g.instruction } }, transfer);
          if (latest) submit(latest);
        },
        error: (e) => sub.error(e),
      });
      const os = observations$.subscribe({
        next: (obs) => {
          latest = obs;
          submit(obs);
        },
        error: (e) => sub.error(e),
        complete: () => {
          sourceDone = true;
          if (!inFlight) sub.complete();
        },
      });
      return () => {
        gs.unsubscribe();
        os.unsubscribe();
        listeners.delete(onMsg);
        deathListeners.delete(onDeath);
        if (inFlight) {
          clearTimeout(inFlight.timer);
          post({ type: 'abort', id: inFlight.id });
        }
      };
    });

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
