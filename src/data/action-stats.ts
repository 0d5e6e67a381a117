/**
 * Computes per-dimension action statistics from episodes, and reads and writes them. Quantiles
 * come from a seeded uniform reservoir sample of up to RESERVOIR values per dimension (exact
 * below that), so memory stays bounded on the full 111 GiB RT-1.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { Rng } from '../util/rng.js';
import { actionNames, type DatasetCard } from './card.js';
import { UserError } from '../core/errors.js';
import { validateActionStats, type ActionStats } from '../core/action-stats.js';
import { recordWhere, stepRow, type Episode } from './rlds.js';

export const RESERVOIR = 200_000;

/** The model's action vector of step t, in card order (raw units). */
export function rawActionAt(card: DatasetCard, ep: Episode, t: number): Float32Array {
  const out = new Float32Array(actionNames(card).length);
  let o = 0;
  for (const part of card.action) {
    const f = ep.fields.get(part.feature);
    if (!f) throw new UserError(`${recordWhere(ep)}: missing feature '${part.feature}' (an action part of card '${card.name}')`);
    const row = stepRow(f, t);
    out.set(row, o);
    o += row.length;
  }
  return out;
}

export class ActionStatsAccumulator {
  private n = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;
  private readonly min: Float64Array;
  private readonly max: Float64Array;
  private readonly samples: number[][];
  private readonly rng = new Rng(12345);

  constructor(readonly names: string[]) {
    const d = names.length;
    this.mean = new Float64Array(d);
    this.m2 = new Float64Array(d);
    this.min = new Float64Array(d).fill(Infinity);
    this.max = new Float64Array(d).fill(-Infinity);
    this.samples = names.map(() => []);
  }

  add(v: ArrayLike<number>): void {
    this.n++;
    const slot = this.n <= RESERVOIR ? this.n - 1 : this.rng.int(this.n);
    for (let i = 0; i < this.names.length; i++) {
      const x = v[i]!;
      const delta = x - this.mean[i]!;
      this.mean[i]! += delta / this.n;
      this.m2[i]! += delta * (x - this.mean[i]!);
      if (x < this.min[i]!) this.min[i] = x;
      if (x > this.max[i]!) this.max[i] = x;
      if (slot < RESERVOIR) this.samples[i]![slot] = x;
    }
  }

  result(): ActionStats {
    const q = (i: number, p: number) => {
      const s = [...this.samples[i]!].sort((a, b) => a - b);
      if (!s.length) return NaN;
      const pos = p * (s.length - 1);
      const lo = Math.floor(pos);
      return s[lo]! + (s[Math.min(s.length - 1, lo + 1)]! - s[lo]!) * (pos - lo);
    };
    const idx = this.names.map((_, i) => i);
    return {
      names: this.names,
      count: this.n,
      mean: idx.map((i) => this.mean[i]!),
      std: idx.map((i) => (this.n > 1 ? Math.sqrt(this.m2[i]! / (this.n - 1)) : 0)),
      min: idx.map((i) => this.min[i]!),
      max: idx.map((i) => this.max[i]!),
      q01: idx.map((i) => q(i, 0.01)),
      q99: idx.map((i) => q(i, 0.99)),
    };
  }
}

export async function computeActionStats(card: DatasetCard, episodes: AsyncIterable<Episode>): Promise<ActionStats> {
  const acc = new ActionStatsAccumulator(actionNames(card));
  for await (const ep of episodes) for (let t = 0; t < ep.steps; t++) acc.add(rawActionAt(card, ep, t));
  return acc.result();
}

/**
 * Reads `data stats --out` output, or a run directory's statistics (its run.json's `actionStats`: a new model that
 * keeps an existing model's action normalisation, so that a policy trained for one acts for the other); optionally
 * checked against the card's action vector.
 */
export function loadActionStats(path: string, card?: DatasetCard): ActionStats {
  const dir = existsSync(path) && statSync(path).isDirectory();
  const file = dir ? join(path, 'run.json') : path;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: cannot read action statistics (${(e as Error).message})`);
  }
  const stats = dir ? (raw as { actionStats?: unknown })?.actionStats : raw;
  if (dir && stats === undefined) throw new UserError(`${file}: no 'actionStats' (is ${path} a run directory?)`);
  return validateActionStats(
    stats,
    dir ? `${file} actionStats` : file,
    card && { names: actionNames(card), what: `card '${card.name}' action` },
  );
}

/** Writes statistics atomically (temp file + rename). */
export function saveActionStats(path: string, stats: ActionStats): void {
  writeJsonAtomic(path, stats);
}
