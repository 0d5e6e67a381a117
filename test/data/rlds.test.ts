import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCard } from '../../src/data/card.js';
import { frameRecord, readTfRecords } from '../../src/data/tfrecord.js';
import { decodeExample, encodeExample } from '../../src/data/example.js';
import { inspectDataset } from '../../src/data/inspect.js';
import { readEpisodes, type Episode } from '../../src/data/rlds.js';
import { RldsWriter, type EpisodeRecord } from '../../src/data/rlds-writer.js';
import { decodeImage } from '../../src/image/decode.js';
import { sharedFixture } from '../helpers/fixtures.js';

const RT1_DIR = () => sharedFixture('rt1-fractal-sample');
const RT1_SHARD = () => sharedFixture('rt1-fractal-sample/fractal20220817_data-train.tfrecord-00000-of-00001');
const BRIDGE_DIR = () => sharedFixture('rlds-bridge-octo');

interface Expected {
  episodes: { index: number; steps: number; instruction: string; sums: Record<string, number>; image_mean_per_step: number[] }[];
  total_steps: number;
}

async function collect(dir: string, card = loadCard('rt1'), skipCorrupt = false, onCorrupt?: (m: string) => void): Promise<Episode[]> {
  const out: Episode[] = [];
  for await (const ep of readEpisodes(dir, card, { skipCorrupt, onCorrupt })) out.push(ep);
  return out;
}

/** A copy of the rt1 fixture shard with `mutate` applied to its bytes, in a fresh directory. */
function corruptCopy(mutate: (b: Uint8Array) => Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-data-'));
  writeFileSync(join(dir, 'fractal20220817_data-train.tfrecord-00000-of-00001'), mutate(new Uint8Array(readFileSync(RT1_SHARD()))));
  return dir;
}

describe('RT-1 fixture (fractal20220817_data layout)', () => {
  it('matches expected-summary.json: steps, instructions, per-field sums and per-image mean pixels', async () => {
    const expected = JSON.parse(readFileSync(sharedFixture('rt1-fractal-sample/expected-summary.json'), 'utf8')) as Expected;
    const eps = await collect(RT1_DIR());
    expect(eps.length).toBe(expected.episodes.length);
    expect(eps.reduce((n, e) => n + e.steps, 0)).toBe(expected.total_steps);
    for (const [i, e] of expected.episodes.entries()) {
      const ep = eps[i]!;
      expect(ep.steps).toBe(e.steps);
      expect(ep.instruction).toBe(e.instruction);
      for (const [name, sum] of Object.entries(e.sums)) {
        const values = ep.fields.get(name)!.values as Float32Array | Int32Array;
        let got = 0;
        for (const v of values) got += v;
        expect(Math.abs(got - sum), `${name} sum`).toBeLessThan(1e-4 * Math.max(1, values.length));
      }
      const imgs = ep.fields.get('steps/observation/image')!.values as Uint8Array[];
      imgs.forEach((bytes, t) => {
        const img = decodeImage(bytes);
        expect([img.height, img.width]).toEqual([256, 320]);
        const mean = img.data.reduce((a, b) => a + b, 0) / img.data.length;
        expect(Math.abs(mean - e.image_mean_per_step[t]!), `episode ${i} step ${t} mean pixel`).toBeLessThan(1);
      });
    }
  });

  it('inspect --json reports shards, episodes, steps, features and instructions', async () => {
    const r = await inspectDataset(RT1_DIR(), loadCard('rt1'), false);
    expect(r).toMatchObject({ shards: 1, episodes: 3, steps: 17, corrupt_skipped: 0 });
    expect(r.features['steps/action/world_vector']).toMatchObject({ dtype: 'float32', shape: [3] });
    expect(r.instructions).toEqual({ 'pick coke can': 1, 'move near': 1, 'open top drawer': 1 });
    expect(r.image.codecs).toEqual({ jpeg: 9 });
  });
});

describe('BridgeData V2 fixture (real TFDS output)', () => {
  it('reads all 25 episodes with the bridge card and agrees with its features.json', async () => {
    const r = await inspectDataset(BRIDGE_DIR(), loadCard('bridge'), false);
    expect(r).toMatchObject({ shards: 1, episodes: 25, steps: 250, corrupt_skipped: 0 });
    expect(r.features_json).toEqual({ present: true, problems: [] });
    expect(r.image.sizes).toEqual({ '64x64': 75 });
    // The camera's shape is reported as decoded, not the card's nominal 256x256.
    expect(r.features['steps/observation/image_0']!.shape).toEqual([64, 64, 3]);
    expect(loadCard('bridge').features['steps/observation/image_0']!.shape).toEqual([256, 256, 3]);
  });

  it('rejects a card that disagrees with features.json, naming the feature', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-card-'));
    const card = JSON.parse(readFileSync(new URL('../../datasets/bridge.json', import.meta.url), 'utf8'));
    card.features['steps/action'].shape = [6];
    card.action[0].names = card.action[0].names.slice(0, 6);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(card));
    const r = await inspectDataset(BRIDGE_DIR(), loadCard(join(dir, 'bad.json')), true);
    expect(r.features_json.problems.join('\n')).toMatch(/feature 'steps\/action' has shape \[7\], card 'bridge' says \[6\]/);
    expect(r.corrupt_skipped).toBe(25);
  });
});

describe('corrupt input', () => {
  it('a data CRC mismatch names shard, record and byte offset; --skip-corrupt skips and counts it', async () => {
    // Flip one byte inside record 1's data (record 0 spans its 12-byte header + data + 4-byte CRC).
    let firstLen = 0;
    const dir = corruptCopy((b) => {
      firstLen = Number(new DataView(b.buffer).getBigUint64(0, true));
      const off = 16 + firstLen + 12 + 100;
      b[off] = b[off]! ^ 0xff;
      return b;
    });
    const err = await collect(dir).catch((e: Error) => e);
    expect((err as Error).message).toMatch(new RegExp(`tfrecord-00000-of-00001: record 1 at byte ${16 + firstLen}: data CRC mismatch`));
    const messages: string[] = [];
    const eps = await collect(dir, loadCard('rt1'), true, (m) => messages.push(m));
    expect(eps.map((e) => e.index)).toEqual([0, 2]);
    expect(messages).toHaveLength(1);
  });

  it('a truncated shard stops with the record and the missing byte count', async () => {
    const dir = corruptCopy((b) => b.subarray(0, b.length - 50));
    await expect(collect(dir)).rejects.toThrow(/record 2 at byte \d+: truncated record: expected \d+ data bytes \+ 4 CRC bytes, found \d+/);
    const messages: string[] = [];
    expect((await collect(dir, loadCard('rt1'), true, (m) => messages.push(m))).length).toBe(2);
    expect(messages[0]).toMatch(/rest of shard skipped/);
  });

  it('a misshapen or missing feature names the feature and the expected element count', async () => {
    const records: Uint8Array[] = [];
    for await (const r of readTfRecords(RT1_SHARD())) records.push(r.data);
    const ex = decodeExample(records[0]!);
    const wv = ex.get('steps/action/world_vector')!;
    ex.set('steps/action/world_vector', { kind: 'float', value: (wv.value as Float32Array).slice(0, 14) });
    const ex2 = decodeExample(records[1]!);
    ex2.delete('steps/reward');
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-shape-'));
    const frames = [encodeExample(ex), encodeExample(ex2)].map(frameRecord);
    writeFileSync(join(dir, 'x.tfrecord-00000-of-00001'), Buffer.concat(frames));
    await expect(collect(dir)).rejects.toThrow(
      /record 0 at byte 0: feature 'steps\/action\/world_vector' has 14 elements, not a multiple of the per-step size 3/,
    );
    const messages: string[] = [];
    await collect(dir, loadCard('rt1'), true, (m) => messages.push(m));
    expect(messages[1]).toMatch(/record 1 at byte \d+: missing feature 'steps\/reward'/);
  });
});

describe('RLDS writer', () => {
  it('round-trips: episodes written with the rt1 card read back equal, with features.json and dataset_info.json', async () => {
    const source = await collect(RT1_DIR());
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-write-'));
    const card = loadCard('rt1');
    const w = new RldsWriter(dir, card, { episodesPerShard: 2 });
    for (const ep of source) {
      const steps: EpisodeRecord['steps'] = Array.from({ length: ep.steps }, () => ({}));
      const metadata: EpisodeRecord['metadata'] = {};
      for (const [name, f] of ep.fields) {
        if (f.spec.per === 'episode') {
          metadata[name] = (f.values as Int32Array)[0]!;
          continue;
        }
        const size = f.spec.dtype === 'image' || f.spec.dtype === 'string' ? 1 : f.spec.shape.reduce((a, b) => a * b, 1);
        for (let t = 0; t < ep.steps; t++) {
          const v = Array.isArray(f.values) ? f.values[t]! : Array.from((f.values as Float32Array).subarray(t * size, (t + 1) * size));
          steps[t]![name.replace(/^steps\//, '')] = v;
        }
      }
      await w.add({ steps, metadata });
    }
    const res = await w.close();
    expect(res).toMatchObject({ episodes: 3, steps: 17 });
    expect(res.shards.map((s) => s.split('/').pop())).toEqual([
      'fractal20220817_data-train.tfrecord-00000-of-00002',
      'fractal20220817_data-train.tfrecord-00001-of-00002',
    ]);
    const back = await collect(dir);
    expect(back.length).toBe(3);
    back.forEach((ep, i) => {
      for (const [name, f] of source[i]!.fields) expect(ep.fields.get(name)!.values, name).toEqual(f.values);
    });
    const r = await inspectDataset(dir, card, false);
    expect(r.features_json).toEqual({ present: true, problems: [] });
    const info = JSON.parse(readFileSync(join(dir, 'dataset_info.json'), 'utf8'));
    expect(info.splits[0].shardLengths).toEqual(['2', '1']);
  });

  it('rejects a step whose feature has the wrong size, naming episode, step and feature', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-write-'));
    const w = new RldsWriter(dir, loadCard('bridge'));
    await expect(w.add({ steps: [{ action: [1, 2, 3] }] })).rejects.toThrow(
      /episode 0: feature 'steps\/observation\/image_0' is missing in 1 of 1 steps|'steps\/action' has 3 values/,
    );
  });
});
