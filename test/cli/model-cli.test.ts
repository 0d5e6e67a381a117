import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/backends.js';
import { readSafetensors } from '../../src/checkpoint/safetensors.js';
import { toFloat32 } from '../../src/checkpoint/tensor-map.js';
import { runCli } from '../helpers/cli.js';
import { sharedFixture } from '../helpers/fixtures.js';
import { maxAbs, maxAbsDiff } from '../helpers/tf.js';

const F = (n: string) => sharedFixture(`selfflow-reference/${n}`);

const run = runCli;

describe('selfflow-wm model run', () => {
  it('writes the fixture outputs under their names, within 1e-4 of the reference (config under "config" key)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-'));
    const out = join(dir, 'out.safetensors');
    const r = await run([
      'model',
      'run',
      '--checkpoint',
      F('selfflow-tiny.pt'),
      '--model-config',
      F('selfflow-tiny.json'),
      '--inputs',
      F('selfflow-tiny.io.safetensors'),
      '--out',
      out,
      '--features-layer',
      '2',
      '--raw-features-layer',
      '4',
      '--backend',
      'wasm',
    ]);
    expect(r.code, r.err).toBe(0);
    const got = readSafetensors(out).tensors;
    const ref = readSafetensors(F('selfflow-tiny.io.safetensors')).tensors;
    expect([...got.keys()].sort()).toEqual(['features_projected', 'features_raw', 'out_per_sample_t', 'out_per_token_t']);
    for (const [name, t] of got) {
      const e = toFloat32(ref.get(name)!);
      expect(maxAbsDiff(toFloat32(t), e) / maxAbs(e), name).toBeLessThan(1e-4);
    }
  });

  it('accepts a top-level config file and reports a config/checkpoint mismatch by tensor name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-'));
    const cfg = join(dir, 'cfg.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        input_size: 8,
        patch_size: 2,
        in_channels: 4,
        hidden_size: 64,
        depth: 3,
        num_heads: 4,
        mlp_ratio: 4,
        num_classes: 11,
        learn_sigma: true,
      }),
    );
    const r = await run([
      'model',
      'run',
      '--checkpoint',
      F('selfflow-tiny.safetensors'),
      '--model-config',
      cfg,
      '--inputs',
      F('selfflow-tiny.io.safetensors'),
      '--out',
      join(dir, 'o.safetensors'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unexpected 'blocks\.3\./);
  });

  it('rejects missing flags and out-of-range layers with usage errors', async () => {
    expect((await run(['model', 'run', '--model-config', F('selfflow-tiny.json')])).err).toMatch(/--checkpoint/);
    const r = await run([
      'model',
      'run',
      '--checkpoint',
      F('selfflow-tiny.pt'),
      '--model-config',
      F('selfflow-tiny.json'),
      '--inputs',
      F('selfflow-tiny.io.safetensors'),
      '--out',
      '/tmp/x.safetensors',
      '--features-layer',
      '9',
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--features-layer must be in 1\.\.4/);
  });

  it('model info --config xl reports the official 675M-parameter trunk', async () => {
    const r = await run(['model', 'info', '--config', 'xl', '--json']);
    const info = JSON.parse(r.out) as { official: { total: number; without_projector_and_pos_embed: number } };
    expect(info.official.total).toBe(680_441_504);
    expect(Math.round(info.official.without_projector_and_pos_embed / 1e6)).toBe(675);
  });
});

describe('backend selection', () => {
  const installed = (pkg: string) => {
    try {
      createRequire(import.meta.url).resolve(pkg);
      return true;
    } catch {
      return false;
    }
  };
  it.skipIf(installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node'))(
    'an explicit backend that cannot load names its package and how to install it',
    async () => {
      await expect(initBackend('cuda')).rejects.toThrow(/@tensorflow\/tfjs-node-gpu.*\n.*npm install @tensorflow\/tfjs-node-gpu/s);
      await expect(initBackend('tfjs-node')).rejects.toThrow(/npm install @tensorflow\/tfjs-node@/);
    },
  );

  it('rejects unknown names and falls through to a loadable backend on auto', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(/unknown backend 'tpu'/);
    const choice = await initBackend('auto');
    expect(['cuda', 'webgpu', 'tfjs-node', 'wasm+blas', 'wasm']).toContain(choice.chosen);
  });
});
