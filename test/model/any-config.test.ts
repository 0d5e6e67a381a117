import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src/checkpoint/tensor-map.js';
import type { DiTConfig } from '../../src/core/model-config.js';
import { ditForward } from '../../src/model/dit.js';
import { officialInit, toTf } from '../../src/model/params.js';
import { Rng } from '../../src/util/rng.js';
import { referenceForward } from '../helpers/reference-dit.js';
import { maxAbs, maxAbsDiff, randomiseWeights, useTestBackend } from '../helpers/tf.js';

// Geometries the PyTorch fixture does not cover: no learn_sigma, patch 1 and 4, other widths, mlp ratios and class counts.
const CONFIGS: DiTConfig[] = [
  {
    input_size: 4,
    patch_size: 1,
    in_channels: 3,
    hidden_size: 24,
    depth: 2,
    num_heads: 3,
    mlp_ratio: 2,
    num_classes: 1,
    learn_sigma: false,
  },
  {
    input_size: 8,
    patch_size: 4,
    in_channels: 2,
    hidden_size: 32,
    depth: 3,
    num_heads: 2,
    mlp_ratio: 4,
    num_classes: 5,
    learn_sigma: true,
  },
  {
    input_size: 6,
    patch_size: 2,
    in_channels: 4,
    hidden_size: 16,
    depth: 1,
    num_heads: 4,
    mlp_ratio: 1.5,
    num_classes: 3,
    learn_sigma: false,
  },
];

describe('official forward on any config (against an independent float64 reference)', () => {
  beforeAll(useTestBackend);
  CONFIGS.forEach((c, ci) => {
    it(`config ${ci}: patch ${c.patch_size}, ${c.in_channels} ch, hidden ${c.hidden_size}, depth ${c.depth}, learn_sigma ${c.learn_sigma}`, () => {
      const host = randomiseWeights(officialInit(c, ci), 50 + ci, 0.2);
      const p = toTf(host);
      const rng = new Rng(ci);
      const g = c.input_size / c.patch_size;
      const tokens = g * g;
      const dim = c.patch_size ** 2 * c.in_channels;
      const x = Array.from({ length: tokens }, () => Array.from({ length: dim }, () => rng.normal()));
      const t = Array.from({ length: tokens }, () => rng.next());
      const y = c.num_classes - 1;
      const weights = new Map([...host].map(([k, v]) => [k, { shape: v.shape, data: toFloat32(v) }]));
      const ref = referenceForward(weights, c, x, t, y, c.depth, undefined);
      const got = ditForward(p, c, tf.tensor3d([x]), tf.tensor2d([t]), tf.tensor1d([y], 'int32'), { featuresLayer: c.depth });
      const e = ref.out.flat();
      expect(maxAbsDiff(got.out.dataSync(), e) / maxAbs(e)).toBeLessThan(1e-4);
      const ef = ref.features!.flat();
      expect(maxAbsDiff(got.features!.dataSync(), ef) / maxAbs(ef)).toBeLessThan(1e-4);
      const raw = referenceForward(weights, c, x, t, y, undefined, 1).features!.flat();
      expect(
        maxAbsDiff(
          ditForward(p, c, tf.tensor3d([x]), tf.tensor2d([t]), tf.tensor1d([y], 'int32'), { rawFeaturesLayer: 1 }).features!.dataSync(),
          raw,
        ) / maxAbs(raw),
      ).toBeLessThan(1e-4);
    });
  });
});

describe('the float64 reference itself', () => {
  it('reproduces the PyTorch fixture (so it cannot share a bug with the tfjs model unnoticed)', async () => {
    const { loadStateDict } = await import('../../src/checkpoint/load.js');
    const { readSafetensors } = await import('../../src/checkpoint/safetensors.js');
    const { readDiTConfigFile } = await import('../../src/core/model-config.js');
    const { sharedFixture } = await import('../helpers/fixtures.js');
    const c = readDiTConfigFile(sharedFixture('selfflow-reference/selfflow-tiny.json'));
    const w = new Map(
      [...loadStateDict(sharedFixture('selfflow-reference/selfflow-tiny.safetensors')).tensors].map(([k, v]) => [
        k,
        { shape: v.shape, data: toFloat32(v) },
      ]),
    );
    const io = readSafetensors(sharedFixture('selfflow-reference/selfflow-tiny.io.safetensors')).tensors;
    const x = toFloat32(io.get('x')!);
    const t = toFloat32(io.get('t_per_token')!);
    const y = io.get('y')!.data as BigInt64Array;
    const expected = toFloat32(io.get('out_per_token_t')!);
    const [, tokens, dim] = io.get('x')!.shape as [number, number, number];
    const sample = 1;
    const xs = Array.from({ length: tokens }, (_, n) =>
      Array.from(x.subarray((sample * tokens + n) * dim, (sample * tokens + n + 1) * dim)),
    );
    const ts = Array.from(t.subarray(sample * tokens, (sample + 1) * tokens));
    const ref = referenceForward(w, c, xs, ts, Number(y[sample])).out.flat();
    const e = expected.subarray(sample * tokens * dim, (sample + 1) * tokens * dim);
    expect(maxAbsDiff(ref, e) / maxAbs(e)).toBeLessThan(1e-4);
  });
});
