/**
 * A one-line progress bar on stderr. On a terminal it is redrawn in place (at most every 100 ms,
 * cut to the terminal's width so it never wraps). Anywhere else (CI logs, a file, a pipe) it
 * writes plain lines with no carriage returns or escape codes: one line at most every
 * `PLAIN_INTERVAL_MS` while work goes on, and the final line once, so a short job leaves one line
 * and a long one a bounded number.
 */

/** What the bar writes to: process.stderr, or a stand-in (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Minimum time between two drawn updates (raises the defaults below). */
  minIntervalMs?: number;
  /** Work already done when the bar starts (a resumed run): counted in the bar, not in the rate or ETA. */
  initial?: number;
  stream?: ProgressStream;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

const TTY_INTERVAL_MS = 100;
export const PLAIN_INTERVAL_MS = 5000;

export class Progress {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly tty: boolean;
  private readonly interval: number;
  private readonly initial: number;
  private readonly start: number;
  /** When the last line was drawn; a plain stream counts its first interval from the start. */
  private lastDraw: number;
  private finished = false;

  constructor(
    private readonly label: string,
    private readonly total: number,
    options: number | ProgressOptions = {},
  ) {
    const o = typeof options === 'number' ? { minIntervalMs: options } : options;
    this.stream = o.stream ?? process.stderr;
    this.now = o.now ?? Date.now;
    this.tty = Boolean(this.stream.isTTY);
    this.interval = Math.max(this.tty ? TTY_INTERVAL_MS : PLAIN_INTERVAL_MS, o.minIntervalMs ?? 0);
    this.initial = o.initial ?? 0;
    this.start = this.now();
    this.lastDraw = this.tty ? -Infinity : this.start;
  }

  update(done: number, extra = '', force = false): void {
    if (this.finished) return;
    const now = this.now();
    // A terminal shows the bar full as soon as it is; a log gets its full line once, from finish().
    const due =
      force ||
      (this.tty ? done >= this.total || now - this.lastDraw >= this.interval : done < this.total && now - this.lastDraw >= this.interval);
    if (!due) return;
    this.lastDraw = now;
    this.draw(done, extra, now);
  }

  finish(extra = ''): void {
    if (this.finished) return;
    this.draw(this.total, extra, this.now());
    if (this.tty) this.stream.write('\n');
    this.finished = true;
  }

  private draw(done: number, extra: string, now: number): void {
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.start) / 1000;
    const progressed = done - this.initial;
    const eta = progressed > 0 ? (elapsed * (this.total - done)) / progressed : NaN;
    const line =
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total}` +
      ` ${formatDuration(elapsed)} elapsed, ETA ${Number.isFinite(eta) ? formatDuration(Math.max(0, eta)) : '?'}${extra ? ` | ${extra}` : ''}`;
    if (this.tty) {
      // A line longer than the terminal would wrap, and \r returns only to the start of its last row.
      const cols = this.stream.columns;
      this.stream.write(`\r\x1b[2K${cols && cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line}`);
    } else this.stream.write(`${line}\n`);
  }
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
