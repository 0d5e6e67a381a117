import { describe, expect, it } from 'vitest';
import { PLAIN_INTERVAL_MS, Progress, type ProgressStream } from '../../src/util/progress.js';

/** A stream that records what is written, with a clock the test moves. */
function fake(isTTY: boolean, columns?: number) {
  let text = '';
  let t = 1_000_000;
  const stream: ProgressStream = { isTTY, columns, write: (s: string) => (text += s) };
  return { stream, now: () => t, advance: (ms: number) => (t += ms), text: () => text };
}

describe('Progress', () => {
  it('on a stream that is not a terminal writes plain lines: no \\r or escape codes, at most one per interval plus the final line', () => {
    const f = fake(false);
    const bar = new Progress('job', 1000, { stream: f.stream, now: f.now });
    // 1000 updates 100 ms apart: 100 s of work.
    for (let i = 1; i <= 1000; i++) {
      f.advance(100);
      bar.update(i, `item ${i}`);
    }
    bar.finish('done');
    const out = f.text();
    expect(out).not.toContain('\r');
    expect(out).not.toContain('\x1b');
    const lines = out.split('\n').filter(Boolean);
    expect(lines.length).toBeLessThanOrEqual(100_000 / PLAIN_INTERVAL_MS + 1);
    expect(lines.length).toBeGreaterThanOrEqual(100_000 / PLAIN_INTERVAL_MS - 1);
    expect(out.endsWith('\n')).toBe(true);
    expect(lines.at(-1)).toMatch(/^job \[#{24}\] 1000\/1000 1m40s elapsed, ETA 0s \| done$/);
    // The final line is written once, although the last update already reached the total.
    expect(lines.filter((l) => l.includes('1000/1000'))).toHaveLength(1);
  });

  it('a short job off a terminal leaves one line, and finish is idempotent', () => {
    const f = fake(false);
    const bar = new Progress('eval', 3, { stream: f.stream, now: f.now });
    for (let i = 1; i <= 3; i++) {
      f.advance(200);
      bar.update(i);
    }
    bar.finish();
    bar.finish();
    bar.update(3, 'late');
    expect(f.text()).toBe('eval [########################] 3/3 1s elapsed, ETA 0s\n');
  });

  it('on a terminal redraws in place, cut to the terminal width, and ends with a newline', () => {
    const f = fake(true, 60);
    const bar = new Progress('finetune', 4, { stream: f.stream, now: f.now });
    for (let i = 1; i <= 4; i++) {
      f.advance(150);
      bar.update(i, `step ${i} loss 0.1234 and a long tail of numbers that would wrap`);
    }
    bar.finish('loss 0.1');
    const frames = f.text().split('\r').filter(Boolean);
    // Four updates and the final redraw.
    expect(frames).toHaveLength(5);
    for (const fr of frames) {
      expect(fr.startsWith('\x1b[2K')).toBe(true);
      expect(fr.replace('\x1b[2K', '').replace('\n', '').length).toBeLessThan(60);
    }
    expect(f.text().endsWith('\n')).toBe(true);
    expect(f.text().split('\n')).toHaveLength(2);
  });

  it('counts resumed work in the bar but not in the rate', () => {
    const f = fake(false);
    const bar = new Progress('finetune', 20, { stream: f.stream, now: f.now, initial: 10 });
    f.advance(PLAIN_INTERVAL_MS);
    // 5 of the remaining 10 steps in 5 s: 5 s to go.
    bar.update(15);
    expect(f.text()).toBe('finetune [##################......] 15/20 5s elapsed, ETA 5s\n');
  });

  it('keeps the minimum interval given by a caller', () => {
    const f = fake(true);
    const bar = new Progress('x', 100, { stream: f.stream, now: f.now, minIntervalMs: 1000 });
    for (let i = 1; i <= 50; i++) {
      f.advance(100);
      bar.update(i);
    }
    // First update at once, then one per second over 5 s.
    expect(f.text().split('\r').filter(Boolean)).toHaveLength(5);
  });
});
