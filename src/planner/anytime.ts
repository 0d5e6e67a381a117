/**
 * The anytime driver shared by CEM and MPPI: sample a population, score it with the (batched,
 * async) cost, keep the best sequence ever seen, update the sampling Gaussian, repeat until the
 * iteration cap, the time budget or an abort. The first iteration always runs (a plan needs at
 * least one scored population); later ones start only if they are expected to finish in time,
 * judged by the mean duration of the iterations so far, because an iteration cannot be stopped
 * half-way (the cost is one batched model call).
 */
import type { Rng } from '../util/rng.js';
import { applyPins } from './pinned-actions.js';
import type { PinnedDim } from './plan-model.js';
import { rankByCost, samplePopulation, type SequenceGaussian } from './population.js';
import { checkBatch, clipUnit, type ProposalSource, type SequenceCost, type SequenceShape } from './sequence.js';

/** Refits the sampling distribution from one scored population (CEM, MPPI). */
export type DistributionUpdate = (
  dist: SequenceGaussian,
  candidates: Float32Array,
  costs: Float32Array,
  order: Int32Array,
  n: number,
) => void;

export interface AnytimeSettings extends SequenceShape {
  candidates: number;
  /** Upper bound on iterations (the time budget usually ends earlier). */
  iterations: number;
  initStd: number;
  /** Fraction of each population drawn from the proposal source (0 = none). */
  proposalFraction: number;
}

export interface AnytimeOptions {
  rng: Rng;
  /** The previous plan already shifted to start now (see shiftPlan); the first mean. */
  warmStart?: Float32Array;
  proposals?: ProposalSource;
  /** Time (per `now`) after which no iteration may end; combined with budgetMs, the earlier wins. */
  deadline?: number;
  /** Time budget from the start of this call, milliseconds. */
  budgetMs?: number;
  /** Skip an iteration expected to end past the deadline (default true); false = only check before starting. */
  predictive?: boolean;
  now?: () => number;
  /** Checked between iterations: an abort ends the optimisation with the best plan so far. */
  signal?: AbortSignal;
  /**
   * Awaited between iterations. A synchronous cost (the world model reads its tensors back
   * synchronously) never lets the event loop run, so an abort message could not arrive until
   * the whole plan ended; yielding here (e.g. to setImmediate) lets it in.
   */
  between?: () => Promise<void>;
  onIteration?: (it: IterationReport) => void;
  /** Action dimensions held at fixed values in every candidate (src/planner/pinned-actions.ts). */
  pinned?: readonly PinnedDim[];
  /** Applied to every candidate after the pins, before scoring (e.g. moveCap). */
  constrain?: (seqs: Float32Array) => void;
  /** One sequence (H x A) scored in the first iteration in place of the last Gaussian sample (e.g. straightMove). */
  include?: Float32Array;
}

export interface IterationReport {
  iteration: number;
  bestCost: number;
  iterationBestCost: number;
  ms: number;
}

export type StopReason = 'iterations' | 'budget' | 'aborted';

export interface OptimizeResult {
  /** Best sequence seen (H x A, clipped); the warm start (or zeros) when nothing was scored. */
  best: Float32Array;
  bestCost: number;
  /** Mean of the sampling distribution at the end. */
  mean: Float32Array;
  iterations: number;
  candidatesEvaluated: number;
  /** How many of the evaluated candidates came from the proposal source. */
  proposalsEvaluated: number;
  /** Best cost so far after each iteration (non-increasing). */
  costHistory: number[];
  stopReason: StopReason;
  elapsedMs: number;
  /** Time spent waiting for the cost and proposal functions; elapsedMs minus this is the optimiser's own overhead. */
  externalMs: number;
}

function checkSettings(s: AnytimeSettings): void {
  const int = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!int(s.horizon, 1) || !int(s.actionDim, 1))
    throw new Error(`optimiser needs horizon and actionDim >= 1, got ${s.horizon} x ${s.actionDim}`);
  if (!int(s.candidates, 2)) throw new Error(`optimiser needs at least 2 candidates per iteration, got ${s.candidates}`);
  if (!int(s.iterations, 1)) throw new Error(`optimiser needs at least 1 iteration, got ${s.iterations}`);
  if (!(s.initStd >= 0)) throw new Error(`optimiser initStd must be >= 0, got ${s.initStd}`);
  if (!(s.proposalFraction >= 0 && s.proposalFraction <= 1))
    throw new Error(`optimiser proposalFraction must be in [0, 1], got ${s.proposalFraction}`);
}

export async function runAnytime(
  s: AnytimeSettings,
  update: DistributionUpdate,
  cost: SequenceCost,
  o: AnytimeOptions,
): Promise<OptimizeResult> {
  checkSettings(s);
  const len = s.horizon * s.actionDim;
  if (o.include && o.include.length !== len) throw new Error(`included sequence has ${o.include.length} values, expected ${len}`);
  if (o.warmStart && o.warmStart.length !== len)
    throw new Error(`warm start has ${o.warmStart.length} values, expected horizon ${s.horizon} x action dim ${s.actionDim} = ${len}`);
  const now = o.now ?? (() => performance.now());
  const t0 = now();
  const deadline = Math.min(o.deadline ?? Infinity, o.budgetMs !== undefined ? t0 + o.budgetMs : Infinity);
  const predictive = o.predictive ?? true;
  const dist: SequenceGaussian = {
    mean: o.warmStart ? Float32Array.from(o.warmStart) : new Float32Array(len),
    std: new Float32Array(len).fill(s.initStd),
  };
  applyPins(dist.mean, s.actionDim, o.pinned ?? []);
  o.constrain?.(dist.mean);
  let best = Float32Array.from(dist.mean, (v) => Math.max(-1, Math.min(1, v)));
  let bestCost = Infinity;
  let evaluated = 0;
  let proposed = 0;
  let externalMs = 0;
  const history: number[] = [];
  let stopReason: StopReason = 'iterations';
  let it = 0;
  for (; it < s.iterations; it++) {
    if (o.signal?.aborted) {
      stopReason = 'aborted';
      break;
    }
    if (it > 0 && o.between) {
      await o.between();
      if (o.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
    }
    if (it > 0) {
      const t = now();
      const expected = predictive ? (t - t0) / it : 0;
      if (t + expected > deadline) {
        stopReason = 'budget';
        break;
      }
    }
    const tIt = now();
    const pop = await samplePopulation(dist, s.candidates, o.rng, { source: o.proposals, fraction: s.proposalFraction }, now);
    if (it === 0 && o.include) pop.candidates.set(Array.from(o.include.subarray(0, len), clipUnit), (pop.n - 1) * len);
    applyPins(pop.candidates, s.actionDim, o.pinned ?? []);
    o.constrain?.(pop.candidates);
    const tCost = now();
    const costs = await cost(pop.candidates, pop.n);
    externalMs += pop.proposalMs + (now() - tCost);
    checkBatch('the cost function', costs, pop.n);
    evaluated += pop.n;
    proposed += pop.proposals;
    const order = rankByCost(costs, pop.n);
    const top = order[0]!;
    const topCost = costs[top]!;
    if (topCost < bestCost) {
      bestCost = topCost;
      best = pop.candidates.slice(top * len, (top + 1) * len);
    }
    history.push(bestCost);
    update(dist, pop.candidates, costs, order, pop.n);
    o.onIteration?.({ iteration: it, bestCost, iterationBestCost: Number.isNaN(topCost) ? Infinity : topCost, ms: now() - tIt });
  }
  return {
    best,
    bestCost,
    mean: dist.mean,
    iterations: it,
    candidatesEvaluated: evaluated,
    proposalsEvaluated: proposed,
    costHistory: history,
    stopReason,
    elapsedMs: now() - t0,
    externalMs,
  };
}
