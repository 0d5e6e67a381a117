import { describe, expect, it } from 'vitest';
import { ActionStatsAccumulator, computeActionStats } from '../../src/data/action-stats.js';
import { denormaliseActions, normaliseActions } from '../../src/core/action-stats.js';
import { loadCard } from '../../src/data/card.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { isValEpisode, windowStream, type TrainingWindow } from '../../src/data/windows.js';
import { resizeRgb } from '../../src/image/resize.js';
import { sharedFixture } from '../helpers/fixtures.js';

const dir = () => sharedFixture('rlds-bridge-octo');
const spec = { contextFrames: 2, futureFrames: 3, imageHeight: 16, imageWidth: 16 };

async function take(it: AsyncIterable<TrainingWindow>, n: number): Promise<TrainingWindow[]> {
  const out: TrainingWindow[] = [];
  for await (const w of it) {
    out.push(w);
    if (out.length >= n) break;
  }
  return out;
}

describe('action statistics', () => {
  it('computes mean/std/min/max/quantiles and normalises q01/q99 to [-1, 1] with clipping', async () => {
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    expect(stats.count).toBe(250);
    expect(stats.names).toHaveLength(7);
    const acc = new ActionStatsAccumulator(['a']);
    for (let i = 0; i <= 100; i++) acc.add([i]);
    const s = acc.result();
    expect(s.mean[0]).toBeCloseTo(50, 10);
    expect(s.std[0]).toBeCloseTo(Math.sqrt(85850 / 100), 6); // sample std of 0..100
    expect([s.min[0], s.max[0], s.q01[0], s.q99[0]]).toEqual([0, 100, 1, 99]);
    expect(Array.from(normaliseActions(s, Float32Array.from([1, 50, 99, 500])))).toEqual([-1, 0, 1, 1]);
    expect(Array.from(denormaliseActions(s, Float32Array.from([-1, 0, 1])))).toEqual([1, 50, 99]);
  });
});

describe('training windows', () => {
  it('have the documented shapes and ranges, and the split is by episode', async () => {
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    const train = await take(
      windowStream({ dataDir: dir(), card, spec, split: 'train', valFraction: 0.3, seed: 1, stats, shuffleBuffer: 16, epochs: 1 }),
      1000,
    );
    const val = await take(windowStream({ dataDir: dir(), card, spec, split: 'val', valFraction: 0.3, seed: 1, stats }), 1000);
    expect(train.length).toBeGreaterThan(0);
    expect(val.length).toBeGreaterThan(0);
    const w = train[0]!;
    expect(w.frames.length).toBe(5 * 16 * 16 * 3);
    expect(w.actions.length).toBe(3 * 7);
    expect(w.language?.length).toBe(512);
    expect(w.frames.every((v) => v >= -1 && v <= 1)).toBe(true);
    expect(w.actions.every((v) => v >= -1 && v <= 1)).toBe(true);
    const trainEps = new Set(train.map((x) => x.episodeKey));
    const valEps = new Set(val.map((x) => x.episodeKey));
    expect([...trainEps].filter((k) => valEps.has(k))).toEqual([]);
    for (const k of valEps) expect(isValEpisode(k, 0.3)).toBe(true);
    // 10-step episodes give 6 windows of 5 frames each for training (stride 1) and 2 for validation (stride 5).
    expect(train.length).toBe(trainEps.size * 6);
    expect(val.length).toBe(valEps.size * 2);
  });

  it('are reproducible for a seed and shuffled differently for another', async () => {
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    const run = (seed: number) => take(windowStream({ dataDir: dir(), card, spec, split: 'train', seed, stats, shuffleBuffer: 32 }), 20);
    const a = (await run(5)).map((w) => `${w.episodeKey}@${w.start}`);
    const b = (await run(5)).map((w) => `${w.episodeKey}@${w.start}`);
    const c = (await run(6)).map((w) => `${w.episodeKey}@${w.start}`);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('area resize averages exactly', () => {
    const img = {
      width: 4,
      height: 2,
      data: Uint8Array.from([0, 0, 0, 10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40, 50, 50, 50, 60, 60, 60, 70, 70, 70]),
    };
    expect(Array.from(resizeRgb(img, 1, 2))).toEqual([25, 25, 25, 45, 45, 45]);
  });
});

describe('reading many shards', () => {
  it('interleaves episodes round-robin across shards, and reads them in order otherwise', async () => {
    const { mkdtempSync, copyFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-shards-'));
    const src = sharedFixture('rt1-fractal-sample/fractal20220817_data-train.tfrecord-00000-of-00001');
    for (const i of [0, 1]) copyFileSync(src, join(dir, `fractal20220817_data-train.tfrecord-0000${i}-of-00002`));
    const card = loadCard('rt1');
    const keys = async (interleave: number) => {
      const out: string[] = [];
      for await (const ep of readEpisodes(dir, card, { interleave })) out.push(ep.key.replace('fractal20220817_data-train.tfrecord-', ''));
      return out;
    };
    expect(await keys(1)).toEqual([
      '00000-of-00002#0',
      '00000-of-00002#1',
      '00000-of-00002#2',
      '00001-of-00002#0',
      '00001-of-00002#1',
      '00001-of-00002#2',
    ]);
    expect(await keys(2)).toEqual([
      '00000-of-00002#0',
      '00001-of-00002#0',
      '00000-of-00002#1',
      '00001-of-00002#1',
      '00000-of-00002#2',
      '00001-of-00002#2',
    ]);
  });
});

describe('an undecodable image inside a record with a valid CRC', () => {
  it('stops the window stream naming shard, record, byte offset, feature and step; --skip-corrupt skips and counts it', async () => {
    const { inspectDataset } = await import('../../src/data/inspect.js');
    const { dir, shard, offset, card, stream } = await shardWithImage(new TextEncoder().encode('GIF89a not a frame'));
    await expect(take(stream(false), 100)).rejects.toThrow(
      `${shard}: record 1 at byte ${offset}: feature 'steps/observation/image' step 2: not a JPEG or PNG image (starts with 47 49 46 38) (use --skip-corrupt to skip such records)`,
    );
    const skipped: string[] = [];
    const wins = await take(
      stream(true, (m) => skipped.push(m)),
      100,
    );
    expect(skipped).toHaveLength(1);
    expect(new Set(wins.map((w) => w.episodeKey))).toEqual(
      new Set(['fractal20220817_data-train.tfrecord-00000-of-00001#0', 'fractal20220817_data-train.tfrecord-00000-of-00001#2']),
    );
    await expect(inspectDataset(dir, card, false)).rejects.toThrow(
      /record 1 at byte \d+: feature 'steps\/observation\/image' step 2: not a JPEG or PNG/,
    );
    expect(await inspectDataset(dir, card, true)).toMatchObject({ episodes: 2, steps: 12, corrupt_skipped: 1 });
  });
});

describe('window contents', () => {
  it('frames are the resized, [-1, 1]-scaled images and action row j is the action at frame K-1+j', async () => {
    const { decodeImage } = await import('../../src/image/decode.js');
    const { toModelFrame } = await import('../../src/image/resize.js');
    const { rawActionAt } = await import('../../src/data/action-stats.js');
    const card = loadCard('rt1');
    const rt1 = sharedFixture('rt1-fractal-sample');
    const episodes = [];
    for await (const ep of readEpisodes(rt1, card)) episodes.push(ep);
    const stats = await computeActionStats(card, readEpisodes(rt1, card));
    const k = 2;
    const h = 2;
    const s = { contextFrames: k, futureFrames: h, imageHeight: 16, imageWidth: 20 };
    // val with valFraction 1: every episode, stride K+H, file order, no shuffle.
    const wins = await take(windowStream({ dataDir: rt1, card, spec: s, split: 'val', valFraction: 1, seed: 0, stats }), 100);
    expect(wins.map((w) => `${w.episodeKey.split('#')[1]}@${w.start}`)).toEqual(['0@0', '1@0', '2@0']);
    for (const w of wins) {
      const ep = episodes[Number(w.episodeKey.split('#')[1])]!;
      const imgs = ep.fields.get(card.image)!.values as Uint8Array[];
      const px = 16 * 20 * 3;
      for (let i = 0; i < k + h; i++) {
        const want = toModelFrame(decodeImage(imgs[w.start + i]!), 16, 20);
        const got = w.frames.subarray(i * px, (i + 1) * px);
        let err = 0;
        for (let p = 0; p < px; p++) err = Math.max(err, Math.abs(got[p]! - want[p]!));
        expect(err, `${w.episodeKey} frame ${i}`).toBeLessThanOrEqual(0.5 / 127.5 + 1e-6);
      }
      for (let j = 0; j < h; j++) {
        expect(Array.from(w.actions.subarray(j * 7, (j + 1) * 7))).toEqual(
          Array.from(normaliseActions(stats, rawActionAt(card, ep, w.start + k - 1 + j))),
        );
      }
      expect(w.instruction).toBe(ep.instruction);
      expect(Array.from(w.language!)).toEqual(
        Array.from((ep.fields.get('steps/observation/natural_language_embedding')!.values as Float32Array).subarray(0, 512)),
      );
    }
  });

  it('rejects a bad window spec by field', async () => {
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    await expect(
      take(windowStream({ dataDir: dir(), card, spec: { ...spec, futureFrames: 0 }, split: 'train', seed: 0, stats }), 1),
    ).rejects.toThrow('training windows: futureFrames must be an integer >= 1, got 0');
  });
});

describe('action statistics files', () => {
  it('load back what data stats writes, and name the file and field when malformed', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { loadActionStats, saveActionStats } = await import('../../src/data/action-stats.js');
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    const d = mkdtempSync(join(tmpdir(), 'sfwm-stats-'));
    saveActionStats(join(d, 's.json'), stats);
    expect(loadActionStats(join(d, 's.json'), card)).toEqual(stats);
    expect(() => loadActionStats(join(d, 's.json'), loadCard('rt1'))).toThrow(
      /s\.json: dimensions \[dx, .*\] differ from card 'rt1' action \[world_vector\.x/,
    );
    writeFileSync(join(d, 'bad.json'), JSON.stringify({ ...stats, q99: stats.q99.slice(1) }));
    expect(() => loadActionStats(join(d, 'bad.json'))).toThrow(/bad\.json: 'q99' must be 7 finite numbers \(one per name\)/);
    // A run directory gives its run.json's statistics (a new model keeping a model's action normalisation).
    const { readRunManifest } = await import('../../src/core/run-manifest.js');
    const { SHIPPED_MODEL } = await import('../../src/util/package-root.js');
    expect(loadActionStats(SHIPPED_MODEL, loadCard('rt1'))).toEqual(readRunManifest(SHIPPED_MODEL).actionStats);
    expect(() => loadActionStats(SHIPPED_MODEL, card)).toThrow(
      /run\.json actionStats: dimensions \[world_vector\.x, .*\] differ from card 'bridge'/,
    );
    expect(() => loadActionStats(d)).toThrow(new RegExp(`${join(d, 'run.json')}: cannot read action statistics`));
  });
});

describe('shuffle buffer size', () => {
  it('defaults to what fits in 256 MiB of uint8 frames, at most 2048 windows', async () => {
    const { defaultShuffleBuffer } = await import('../../src/data/windows.js');
    expect(defaultShuffleBuffer({ contextFrames: 2, futureFrames: 2, imageHeight: 32, imageWidth: 40 })).toBe(2048);
    expect(defaultShuffleBuffer({ contextFrames: 2, futureFrames: 2, imageHeight: 128, imageWidth: 160 })).toBe(1092);
  });

  it('a dataset smaller than the buffer starts yielding after one pass, every window once per pass', async () => {
    const card = loadCard('bridge');
    const stats = await computeActionStats(card, readEpisodes(dir(), card));
    const all = await take(
      windowStream({ dataDir: dir(), card, spec, split: 'train', valFraction: 0, seed: 2, stats, shuffleBuffer: 100_000, epochs: 1 }),
      10_000,
    );
    expect(all.length).toBe(25 * 6);
    expect(new Set(all.map((w) => `${w.episodeKey}@${w.start}`)).size).toBe(150);
    // Endless training with a huge buffer: output starts after one pass (filling 100,000 windows would take ~670 passes
    // and time out), drawn at random from a buffer holding the whole dataset.
    const first = await take(
      windowStream({ dataDir: dir(), card, spec, split: 'train', valFraction: 0, seed: 2, stats, shuffleBuffer: 100_000 }),
      150,
    );
    expect(first.length).toBe(150);
    expect(new Set(first.map((w) => w.episodeKey)).size).toBeGreaterThan(20);
  }, 30_000); // a guard, not a speed check: filling the buffer over ~670 passes took 55 s here, one pass takes ~0.1 s
});

describe('an image that declares more pixels than allowed inside a record', () => {
  it('stops the window stream with the --skip-corrupt hint; --skip-corrupt skips and counts it', async () => {
    const { pngHeader } = await import('../helpers/crafted.js');
    const { stream } = await shardWithImage(pngHeader(16000, 16000));
    await expect(take(stream(false), 100)).rejects.toThrow(
      /record 1 at byte \d+: feature 'steps\/observation\/image' step 2: image declares 16000x16000 pixels .* \(use --skip-corrupt to skip such records\)$/,
    );
    const skipped: string[] = [];
    const wins = await take(
      stream(true, (m) => skipped.push(m)),
      100,
    );
    expect(skipped).toHaveLength(1);
    expect(new Set(wins.map((w) => w.episodeKey)).size).toBe(2);
  });
});

/** The RT-1 sample shard in a temporary directory with step 2 of record 1's image replaced, and a val window stream over it. */
async function shardWithImage(image: Uint8Array) {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { readTfRecords, frameRecord } = await import('../../src/data/tfrecord.js');
  const { decodeExample, encodeExample } = await import('../../src/data/example.js');
  const records: Uint8Array[] = [];
  for await (const r of readTfRecords(sharedFixture('rt1-fractal-sample/fractal20220817_data-train.tfrecord-00000-of-00001')))
    records.push(r.data);
  const ex = decodeExample(records[1]!);
  (ex.get('steps/observation/image')!.value as Uint8Array[])[2] = image;
  records[1] = encodeExample(ex);
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-badimg-'));
  const shard = join(dir, 'fractal20220817_data-train.tfrecord-00000-of-00001');
  writeFileSync(shard, Buffer.concat(records.map(frameRecord)));
  const card = loadCard('rt1');
  const stats = await computeActionStats(card, readEpisodes(dir, card));
  const small = { contextFrames: 1, futureFrames: 1, imageHeight: 8, imageWidth: 10 };
  const stream = (skipCorrupt: boolean, onCorrupt?: (m: string) => void) =>
    windowStream({ dataDir: dir, card, spec: small, split: 'val', valFraction: 1, seed: 0, stats, skipCorrupt, onCorrupt });
  return { dir, shard, offset: 16 + records[0]!.length, card, stream };
}
