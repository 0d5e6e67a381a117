/** Order statistics shared by reports, benchmarks and the service's latency summary. */

/** The p-th percentile (0-100) of an ascending list, nearest-rank; NaN for an empty list. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}
