/**
 * Per-dimension action statistics (mean, std, min, max, q01, q99) and the normalisation that
 * training and planning share: q01/q99 map to -1/+1, clipped.
 */
import { UserError } from './errors.js';

export interface ActionStats {
  names: string[];
  count: number;
  mean: number[];
  std: number[];
  min: number[];
  max: number[];
  q01: number[];
  q99: number[];
}

/** q01 -> -1, q99 -> +1, clipped to [-1, 1]; a constant dimension maps to 0. */
export function normaliseActions(stats: ActionStats, raw: Float32Array): Float32Array {
  const d = stats.names.length;
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const k = i % d;
    const lo = stats.q01[k]!;
    const hi = stats.q99[k]!;
    out[i] = hi > lo ? Math.max(-1, Math.min(1, (2 * (raw[i]! - lo)) / (hi - lo) - 1)) : 0;
  }
  return out;
}

export function denormaliseActions(stats: ActionStats, norm: Float32Array): Float32Array {
  const d = stats.names.length;
  const out = new Float32Array(norm.length);
  for (let i = 0; i < norm.length; i++) {
    const k = i % d;
    const lo = stats.q01[k]!;
    const hi = stats.q99[k]!;
    out[i] = hi > lo ? lo + ((Math.max(-1, Math.min(1, norm[i]!)) + 1) / 2) * (hi - lo) : lo;
  }
  return out;
}

/** Checks a parsed statistics object field by field; `source` names the file in errors, `expected` the dimensions it must have. */
export function validateActionStats(v: unknown, source: string, expected?: { names: string[]; what: string }): ActionStats {
  const s = v as Partial<ActionStats> | null;
  if (!s || typeof s !== 'object') throw new UserError(`${source}: action statistics must be a JSON object`);
  if (!Array.isArray(s.names) || !s.names.length || !s.names.every((n) => typeof n === 'string'))
    throw new UserError(`${source}: 'names' must be a non-empty list of dimension names`);
  const d = s.names.length;
  for (const key of ['mean', 'std', 'min', 'max', 'q01', 'q99'] as const) {
    const a = s[key];
    if (!Array.isArray(a) || a.length !== d || !a.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new UserError(`${source}: '${key}' must be ${d} finite numbers (one per name)`);
  }
  if (expected && expected.names.join(',') !== s.names.join(','))
    throw new UserError(`${source}: dimensions [${s.names.join(', ')}] differ from ${expected.what} [${expected.names.join(', ')}]`);
  return { ...(s as ActionStats), count: typeof s.count === 'number' ? s.count : 0 };
}
