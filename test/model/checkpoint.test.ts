import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStateDict } from '../../src/checkpoint/load.js';
import { parseSafetensors, serializeSafetensors } from '../../src/checkpoint/safetensors.js';
import { toFloat32, type TensorMap } from '../../src/checkpoint/tensor-map.js';
import { officialConfig, worldModelConfig } from '../../src/core/model-config.js';
import { readWorldModel, writeWorldModel } from '../../src/model/checkpoint-io.js';
import { importIntoWorldModel } from '../../src/model/import.js';
import { officialLayout } from '../../src/model/params.js';
import { MAX_LONG_BYTES, unpickle } from '../../src/checkpoint/pickle.js';
import { ZipArchive } from '../../src/checkpoint/zip.js';
import { UserError } from '../../src/core/errors.js';
import { long4, nestedDicts, pickleOf, selfContainingDict, torchPt, zipArchive } from '../helpers/crafted.js';
import { sharedFixture } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/tf.js';

const official = () => loadStateDict(sharedFixture('selfflow-reference/selfflow-tiny.safetensors')).tensors;
const nestedPt = new URL('../fixtures/nested-module.pt', import.meta.url).pathname;

describe('checkpoint I/O', () => {
  it('xl layout matches every key and shape of the official SiT-XL/2 checkpoint manifest', () => {
    const manifest = JSON.parse(readFileSync(sharedFixture('selfflow-reference/selfflow-xl2-manifest.json'), 'utf8')) as {
      params_total: number;
      keys: Record<string, number[]>;
    };
    const layout = officialLayout(officialConfig('xl'));
    expect(Object.fromEntries(layout)).toEqual(manifest.keys);
    expect([...layout.values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0)).toBe(manifest.params_total);
  });

  it('reads a .pt with nested model/ema dicts, module. prefixes, strided views and float16 storage', () => {
    const ref = official();
    const model = loadStateDict(nestedPt);
    expect(model.nestedKey).toBe('model');
    expect([...model.tensors.keys()].sort()).toEqual(['blocks.0.attn.qkv.weight', 'x_embedder.proj.bias', 'x_embedder.proj.weight']);
    expect(model.tensors.get('x_embedder.proj.weight')!.shape).toEqual([64, 16]);
    expect(maxAbsDiff(toFloat32(model.tensors.get('x_embedder.proj.weight')!), toFloat32(ref.get('x_embedder.proj.weight')!))).toBe(0);
    expect(maxAbsDiff(toFloat32(model.tensors.get('x_embedder.proj.bias')!), toFloat32(ref.get('x_embedder.proj.bias')!))).toBeLessThan(
      1e-3,
    );
    const ema = loadStateDict(nestedPt, 'ema');
    expect(maxAbsDiff(toFloat32(ema.tensors.get('blocks.0.attn.qkv.weight')!), toFloat32(ref.get('blocks.1.attn.qkv.weight')!))).toBe(0);
    expect(() => loadStateDict(nestedPt, 'optimizer')).toThrow(/no nested state dict 'optimizer'/);
  });

  it('safetensors round-trips and rejects corrupt headers with the file name', () => {
    const t: TensorMap = new Map([
      ['a', { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
      ['b', { dtype: 'int64', shape: [2], data: BigInt64Array.from([7n, -8n]) }],
    ]);
    const back = parseSafetensors(serializeSafetensors(t, { note: 'x' }));
    expect(back.metadata.note).toBe('x');
    expect([...toFloat32(back.tensors.get('a')!)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(back.tensors.get('b')!.data as BigInt64Array)]).toEqual([7n, -8n]);
    const bytes = serializeSafetensors(t);
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'cut.safetensors')).toThrow(
      /cut\.safetensors: tensor '(a|b)'.*data_offsets/,
    );
    expect(() => parseSafetensors(new Uint8Array(16), 'zero.safetensors')).toThrow(/zero\.safetensors/);
  });

  it('imports an official checkpoint into a world model: copies matching tensors, initialises the rest', () => {
    const src = official();
    const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 3, languageDim: 0 });
    const { tensors, report } = importIntoWorldModel(src, cfg, 0);
    expect(report.copied).toContain('blocks.3.mlp.fc2.weight');
    expect(report.copied).toContain('projector.linear2.weight');
    // RGB pixels with patch 4 vs 4-channel latents with patch 2: the patch embedding differs.
    expect(report.initialised.map((i) => i.name)).toEqual(
      expect.arrayContaining(['x_embedder.proj.weight', 'final_layer.linear.weight', 'action_embedder.proj.weight', 'pos_embed']),
    );
    expect(report.unused).toEqual([]);
    expect(maxAbsDiff(toFloat32(tensors.get('blocks.2.attn.qkv.weight')!), toFloat32(src.get('blocks.2.attn.qkv.weight')!))).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-'));
    writeWorldModel(join(dir, 'wm.safetensors'), cfg, tensors);
    const back = readWorldModel(join(dir, 'wm.safetensors'));
    expect(back.cfg).toEqual(cfg);
    expect(() => readWorldModel(sharedFixture('selfflow-reference/selfflow-tiny.safetensors'))).toThrow(
      /not a selfflow-wm world-model file/,
    );
  });
});

describe('hostile .pt files', () => {
  const noStorage = { persistentLoad: () => undefined };
  /** The error a .pt with this pickle gives, written to a temp file. */
  const ptError = (bytes: Uint8Array): { path: string; err: unknown } => {
    const path = join(mkdtempSync(join(tmpdir(), 'sfwm-pt-')), 'hostile.pt');
    writeFileSync(path, bytes);
    try {
      loadStateDict(path);
    } catch (err) {
      return { path, err };
    }
    return { path, err: undefined };
  };

  it('LONG4 integers decode up to the length cap, in linear time, and longer ones are refused naming the file and offset', () => {
    // 0x11 repeated n times, little-endian: positive, and its hex is "11" n times.
    const big = unpickle(pickleOf(long4(MAX_LONG_BYTES)), noStorage, 'x.pt') as bigint;
    expect(big).toBe(BigInt(`0x${'11'.repeat(MAX_LONG_BYTES)}`));
    expect(unpickle(pickleOf([0x8a, 2, 0xff, 0xff]), noStorage)).toBe(-1); // LONG1 -1
    expect(unpickle(pickleOf([0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1]), noStorage)).toBe(2n ** 64n);
    // 200 KB took minutes with a shift per byte; refused at once now (a generous bound, not a timing test).
    const t0 = performance.now();
    expect(() => unpickle(pickleOf(long4(200_000)), noStorage, 'x.pt')).toThrow(
      new UserError(`x.pt: integer of 200000 bytes is longer than the ${MAX_LONG_BYTES}-byte limit at byte 2`),
    );
    // Linear: 64 integers at the cap decode in well under a second.
    for (let i = 0; i < 64; i++) unpickle(pickleOf(long4(MAX_LONG_BYTES)), noStorage);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('a zip entry inflates only up to its declared size and within the archive budget', () => {
    const bomb = torchPt(new Uint8Array(20 * 2 ** 20), { deflate: true, declaredSize: 1000 });
    const { path, err } = ptError(bomb);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(`${path}: entry 'archive/data.pkl' inflates past its declared 1000 bytes`);
    expect(() => new ZipArchive(bomb, 'bomb.pt').read('archive/data.pkl')).toThrow(
      new UserError("bomb.pt: entry 'archive/data.pkl' inflates past its declared 1000 bytes"),
    );
    const honest = zipArchive([
      { name: 'a', data: new Uint8Array(5000), deflate: true },
      { name: 'b', data: new Uint8Array(5000), deflate: true },
    ]);
    const archive = new ZipArchive(honest, 'two.zip', { maxInflatedBytes: 8000 });
    expect(archive.read('a').length).toBe(5000);
    expect(() => archive.read('b')).toThrow(
      /two.zip: entry 'b' declares 5000 bytes uncompressed, over the 8000-byte limit for inflated entries \(3000 left\)/,
    );
  });

  it('nesting 200k deep, a dict holding itself and an unsupported opcode are UserErrors naming the file', () => {
    const deep = ptError(torchPt(nestedDicts(200_000)));
    expect(deep.err).toBeInstanceOf(UserError);
    expect((deep.err as Error).message).toMatch(
      new RegExp(`^${deep.path}: archive/data.pkl: containers nested more than 1000 deep at byte \\d+$`),
    );
    const cycle = ptError(torchPt(selfContainingDict()));
    expect((cycle.err as Error).message).toBe(`${cycle.path}: dict 'a' contains itself`);
    const op = ptError(torchPt(pickleOf('i')));
    expect(op.err).toBeInstanceOf(UserError);
    expect((op.err as Error).message).toBe(`${op.path}: archive/data.pkl: unsupported pickle opcode 0x69 at byte 2`);
    // A malformed stack (APPEND to a dict) is named the same way, not thrown as a TypeError.
    expect(() => unpickle(pickleOf([0x7d, 0x4e, 0x61]), noStorage, 'y.pt')).toThrow(
      new UserError('y.pt: APPEND(S) to a non-list at byte 4'),
    );
  });
});
