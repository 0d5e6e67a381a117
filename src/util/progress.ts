/**
 * A one-line progress bar on stderr: redrawn in place on a TTY, printed every
 * few seconds otherwise (CI logs), never more often than `minIntervalMs`.
 */
export class Progress {
  private readonly start = Date.now();
  private lastDraw = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly minIntervalMs = 0,
  ) {}

  update(done: number, extra = '', force = false): void {
    const now = Date.now();
    const interval = this.tty ? Math.max(100, this.minIntervalMs) : Math.max(5000, this.minIntervalMs);
    if (!force && now - this.lastDraw < interval && done < this.total) return;
    this.lastDraw = now;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.start) / 1000;
    const eta = done > 0 ? (elapsed * (this.total - done)) / done : NaN;
    const line =
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total}` +
      ` ${formatDuration(elapsed)} elapsed, ETA ${Number.isFinite(eta) ? formatDuration(eta) : '?'}${extra ? ` | ${extra}` : ''}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  finish(extra = ''): void {
    this.update(this.total, extra, true);
    if (this.tty) process.stderr.write('\n');
  }
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
