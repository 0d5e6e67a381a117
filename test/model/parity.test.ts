import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadStateDict } from '../../src/checkpoint/load.js';
import { readSafetensors } from '../../src/checkpoint/safetensors.js';
import { toFloat32, toInt32 } from '../../src/checkpoint/tensor-map.js';
import { readDiTConfigFile } from '../../src/core/model-config.js';
import { ditForward } from '../../src/model/dit.js';
import { checkAgainstLayout, officialLayout, toTf } from '../../src/model/params.js';
import { sharedFixture } from '../helpers/fixtures.js';
import { maxAbs, maxAbsDiff, useTestBackend } from '../helpers/tf.js';

const REF = 'selfflow-reference';

describe('parity with the official PyTorch SelfFlowPerTokenDiT', () => {
  beforeAll(useTestBackend);
  const cfg = () => readDiTConfigFile(sharedFixture(`${REF}/selfflow-tiny.json`));
  const io = () => readSafetensors(sharedFixture(`${REF}/selfflow-tiny.io.safetensors`)).tensors;

  for (const weights of ['selfflow-tiny.safetensors', 'selfflow-tiny.pt']) {
    it(`matches every fixture output with weights from ${weights}`, () => {
      const c = cfg();
      const sd = loadStateDict(sharedFixture(`${REF}/${weights}`));
      expect(checkAgainstLayout(sd.tensors, officialLayout(c))).toEqual([]);
      const p = toTf(sd.tensors);
      const t = io();
      const get = (n: string) => tf.tensor(toFloat32(t.get(n)!), t.get(n)!.shape);
      const x = get('x') as tf.Tensor3D;
      const y = tf.tensor1d(toInt32(t.get('y')!), 'int32');
      const outputs: Record<string, tf.Tensor> = {
        out_per_token_t: ditForward(p, c, x, get('t_per_token'), y).out,
        out_per_sample_t: ditForward(p, c, x, get('t_per_sample'), y).out,
        features_projected: ditForward(p, c, x, get('t_per_token'), y, { featuresLayer: 2 }).features!,
        features_raw: ditForward(p, c, x, get('t_per_token'), y, { rawFeaturesLayer: 4 }).features!,
      };
      for (const [name, got] of Object.entries(outputs)) {
        const expected = toFloat32(t.get(name)!);
        expect(got.shape, name).toEqual(t.get(name)!.shape);
        const err = maxAbsDiff(got.dataSync(), expected) / maxAbs(expected);
        expect(err, `${name} relative error`).toBeLessThan(1e-4);
      }
      tf.dispose([...Object.values(p), ...Object.values(outputs), x, y]);
    });
  }

  it('the .pt and .safetensors weights decode to identical tensors', () => {
    const a = loadStateDict(sharedFixture(`${REF}/selfflow-tiny.pt`)).tensors;
    const b = loadStateDict(sharedFixture(`${REF}/selfflow-tiny.safetensors`)).tensors;
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    for (const [k, v] of a) expect(maxAbsDiff(toFloat32(v), toFloat32(b.get(k)!)), k).toBe(0);
  });
});
