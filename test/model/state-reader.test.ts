/**
 * The state reader learns where the gripper is and whether it is closed from pictures alone:
 * checked on synthetic pictures whose only cue is a square's place and colour, on a file round
 * trip, on bad files, and end to end from simulator episodes through `model train-reader`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCard } from '../../src/data/card.js';
import { UserError } from '../../src/core/errors.js';
import { loadStateReader, readStateReaderFile, STATE_READER_FILE, writeStateReader } from '../../src/model/state-reader.js';
import { collect } from '../../src/sim/collect.js';
import { readerSamples, trainStateReader, type ReaderSamples } from '../../src/train/state-reader-training.js';
import { serializeSafetensors } from '../../src/checkpoint/safetensors.js';
import { Rng } from '../../src/util/rng.js';
import { runCli } from '../helpers/cli.js';
import { useTestBackend } from '../helpers/tf.js';

const [H, W] = [32, 40];

/** Pictures of a 4x4 square: x sets its row, y its column, z nothing; red when open, green when closed. */
function squares(n: number, seed: number): ReaderSamples {
  const rng = new Rng(seed);
  const pixels: Uint8Array[] = [];
  const positions = new Float32Array(n * 3);
  const closedness = new Float32Array(n);
  const val: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const x = rng.uniform(0, 1);
    const y = rng.uniform(0, 1);
    const closed = rng.uniform(0, 1) < 0.5;
    const px = new Uint8Array(H * W * 3).fill(40);
    const r0 = Math.round(x * (H - 4));
    const c0 = Math.round(y * (W - 4));
    for (let r = r0; r < r0 + 4; r++) for (let c = c0; c < c0 + 4; c++) px.set(closed ? [30, 220, 30] : [220, 30, 30], (r * W + c) * 3);
    pixels.push(px);
    positions.set([x, y, 0.5], i * 3);
    closedness[i] = closed ? 0.6 : 0;
    val.push(i % 5 === 0);
  }
  return { height: H, width: W, pixels, positions, closedness, val };
}

describe('the state reader', () => {
  beforeAll(useTestBackend);

  it('learns a position and a gripper state that only the picture shows', async () => {
    const s = squares(600, 1);
    const r = await trainStateReader(s, { steps: 250, batchSize: 32, lr: 3e-3, seed: 0, fullOpening: 0.1 });
    // The positions are spread uniformly over [0, 1] (mean error of a constant guess: 0.25); a square moves 1/28 per pixel row.
    expect(r.errors.position[0]).toBeLessThan(0.06);
    expect(r.errors.position[1]).toBeLessThan(0.06);
    expect(r.errors.closedness).toBeLessThan(0.1);
    expect(r.errors.pictures).toBe(120);
    // Written and read back, it reads any picture size: here the same pictures at twice the size.
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-reader-'));
    const file = join(dir, STATE_READER_FILE);
    writeStateReader(file, r.cfg, r.tensors);
    const reader = loadStateReader(file);
    const big = (p: Uint8Array) => {
      const out = new Uint8Array(4 * H * W * 3);
      for (let y = 0; y < 2 * H; y++)
        for (let x = 0; x < 2 * W; x++)
          out.set(p.subarray(((y >> 1) * W + (x >> 1)) * 3, ((y >> 1) * W + (x >> 1)) * 3 + 3), (y * 2 * W + x) * 3);
      return out;
    };
    const rows = [0, 5, 10, 15];
    const read = reader.read(rows.map((i) => ({ image: big(s.pixels[i]!), width: 2 * W, height: 2 * H })));
    rows.forEach((i, k) => {
      expect(Math.abs(read[k]!.position[0] - s.positions[i * 3]!)).toBeLessThan(0.15);
      expect(Math.abs(read[k]!.position[1] - s.positions[i * 3 + 1]!)).toBeLessThan(0.15);
      expect(read[k]!.closedness > 0.3).toBe(s.closedness[i]! > 0.3);
    });
    reader.dispose();
  }, 120_000);

  it('a file that is not a state reader, or whose config is broken, is a UserError naming the file and field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-reader-bad-'));
    const other = join(dir, 'other.safetensors');
    writeFileSync(other, serializeSafetensors(new Map(), { format: 'selfflow-wm/world-model@1' }));
    expect(() => readStateReaderFile(other)).toThrow(UserError);
    expect(() => readStateReaderFile(other)).toThrow(/other\.safetensors: not a selfflow-wm state reader/);
    const broken = join(dir, 'broken.safetensors');
    const cfg = {
      imageHeight: 64,
      imageWidth: 80,
      patch: 3,
      channels: 8,
      hidden: 8,
      positionMean: [0, 0, 0],
      positionStd: [1, 1, 1],
      fullOpening: 0.1,
    };
    writeFileSync(broken, serializeSafetensors(new Map(), { format: 'selfflow-wm/state-reader@1', config: JSON.stringify(cfg) }));
    expect(() => readStateReaderFile(broken)).toThrow(/broken\.safetensors \(metadata\.config\): config field 'patch' \(3\) must divide/);
    writeFileSync(
      broken,
      serializeSafetensors(new Map(), { format: 'selfflow-wm/state-reader@1', config: JSON.stringify({ ...cfg, patch: 4 }) }),
    );
    expect(() => readStateReaderFile(broken)).toThrow(/broken\.safetensors: weights do not match their config/);
  });

  it('learns from simulator episodes through `model train-reader`, which names episodes without the state', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sfwm-reader-data-'));
    await collect({ tasks: ['pick-can'], episodes: 2, outDir: data, seed: 0, noise: 0.003, explore: 0, imageHeight: 32, imageWidth: 40 });
    const samples = await readerSamples({ dataDirs: [data], card: loadCard('rt1'), height: 32, width: 40, valFraction: 0, stride: 1 });
    // Every step's picture, with the gripper's recorded position and a closedness in [0, 1] that changes when it grasps.
    expect(samples.pixels.length).toBeGreaterThan(20);
    expect(Math.max(...samples.closedness) - Math.min(...samples.closedness)).toBeGreaterThan(0.2);
    const out = mkdtempSync(join(tmpdir(), 'sfwm-reader-out-'));
    const r = await runCli([
      'model',
      'train-reader',
      '--data-dir',
      data,
      '--out',
      out,
      '--steps',
      '3',
      '--batch-size',
      '4',
      '--image-size',
      '32x40',
      '--patch',
      '8',
      '--channels',
      '8',
      // The split hashes the data directory's path, a random temporary name here.
      '--val-fraction',
      '0',
      '--backend',
      'wasm',
    ]);
    expect([r.code, r.err]).toEqual([0, expect.stringContaining('training pictures')]);
    expect(r.out).toMatch(/held-out error on \d+ pictures.*x [\d.]+ \/ y [\d.]+ \/ z [\d.]+ cm mean/);
    expect(readStateReaderFile(join(out, STATE_READER_FILE)).cfg).toMatchObject({
      imageHeight: 32,
      imageWidth: 40,
      patch: 8,
      channels: 8,
      fullOpening: 0.1,
    });
    const odd = await runCli(['model', 'train-reader', '--data-dir', data, '--out', out, '--image-size', '32x40', '--patch', '6']);
    expect([odd.code, odd.err]).toEqual([2, expect.stringContaining('--patch 6 must divide --image-size 32x40')]);
    // A card whose episodes lack the state: the error names the record and the feature.
    const card = join(out, 'card.json');
    const rt1 = loadCard('rt1');
    const features = { ...rt1.features };
    delete features['steps/observation/gripper_closed'];
    writeFileSync(card, JSON.stringify({ ...rt1, source: undefined, features }));
    const bad = await runCli([
      'model',
      'train-reader',
      '--data',
      card,
      '--data-dir',
      data,
      '--out',
      out,
      '--steps',
      '1',
      '--backend',
      'wasm',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/record 0 at byte 0: feature 'steps\/observation\/gripper_closed' is missing; the state reader learns from it/);
  }, 120_000);
});
