import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStateDict } from '../../src/checkpoint/load.js';
import { parseSafetensors, serializeSafetensors } from '../../src/checkpoint/safetensors.js';
import { toFloat32, type TensorMap } from '../../src/checkpoint/tensor-map.js';
import { officialConfig, worldModelConfig } from '../../src/model/config.js';
import { readWorldModel, writeWorldModel } from '../../src/model/checkpoint-io.js';
import { importIntoWorldModel } from '../../src/model/import.js';
import { officialLayout } from '../../src/model/params.js';
import { sharedFixture } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/tf.js';

const official = () => loadStateDict(sharedFixture('selfflow-reference/selfflow-tiny.safetensors')).tensors;
const nestedPt = new URL('../fixtures/nested-module.pt', import.meta.url).pathname;

describe('checkpoint I/O', () => {
  it('xl layout matches every key and shape of the official SiT-XL/2 checkpoint manifest', () => {
    const manifest = JSON.parse(readFileSync(sharedFixture('selfflow-reference/selfflow-xl2-manifest.json'), 'utf8')) as { params_total: number; keys: Record<string, number[]> };
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
    expect(maxAbsDiff(toFloat32(model.tensors.get('x_embedder.proj.bias')!), toFloat32(ref.get('x_embedder.proj.bias')!))).toBeLessThan(1e-3);
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
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 4), 'cut.safetensors')).toThrow(/cut\.safetensors: tensor '(a|b)'.*data_offsets/);
    expect(() => parseSafetensors(new Uint8Array(16), 'zero.safetensors')).toThrow(/zero\.safetensors/);
  });

  it('imports an official checkpoint into a world model: copies matching tensors, initialises the rest', () => {
    const src = official();
    const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 3, languageDim: 0 });
    const { tensors, report } = importIntoWorldModel(src, cfg, 0);
    expect(report.copied).toContain('blocks.3.mlp.fc2.weight');
    expect(report.copied).toContain('projector.linear2.weight');
    // RGB pixels with patch 4 vs 4-channel latents with patch 2: the patch embedding differs.
    expect(report.initialised.map((i) => i.name)).toEqual(expect.arrayContaining(['x_embedder.proj.weight', 'final_layer.linear.weight', 'action_embedder.proj.weight', 'pos_embed']));
    expect(report.unused).toEqual([]);
    expect(maxAbsDiff(toFloat32(tensors.get('blocks.2.attn.qkv.weight')!), toFloat32(src.get('blocks.2.attn.qkv.weight')!))).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-'));
    writeWorldModel(join(dir, 'wm.safetensors'), cfg, tensors);
    const back = readWorldModel(join(dir, 'wm.safetensors'));
    expect(back.cfg).toEqual(cfg);
    expect(() => readWorldModel(sharedFixture('selfflow-reference/selfflow-tiny.safetensors'))).toThrow(/not a selfflow-wm world-model file/);
  });
});
