/**
 * Data benchmark on the fixtures beside the repo: TFRecord records/s (with CRC and Example
 * decode), JPEG frames/s at 256x320 per available decoder, resize (+ decode) rates at the tiny
 * model's 32x40 and the base model's 128x160, and training windows/s, to compare with the
 * training step rate.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import type { BenchTable } from './table.js';
import { decodeImage, JPEG_DECODERS, jpegDecoderName, setJpegDecoder } from '../image/decode.js';
import { toModelFrame } from '../image/resize.js';
import { packageRoot } from '../util/package-root.js';
import { computeActionStats } from '../data/action-stats.js';
import { type ActionStats } from '../core/action-stats.js';
import { loadCard, type DatasetCard } from '../data/card.js';
import { readEpisodes } from '../data/rlds.js';
import { readTfRecords } from '../data/tfrecord.js';
import { decodeExample } from '../data/example.js';
import { prefetchedWindowStream, windowWorkerScript } from '../data/window-prefetch.js';
import { windowStream } from '../data/windows.js';

export async function benchData(opts: BenchOptions): Promise<BenchTable[]> {
  const rt1Dir = join(packageRoot(), '..', 'shared', 'fixtures', 'rt1-fractal-sample');
  if (!existsSync(rt1Dir))
    return [{ title: 'Data pipeline', columns: ['note'], rows: [['skipped: ../shared/fixtures/rt1-fractal-sample not found']] }];
  const card = loadCard('rt1');
  const shard = join(rt1Dir, 'fractal20220817_data-train.tfrecord-00000-of-00001');
  const reps = opts.quick ? 3 : 20;
  const table: BenchTable = { title: 'Data pipeline (RT-1 fixture: 256x320 JPEG frames)', columns: ['stage', 'rate', 'unit'], rows: [] };

  // Warm-up: the first decode loads the .proto and JIT-compiles the reader.
  for await (const rec of readTfRecords(shard)) decodeExample(rec.data);
  let t0 = performance.now();
  let records = 0;
  for (let r = 0; r < reps; r++)
    for await (const rec of readTfRecords(shard)) {
      decodeExample(rec.data);
      records++;
    }
  table.rows.push(['TFRecord read + CRC + tf.train.Example decode', records / ((performance.now() - t0) / 1000), 'records/s']);

  const images: Uint8Array[] = [];
  for await (const ep of readEpisodes(rt1Dir, card)) images.push(...(ep.fields.get(card.image)!.values as Uint8Array[]));
  const inUse = jpegDecoderName();
  // Every available decoder, so the choice in src/image/decode.ts stays backed by numbers.
  for (const dec of JPEG_DECODERS) {
    try {
      setJpegDecoder(dec);
    } catch (e) {
      table.rows.push([`JPEG decode at 256x320 (${dec})`, `not available: ${(e as Error).message}`, '']);
      continue;
    }
    decodeImage(images[0]!);
    t0 = performance.now();
    for (let r = 0; r < reps; r++) for (const im of images) decodeImage(im);
    table.rows.push([
      `JPEG decode at 256x320 (${dec}${dec === inUse ? ', in use' : ''})`,
      (reps * images.length) / ((performance.now() - t0) / 1000),
      'frames/s',
    ]);
  }
  setJpegDecoder(undefined);
  const decoded = images.map((im) => decodeImage(im));
  for (const [h, w] of [
    [32, 40],
    [128, 160],
  ] as const) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) for (const im of decoded) toModelFrame(im, h, w);
    table.rows.push([
      `area resize 256x320 -> ${h}x${w} + scale to [-1, 1]`,
      (reps * decoded.length) / ((performance.now() - t0) / 1000),
      'frames/s',
    ]);
    t0 = performance.now();
    for (let r = 0; r < reps; r++) for (const im of images) toModelFrame(decodeImage(im), h, w);
    table.rows.push([`decode + resize to ${h}x${w} (${inUse})`, (reps * images.length) / ((performance.now() - t0) / 1000), 'frames/s']);
  }

  const stats = await computeActionStats(card, readEpisodes(rt1Dir, card));
  for (const [h, w] of [
    [32, 40],
    [128, 160],
  ] as const) {
    const spec = { contextFrames: 2, futureFrames: 2, imageHeight: h, imageWidth: w };
    t0 = performance.now();
    let windows = 0;
    for await (const win of windowStream({
      dataDir: rt1Dir,
      card,
      spec,
      split: 'train',
      valFraction: 0,
      seed: 0,
      stats,
      shuffleBuffer: 8,
      epochs: reps,
    }))
      windows += win ? 1 : 0;
    table.rows.push([
      `training windows (2+2 frames at ${h}x${w}, read + decode included)`,
      windows / ((performance.now() - t0) / 1000),
      'windows/s',
    ]);
  }
  // Overlap with training: the consumer spends BUSY_MS of main-thread time per window, as a training step would.
  const BUSY_MS = 5;
  const spec = { contextFrames: 2, futureFrames: 2, imageHeight: 128, imageWidth: 160 };
  const streams = [
    ['main thread', windowStream],
    [
      windowWorkerScript() ? 'worker thread (prefetchedWindowStream)' : 'worker thread: not built (run npm run build)',
      prefetchedWindowStream,
    ],
  ] as const;
  for (const [where, stream] of streams) {
    t0 = performance.now();
    let windows = 0;
    for await (const win of stream({
      dataDir: rt1Dir,
      card,
      spec,
      split: 'train',
      valFraction: 0,
      seed: 0,
      stats,
      shuffleBuffer: 8,
      epochs: reps,
    })) {
      windows += win ? 1 : 0;
      const until = performance.now() + BUSY_MS;
      while (performance.now() < until);
    }
    table.rows.push([
      `windows at 128x160 with ${BUSY_MS} ms of training work per window, decoded on the ${where}`,
      windows / ((performance.now() - t0) / 1000),
      'windows/s',
    ]);
  }
  table.notes = [
    `With ${BUSY_MS} ms of work per window the consumer alone could take ${1000 / BUSY_MS} windows/s; the worker overlaps decoding with it (needs a free core).`,
    'Compare windows/s with the training samples/s of the model suite: the loader must stay ahead of training.',
  ];
  return [table, opts.quick ? undefined : await memoryTable(shard, card, stats)].filter((t): t is BenchTable => t !== undefined);
}

/**
 * Bounded memory, measured: stream every training window of a dataset made of copies of the
 * fixture shard (4, then 16 shards, each the shard repeated 20 times; 4 are read interleaved), and
 * report the process's peak resident set size: it must not grow with the dataset.
 */
async function memoryTable(shard: string, card: DatasetCard, stats: ActionStats): Promise<BenchTable> {
  const SHUFFLE = 256;
  const table: BenchTable = {
    title: `Data pipeline memory: streaming every training window once (2+2 frames at 64x80, shuffle buffer ${SHUFFLE})`,
    columns: ['dataset', 'episodes', 'on disk', 'windows', 'RSS before (MiB)', 'peak RSS (MiB)'],
    rows: [],
  };
  const bytes = readFileSync(shard);
  const repeated = Buffer.concat(Array.from({ length: 20 }, () => bytes));
  const spec = { contextFrames: 2, futureFrames: 2, imageHeight: 64, imageWidth: 80 };
  // Live memory, not garbage: collect before each sample (gc exposed at run time for this measurement).
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const used = () => {
    gc();
    return process.memoryUsage().rss;
  };
  for (const shards of [4, 16]) {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-bench-mem-'));
    try {
      for (let i = 0; i < shards; i++)
        writeFileSync(
          join(dir, `${card.dataset}-train.tfrecord-${String(i).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}`),
          repeated,
        );
      const before = used();
      let peak = before;
      let windows = 0;
      for await (const w of windowStream({
        dataDir: dir,
        card,
        spec,
        split: 'train',
        valFraction: 0,
        seed: 0,
        stats,
        shuffleBuffer: SHUFFLE,
        epochs: 1,
      })) {
        windows += w ? 1 : 0;
        if (windows % 32 === 0) peak = Math.max(peak, used());
      }
      table.rows.push([
        `${shards} shards`,
        shards * 60,
        `${((shards * repeated.length) / 2 ** 20).toFixed(0)} MiB`,
        windows,
        before / 2 ** 20,
        peak / 2 ** 20,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const full = (SHUFFLE * 4 * 64 * 80 * 3) / 2 ** 20;
  table.notes = [
    `RSS sampled after a forced GC every 32 windows, the larger dataset second. One episode per open shard is decoded at a time; the full shuffle buffer holds ${full.toFixed(1)} MiB of uint8 frames.`,
  ];
  return table;
}
