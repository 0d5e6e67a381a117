/**
 * The worker-thread side of the planner protocol (src/service/planner-worker.ts is the service
 * side): goals and observations arrive as messages, each `plan` request is answered with one plan
 * or an error, array buffers travel as transfers. A plan step here may block this thread for as
 * long as it likes; the service's timers run on the main thread.
 *
 * Messages, service -> worker:
 *   { type: 'goal', goalId, goal }            goal images (RGB) and instruction
 *   { type: 'plan', id, goalId, obs }         plan from obs towards goal `goalId`
 *   { type: 'abort', id }                     give up plan `id` (seen at the step's next await)
 *   { type: 'reset', seed? }                  new episode
 *   { type: 'close' }
 * worker -> service:
 *   { type: 'ready', info }                   once, after loading
 *   { type: 'fatal', message, user }          loading failed; the worker exits
 *   { type: 'plan', id, plan }                the answer to request `id`
 *   { type: 'plan-error', id, message }
 *   { type: 'log', line }                     for the service's log (e.g. a scoring worker lost)
 */
import type { MessagePort } from 'node:worker_threads';
import type { Goal, Observation, Plan } from '../core/types.js';
import { errorMessage } from '../core/errors.js';

/** What the service learns about the planner once it has loaded. */
export interface PlannerWorkerInfo {
  name: string;
  kind: string;
  candidates: number;
  budgetMs: number;
  graceMs: number;
  /** Size of the imagined frames on plans (the model's image size). */
  imageHeight?: number;
  imageWidth?: number;
  /** Threads that score one plan's candidates. */
  planWorkers?: number;
}

export type ToWorker =
  | { type: 'goal'; goalId: number; goal: Goal }
  | { type: 'plan'; id: number; goalId: number; obs: Observation }
  | { type: 'abort'; id: number }
  | { type: 'reset'; seed?: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; info: PlannerWorkerInfo }
  | { type: 'fatal'; message: string; user: boolean }
  | { type: 'plan'; id: number; plan: Plan }
  | { type: 'plan-error'; id: number; message: string }
  | { type: 'log'; line: string };

export interface HostedPlanner {
  plan(obs: Observation, goal: Goal, signal: AbortSignal): Promise<Plan>;
  reset?(seed?: number): void;
  dispose?(): void;
}

/** The buffers of a plan that can move instead of being copied. */
export function planTransfers(p: Plan): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  if (p.sequence && p.sequence.buffer instanceof ArrayBuffer) out.add(p.sequence.buffer);
  for (const f of p.imagined ?? []) if (f.buffer instanceof ArrayBuffer) out.add(f.buffer);
  return [...out];
}

/** Serves `planner` on `port` (parentPort in a worker). */
export function hostPlanner(port: MessagePort, planner: HostedPlanner, info: PlannerWorkerInfo): void {
  const goals = new Map<number, Goal>();
  const running = new Map<number, AbortController>();
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'goal':
        // Only the newest goal is ever asked for; keeping one object per goal lets the planner
        // recognise an unchanged goal and skip re-encoding it.
        goals.clear();
        goals.set(m.goalId, m.goal);
        break;
      case 'plan': {
        const goal = goals.get(m.goalId);
        if (!goal) {
          port.postMessage({ type: 'plan-error', id: m.id, message: `no goal ${m.goalId} in the planner worker` } satisfies FromWorker);
          break;
        }
        const ac = new AbortController();
        running.set(m.id, ac);
        planner
          .plan(m.obs, goal, ac.signal)
          .then(
            (plan) => port.postMessage({ type: 'plan', id: m.id, plan } satisfies FromWorker, planTransfers(plan)),
            (e: unknown) => port.postMessage({ type: 'plan-error', id: m.id, message: errorMessage(e) } satisfies FromWorker),
          )
          .finally(() => running.delete(m.id));
        break;
      }
      case 'abort':
        running.get(m.id)?.abort(new Error('aborted by the service (deadline or shutdown)'));
        break;
      case 'reset':
        planner.reset?.(m.seed);
        break;
      case 'close':
        for (const ac of running.values()) ac.abort(new Error('planner worker closing'));
        planner.dispose?.();
        port.close();
        break;
    }
  });
  port.postMessage({ type: 'ready', info } satisfies FromWorker);
}
