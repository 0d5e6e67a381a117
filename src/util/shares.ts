/** Splitting a batch over threads. */

/** Contiguous shares of a batch of n over `parts` threads (at most n), sizes differing by at most one, the larger first. */
export function splitShares(n: number, parts: number): { offset: number; count: number }[] {
  const k = Math.max(1, Math.min(parts, n));
  const base = Math.floor(n / k);
  const extra = n % k;
  const out: { offset: number; count: number }[] = [];
  let offset = 0;
  for (let i = 0; i < k; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ offset, count });
    offset += count;
  }
  return out;
}
