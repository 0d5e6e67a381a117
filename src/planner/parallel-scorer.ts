/**
 * One plan's candidates scored on several cores: a pool of scoring workers (worker threads, each
 * with its own copy of the world model and backend, src/planner/score-worker.ts) and a cost that
 * splits every optimiser iteration's batch into contiguous shares: the first is scored on the
 * planner's own thread, the others by the workers at the same time, and the costs are put back
 * in the batch's order. Each candidate is imagined from the flow noise of its row in the whole
 * batch (BatchShare), so the costs do not depend on the split.
 *
 * Safety: a worker that dies, fails or does not answer within `scoreTimeoutMs` fails the request
 * (a planning error: the planning loop answers with the safe plan), never a hang; a dead worker
 * leaves the pool and later plans are split over the remaining threads. Workers do not keep the
 * process alive while idle and end with it.
 */
import { compiledWorkerScript } from '../util/worker-script.js';
import { splitShares } from '../util/shares.js';
import { shareBlasThreads } from '../backend/backends.js';
import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { errorMessage } from '../core/errors.js';
import type { Goal, Observation } from '../core/types.js';
import type { Rng } from '../util/rng.js';
import { costReference, futureCosts, scoringGoal, type CostReference, type CostSettings } from './cost.js';
import type { BatchShare, CostFactory, Rollout } from './plan-model.js';
import type { FromScoreWorker, ScoreWorkerData, ScoringContext, SharedContext, ToScoreWorker } from './score-protocol.js';

/**
 * The compiled scoring-worker entry, or undefined when running from TypeScript sources without a
 * build (a worker cannot load .ts): then dist/ is used if it has been built.
 */
export function scoreWorkerScript(): string | undefined {
  return compiledWorkerScript(import.meta.url, 'score-worker.js');
}

export interface ScorePoolOptions {
  /** Scoring workers to start (the planner's own thread scores a share too). */
  workers: number;
  data: ScoreWorkerData;
  /** How to start worker `index` (default: the compiled score-worker.js with `data`). */
  spawn?: (index: number) => Worker;
  /** How long a worker may take to load (ms). */
  readyTimeoutMs?: number;
  /** How long one share may take before its worker counts as hung and is stopped (ms). */
  scoreTimeoutMs?: number;
  log?: (line: string) => void;
}

interface Pending {
  resolve: (costs: Float32Array) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One scoring worker as the pool sees it. */
class Member {
  readonly pending = new Map<number, Pending>();
  alive = true;
  /** Why the worker stopped (its pending and later requests fail with it). */
  gone = '';

  constructor(
    readonly index: number,
    readonly worker: Worker,
  ) {}
}

export class ScorePool {
  private ids = 0;
  private plans = 0;

  private constructor(
    private readonly members: Member[],
    private readonly scoreTimeoutMs: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts the workers and waits until each has loaded the model; any failure stops them all. */
  static async start(o: ScorePoolOptions): Promise<ScorePool> {
    const script = o.spawn ? undefined : scoreWorkerScript();
    if (!o.spawn && !script) throw new Error('no compiled scoring worker (dist/src/planner/score-worker.js): run `npm run build`');
    const spawn = o.spawn ?? (() => new Worker(script!, { workerData: o.data }));
    const members = Array.from({ length: o.workers }, (_, i) => new Member(i, spawn(i)));
    const pool = new ScorePool(members, o.scoreTimeoutMs ?? 60_000, o.log ?? (() => {}));
    const readyMs = o.readyTimeoutMs ?? 120_000;
    try {
      await Promise.all(members.map((m) => pool.ready(m, readyMs)));
    } catch (e) {
      pool.dispose();
      throw e;
    }
    const shared = shareBlasThreads(o.workers + 1);
    if (shared) pool.log(shared);
    for (const m of members) pool.watch(m);
    return pool;
  }

  private ready(m: Member, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        clearTimeout(timer);
        m.worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        if (e) reject(e);
        else resolve();
      };
      const onMessage = (msg: FromScoreWorker) => {
        if (msg.type === 'ready') done();
        else if (msg.type === 'fatal') done(new Error(`scoring worker ${m.index}: ${msg.message}`));
      };
      const onError = (e: Error) => done(new Error(`scoring worker ${m.index} failed while loading: ${e.message}`));
      const onExit = (code: number) => done(new Error(`scoring worker ${m.index} exited while loading (code ${code})`));
      const timer = setTimeout(() => done(new Error(`scoring worker ${m.index}: not ready within ${timeoutMs} ms`)), timeoutMs);
      m.worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  /** Answers, failures and exits of a loaded worker; idle workers do not keep the process alive. */
  private watch(m: Member): void {
    m.worker.on('message', (msg: FromScoreWorker) => {
      if (msg.type !== 'costs' && msg.type !== 'error') return;
      const p = m.pending.get(msg.id);
      if (!p) return;
      this.settle(m, msg.id);
      if (msg.type === 'costs') p.resolve(msg.costs);
      else p.reject(new Error(`scoring worker ${m.index}: ${msg.message}`));
    });
    m.worker.on('error', (e) => this.lose(m, `failed: ${e.message}`));
    m.worker.on('exit', (code) => this.lose(m, `exited (code ${code})`));
    m.worker.unref();
  }

  private settle(m: Member, id: number): void {
    const p = m.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    m.pending.delete(id);
    if (m.pending.size === 0) m.worker.unref();
  }

  /** A worker gone: its requests fail, and it takes no further shares. */
  private lose(m: Member, why: string, quiet = false): void {
    if (!m.alive) return;
    m.alive = false;
    m.gone = `scoring worker ${m.index} ${why}`;
    if (!quiet) this.log(`${m.gone}; planning goes on with ${this.size + 1} thread(s)`);
    for (const [id, p] of [...m.pending]) {
      this.settle(m, id);
      p.reject(new Error(m.gone));
    }
    void m.worker.terminate();
  }

  /** Workers still scoring. */
  get size(): number {
    return this.members.filter((m) => m.alive).length;
  }

  /** The live workers' indices, for one iteration's split. */
  live(): number[] {
    return this.members.filter((m) => m.alive).map((m) => m.index);
  }

  /** Hands every live worker the context of a new plan; returns the plan's id for score(). */
  setContext(shared: SharedContext, weights: ScoringContext['weights']): number {
    const plan = ++this.plans;
    const context: ScoringContext = { ...shared, plan, weights };
    for (const m of this.members) if (m.alive) this.post(m, { type: 'context', context });
    return plan;
  }

  private post(m: Member, msg: ToScoreWorker, transfer: ArrayBuffer[] = []): void {
    try {
      m.worker.postMessage(msg, transfer);
    } catch (e) {
      this.lose(m, `cannot be reached (${errorMessage(e)})`);
    }
  }

  /** Costs of n candidates (rows share.offset.. of the batch) from worker `index`, with the context of `plan`. */
  score(index: number, plan: number, candidates: Float32Array, n: number, share: BatchShare): Promise<Float32Array> {
    const m = this.members[index];
    if (!m) return Promise.reject(new Error(`no scoring worker ${index}`));
    if (!m.alive) return Promise.reject(new Error(m.gone));
    const id = ++this.ids;
    return new Promise<Float32Array>((resolve, reject) => {
      const timer = setTimeout(() => this.lose(m, `did not answer within ${this.scoreTimeoutMs} ms and was stopped`), this.scoreTimeoutMs);
      m.pending.set(id, { resolve, reject, timer });
      m.worker.ref();
      const copy = candidates.slice();
      this.post(m, { type: 'score', id, plan, candidates: copy, n, share }, [copy.buffer]);
    });
  }

  /** Stops every worker. */
  dispose(): void {
    for (const m of this.members) this.lose(m, 'stopped', true);
  }
}

/** One plan's view of a model whose context can be handed to scoring workers. */
export interface ShareableRollout extends Rollout {
  /** The context the workers need to predict what this rollout predicts (the goal is added as the cost reads it: scoringGoal). */
  shared(): Omit<SharedContext, 'goal'>;
}

export interface ShareableModel {
  readonly imageHeight: number;
  readonly imageWidth: number;
  rollout(obs: Observation, goal: Goal, horizon: number, rng: Rng): ShareableRollout;
}

/**
 * modelCost (src/planner/cost.ts) with each batch split over the planner's thread and the pool's
 * live workers: the same costs, scored in parallel.
 */
export function splitModelCost(model: ShareableModel, pool: ScorePool, settings: CostSettings, actionDim: number): CostFactory {
  return (obs, goal, rng) => {
    const horizon = settings.optimizer.horizon;
    const rollout = model.rollout(obs, goal, horizon, rng);
    const withPosition = settings.cost.pose > 0;
    let ref: CostReference;
    try {
      ref = costReference(obs, goal, model.imageHeight, model.imageWidth, withPosition);
    } catch (e) {
      rollout.dispose();
      throw e;
    }
    // The workers get the plan's context with its first batch: a plan that never scores (its action taken from a
    // policy) costs them no context encoding.
    let plan: number | undefined;
    const context = () => (plan ??= pool.setContext({ ...rollout.shared(), goal: scoringGoal(goal, withPosition) }, settings.cost));
    const len = horizon * actionDim;
    const cost = async (c: Float32Array, n: number): Promise<Float32Array> => {
      const planId = context();
      const workers = pool.live();
      const shares = splitShares(n, workers.length + 1);
      const remote = shares
        .slice(1)
        .map((s, j) =>
          pool.score(workers[j]!, planId, c.subarray(s.offset * len, (s.offset + s.count) * len), s.count, { offset: s.offset, total: n }),
        );
      // The first share is scored here while the workers score theirs; a failed worker is reported once this one is done.
      const settled = Promise.allSettled(remote);
      const own = shares[0]!;
      const mine = c.subarray(0, own.count * len);
      const local = futureCosts(
        settings.cost,
        ref,
        () => rollout.predict(mine, own.count, { offset: 0, total: n }),
        mine,
        own.count,
        horizon,
        actionDim,
      );
      const out = new Float32Array(n);
      out.set(local, 0);
      const answers = await settled;
      answers.forEach((a, j) => {
        if (a.status === 'rejected') throw a.reason instanceof Error ? a.reason : new Error(String(a.reason));
        const s = shares[j + 1]!;
        if (a.value.length !== s.count)
          throw new Error(`scoring worker ${workers[j]} returned ${a.value.length} costs for ${s.count} candidates`);
        out.set(a.value, s.offset);
      });
      return out;
    };
    const imagine = rollout.imagine?.bind(rollout);
    return {
      cost,
      proposals: rollout.proposals,
      imagine: imagine && (async (best) => imagine(best)),
      dispose() {
        rollout.dispose();
        tf.dispose([ref.now, ref.goal]);
      },
    };
  };
}
