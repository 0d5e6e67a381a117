/**
 * Sampling-based trajectory optimisers over action sequences (horizon H x action dim A, in the
 * normalised action space [-1, 1]): CEM (elite refitting) and MPPI (exponentially weighted
 * averaging). Both are anytime: they iterate until the iteration cap, the time budget or an
 * abort, always keeping the best sequence seen. Candidates mix the current Gaussian, the mean
 * itself, and proposals from an external source (the world model's policy query).
 */
import type { Rng } from '../util/rng.js';

export type OptimizerKind = 'cem' | 'mppi';

export interface OptimizerSettings {
  kind: OptimizerKind;
  horizon: number;
  actionDim: number;
  /** Candidates evaluated per iteration. */
  candidates: number;
  /** Upper bound on iterations (the time budget usually ends earlier). */
  iterations: number;
  /** CEM: elites refitted per iteration. */
  elites: number;
  /** MPPI: temperature of the cost weighting. */
  temperature: number;
  initStd: number;
  minStd: number;
  /** Fraction of candidates drawn from the proposal source (0 = none). */
  proposalFraction: number;
  /** How the shifted warm start is padded: repeat the last action or pad with zeros. */
  warmStartPad: 'repeat' | 'zero';
}

/** Costs of n candidates laid out n x H x A (row-major). */
export type SequenceCost = (candidates: Float32Array, n: number) => Promise<Float32Array>;
/** n proposals laid out n x H x A. */
export type ProposalSource = (n: number) => Promise<Float32Array>;

export interface OptimizeOptions {
  rng: Rng;
  /** The previous plan already shifted to start now (see shiftPlan). */
  warmStart?: Float32Array;
  proposals?: ProposalSource;
  /** Stop starting new iterations after this time (per `now`). */
  deadline?: number;
  now?: () => number;
  signal?: AbortSignal;
}

export interface OptimizeResult {
  best: Float32Array;
  bestCost: number;
  iterations: number;
  candidatesEvaluated: number;
  costHistory: number[];
}

const clip = (v: number) => (v < -1 ? -1 : v > 1 ? 1 : v);

/** Drops the `executed` first actions of a plan and pads at the end, for the next warm start. */
export function shiftPlan(plan: Float32Array, executed: number, horizon: number, actionDim: number, pad: 'repeat' | 'zero'): Float32Array {
  const out = new Float32Array(horizon * actionDim);
  const have = Math.max(0, Math.min(horizon, plan.length / actionDim - executed));
  out.set(plan.subarray(executed * actionDim, (executed + have) * actionDim));
  for (let t = have; t < horizon; t++) {
    if (pad === 'repeat' && have > 0) out.set(plan.subarray((executed + have - 1) * actionDim, (executed + have) * actionDim), t * actionDim);
  }
  return out;
}

export async function optimize(s: OptimizerSettings, cost: SequenceCost, o: OptimizeOptions): Promise<OptimizeResult> {
  const len = s.horizon * s.actionDim;
  const now = o.now ?? (() => performance.now());
  const mean = o.warmStart ? Float32Array.from(o.warmStart) : new Float32Array(len);
  const std = new Float32Array(len).fill(s.initStd);
  let best = Float32Array.from(mean);
  let bestCost = Infinity;
  let evaluated = 0;
  const history: number[] = [];
  let it = 0;
  for (; it < s.iterations; it++) {
    if (o.signal?.aborted) break;
    if (it > 0 && o.deadline !== undefined && now() >= o.deadline) break;
    const n = s.candidates;
    const cands = new Float32Array(n * len);
    // Slot 0: the current mean (so a good warm start is never lost); then proposals; then Gaussian samples.
    cands.set(mean.map(clip), 0);
    let filled = 1;
    const nProp = o.proposals ? Math.min(n - 1, Math.round(n * s.proposalFraction)) : 0;
    if (nProp > 0) {
      const p = await o.proposals!(nProp);
      cands.set(p.subarray(0, nProp * len).map(clip), filled * len);
      filled += nProp;
    }
    for (let i = filled; i < n; i++) for (let j = 0; j < len; j++) cands[i * len + j] = clip(mean[j]! + std[j]! * o.rng.normal());
    const costs = await cost(cands, n);
    evaluated += n;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => costs[a]! - costs[b]!);
    if (costs[order[0]!]! < bestCost) {
      bestCost = costs[order[0]!]!;
      best = cands.slice(order[0]! * len, (order[0]! + 1) * len);
    }
    history.push(bestCost);
    if (s.kind === 'cem') {
      const k = Math.max(1, Math.min(n, s.elites));
      for (let j = 0; j < len; j++) {
        let m = 0;
        for (let e = 0; e < k; e++) m += cands[order[e]! * len + j]!;
        m /= k;
        let v = 0;
        for (let e = 0; e < k; e++) v += (cands[order[e]! * len + j]! - m) ** 2;
        mean[j] = m;
        std[j] = Math.max(s.minStd, Math.sqrt(v / k));
      }
    } else {
      const minC = costs[order[0]!]!;
      const w = Array.from(costs, (c) => Math.exp(-(c - minC) / Math.max(1e-9, s.temperature)));
      const z = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j < len; j++) {
        let m = 0;
        for (let i = 0; i < n; i++) m += w[i]! * cands[i * len + j]!;
        mean[j] = m / z;
        let v = 0;
        for (let i = 0; i < n; i++) v += w[i]! * (cands[i * len + j]! - mean[j]!) ** 2;
        // Smoothed: the weighted spread of a sharp temperature collapses in one step otherwise.
        std[j] = Math.max(s.minStd, 0.5 * std[j]! + 0.5 * Math.sqrt(v / z));
      }
    }
  }
  return { best, bestCost, iterations: it, candidatesEvaluated: evaluated, costHistory: history };
}
