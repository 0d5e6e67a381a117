/**
 * Model-predictive path integral: the new mean is the average of all candidates weighted by
 * exp(-(cost - min cost) / temperature). Unlike CEM every candidate contributes, so one good
 * proposal pulls the mean without having to crowd an elite set. The temperature is in cost
 * units: small values approach "take the best", large ones the plain average.
 */
import { runAnytime, type AnytimeOptions, type AnytimeSettings, type OptimizeResult } from './anytime.js';
import type { SequenceGaussian } from './population.js';
import type { SequenceCost } from './sequence.js';

export interface MppiSettings {
  temperature: number;
  minStd: number;
}

/** Normalised importance weights of the candidates (non-finite costs get weight 0). */
export function mppiWeights(costs: Float32Array, n: number, temperature: number): Float64Array {
  let min = Infinity;
  for (let i = 0; i < n; i++) if (Number.isFinite(costs[i]!) && costs[i]! < min) min = costs[i]!;
  const w = new Float64Array(n);
  if (min === Infinity) return w;
  const t = Math.max(1e-12, temperature);
  let z = 0;
  for (let i = 0; i < n; i++) {
    const c = costs[i]!;
    w[i] = Number.isFinite(c) ? Math.exp(-(c - min) / t) : 0;
    z += w[i]!;
  }
  for (let i = 0; i < n; i++) w[i] = w[i]! / z;
  return w;
}

export function mppiUpdate(dist: SequenceGaussian, candidates: Float32Array, costs: Float32Array, n: number, s: MppiSettings): void {
  const len = dist.mean.length;
  const w = mppiWeights(costs, n, s.temperature);
  // Every cost non-finite: nothing to learn from this iteration; keep the distribution.
  if (!w.some((x) => x > 0)) return;
  for (let j = 0; j < len; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += w[i]! * candidates[i * len + j]!;
    let v = 0;
    for (let i = 0; i < n; i++) v += w[i]! * (candidates[i * len + j]! - m) ** 2;
    dist.mean[j] = m;
    // Smoothed: at a sharp temperature the weighted spread collapses to ~0 in one step, which would
    // end exploration after the first iteration.
    dist.std[j] = Math.max(s.minStd, 0.5 * dist.std[j]! + 0.5 * Math.sqrt(v));
  }
}

/** MPPI over action sequences, anytime (see runAnytime for budget, abort and warm start). */
export function optimizeMppi(s: AnytimeSettings & MppiSettings, cost: SequenceCost, o: AnytimeOptions): Promise<OptimizeResult> {
  if (!(s.temperature > 0)) throw new Error(`MPPI needs a temperature > 0, got ${s.temperature}`);
  return runAnytime(s, (dist, cands, costs, _order, n) => mppiUpdate(dist, cands, costs, n, s), cost, o);
}
