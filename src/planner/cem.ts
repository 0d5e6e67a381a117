/**
 * Cross-entropy method: refit the sampling Gaussian to the k lowest-cost candidates of each
 * iteration. Robust to the cost's scale (only the ranking matters), which suits world-model
 * costs whose magnitude changes from scene to scene.
 */
import { runAnytime, type AnytimeOptions, type AnytimeSettings, type OptimizeResult } from './anytime.js';
import type { SequenceGaussian } from './population.js';
import type { SequenceCost } from './sequence.js';

export interface CemSettings {
  /** Candidates refitted per iteration (clamped to the population). */
  elites: number;
  /** Floor of the per-dimension standard deviation, so the search never freezes completely. */
  minStd: number;
}

export function cemUpdate(dist: SequenceGaussian, candidates: Float32Array, order: Int32Array, n: number, s: CemSettings): void {
  const len = dist.mean.length;
  const k = Math.max(1, Math.min(n, Math.floor(s.elites)));
  for (let j = 0; j < len; j++) {
    let m = 0;
    for (let e = 0; e < k; e++) m += candidates[order[e]! * len + j]!;
    m /= k;
    let v = 0;
    for (let e = 0; e < k; e++) v += (candidates[order[e]! * len + j]! - m) ** 2;
    dist.mean[j] = m;
    dist.std[j] = Math.max(s.minStd, Math.sqrt(v / k));
  }
}

/** CEM over action sequences, anytime (see runAnytime for budget, abort and warm start). */
export function optimizeCem(s: AnytimeSettings & CemSettings, cost: SequenceCost, o: AnytimeOptions): Promise<OptimizeResult> {
  if (!Number.isInteger(s.elites) || s.elites < 1) throw new Error(`CEM needs elites >= 1, got ${s.elites}`);
  return runAnytime(s, (dist, cands, _costs, order, n) => cemUpdate(dist, cands, order, n, s), cost, o);
}
