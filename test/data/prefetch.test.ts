import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeActionStats } from '../../src/data/action-stats.js';
import { loadCard } from '../../src/data/card.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { prefetchedWindowStream, windowWorkerScript } from '../../src/data/window-prefetch.js';
import { windowStream, type TrainingWindow } from '../../src/data/windows.js';
import { sharedFixture } from '../helpers/fixtures.js';

async function take(it: AsyncIterable<TrainingWindow>, n: number): Promise<TrainingWindow[]> {
  const out: TrainingWindow[] = [];
  for await (const w of it) {
    out.push(w);
    if (out.length >= n) break;
  }
  return out;
}

const spec = { contextFrames: 2, futureFrames: 2, imageHeight: 16, imageWidth: 16 };

// The worker runs compiled code: dist/ must be built (`npm ci` and `npm run build` do it).
describe.skipIf(!windowWorkerScript())('windows prefetched in a worker thread', () => {
  it('are the same windows in the same order as on the main thread', async () => {
    const card = loadCard('bridge');
    const dir = sharedFixture('rlds-bridge-octo');
    const stats = await computeActionStats(card, readEpisodes(dir, card));
    const o = { dataDir: dir, card, spec, split: 'train' as const, valFraction: 0.2, seed: 9, stats, shuffleBuffer: 24, epochs: 1 };
    const a = await take(windowStream(o), 10_000);
    const b = await take(prefetchedWindowStream(o, { prefetch: 4 }), 10_000);
    expect(b.length).toBe(a.length);
    b.forEach((w, i) => {
      expect(`${w.episodeKey}@${w.start}`).toBe(`${a[i]!.episodeKey}@${a[i]!.start}`);
      expect(w.frames).toEqual(a[i]!.frames);
      expect(w.actions).toEqual(a[i]!.actions);
      expect(w.language).toEqual(a[i]!.language);
      expect(w.instruction).toBe(a[i]!.instruction);
    });
  });

  it('stop the worker when the consumer stops early, and pass errors and skipped records through', async () => {
    const card = loadCard('rt1');
    const rt1 = sharedFixture('rt1-fractal-sample');
    const stats = await computeActionStats(card, readEpisodes(rt1, card));
    expect(
      await take(prefetchedWindowStream({ dataDir: rt1, card, spec, split: 'train', valFraction: 0, seed: 1, stats, shuffleBuffer: 4 }), 3),
    ).toHaveLength(3);

    const b = new Uint8Array(readFileSync(join(rt1, 'fractal20220817_data-train.tfrecord-00000-of-00001')));
    const offset = 16 + Number(new DataView(b.buffer).getBigUint64(0, true));
    b[offset + 12 + 900]! ^= 0x0f;
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-prefetch-'));
    writeFileSync(join(dir, 'fractal20220817_data-train.tfrecord-00000-of-00001'), b);
    const o = { dataDir: dir, card, spec, split: 'val' as const, valFraction: 1, seed: 0, stats };
    await expect(take(prefetchedWindowStream(o), 100)).rejects.toThrow(
      `record 1 at byte ${offset}: data CRC mismatch (use --skip-corrupt to skip such records)`,
    );
    const skipped: string[] = [];
    const wins = await take(prefetchedWindowStream({ ...o, skipCorrupt: true, onCorrupt: (m) => skipped.push(m) }), 100);
    expect(skipped).toEqual([expect.stringContaining(`record 1 at byte ${offset}: data CRC mismatch`)]);
    expect(new Set(wins.map((w) => w.episodeKey.split('#')[1]))).toEqual(new Set(['0', '2']));
  });
});
