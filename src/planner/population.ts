/**
 * One iteration's candidates for the sampling optimisers: slot 0 is the current mean (so a good
 * warm start or a converged mean is always re-scored, never lost to sampling noise), then
 * proposals from an external source (the world model's policy query), then Gaussian samples
 * around the mean. Everything is clipped to the [-1, 1] box.
 */
import type { Rng } from '../util/rng.js';
import { checkBatch, clipUnit, type ProposalSource } from './sequence.js';

/** A diagonal Gaussian over flattened sequences (H x A values). */
export interface SequenceGaussian {
  mean: Float32Array;
  std: Float32Array;
}

export interface Population {
  candidates: Float32Array;
  n: number;
  /** How many of the candidates (after the mean) came from the proposal source. */
  proposals: number;
  /** Milliseconds spent waiting for the proposal source. */
  proposalMs: number;
}

/** Proposals requested for a population of n (at least one slot is always left for the mean). */
export function proposalCount(n: number, fraction: number, hasSource: boolean): number {
  if (!hasSource || fraction <= 0) return 0;
  return Math.max(0, Math.min(n - 1, Math.round(n * fraction)));
}

export async function samplePopulation(
  dist: SequenceGaussian,
  n: number,
  rng: Rng,
  proposals: { source?: ProposalSource; fraction: number },
  now: () => number,
): Promise<Population> {
  const len = dist.mean.length;
  const candidates = new Float32Array(n * len);
  for (let j = 0; j < len; j++) candidates[j] = clipUnit(dist.mean[j]!);
  let filled = 1;
  const want = proposalCount(n, proposals.fraction, proposals.source !== undefined);
  let proposalMs = 0;
  if (want > 0) {
    const t0 = now();
    const p = await proposals.source!(want);
    proposalMs = now() - t0;
    checkBatch('the proposal source', p, want * len);
    for (let i = 0; i < want * len; i++) {
      const v = p[i]!;
      // A NaN proposal would poison the elite statistics; it is a bug in the source, not noise.
      if (!Number.isFinite(v))
        throw new Error(`the proposal source returned a non-finite value at candidate ${Math.floor(i / len)}, index ${i % len}`);
      candidates[filled * len + i] = clipUnit(v);
    }
    filled += want;
  }
  for (let i = filled; i < n; i++) {
    const o = i * len;
    for (let j = 0; j < len; j++) candidates[o + j] = clipUnit(dist.mean[j]! + dist.std[j]! * rng.normal());
  }
  return { candidates, n, proposals: want, proposalMs };
}

/** Candidate indices sorted by cost, best first; NaN costs sort last (a broken score never wins). */
export function rankByCost(costs: Float32Array, n: number): Int32Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(costs[i]!) ? Infinity : costs[i]!);
  // Ties keep index order, so the mean (slot 0) wins a tie and runs are deterministic.
  return order.sort((a, b) => key(a) - key(b) || a - b);
}
