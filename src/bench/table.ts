/** Benchmark results as Markdown tables, so the output pastes straight into docs/benchmarks.md. */
export interface BenchTable {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  notes?: string[];
}

export function formatCell(v: string | number): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function renderTable(t: BenchTable): string {
  const head = `| ${t.columns.join(' | ')} |`;
  const sep = `| ${t.columns.map(() => '---').join(' | ')} |`;
  const body = t.rows.map((r) => `| ${r.map(formatCell).join(' | ')} |`);
  const notes = (t.notes ?? []).map((n) => `\n_${n}_`);
  return [`### ${t.title}`, '', head, sep, ...body, ...notes].join('\n');
}

/** Median of repeated timings in milliseconds; `fn` runs `warmup` extra times first. */
export async function timeMs(fn: () => unknown, reps: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
