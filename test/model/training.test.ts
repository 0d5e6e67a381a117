import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { worldModelInit } from '../../src/model/params.js';
import { DEFAULT_ADAMW } from '../../src/train/adamw.js';
import { DEFAULT_OBJECTIVE, drawNoise, type SequenceBatch } from '../../src/train/objective.js';
import { Trainer } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';
import { randomTensor, useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 4, languageDim: 6, maxFrames: 3 });

function fixedBatch(): SequenceBatch {
  const rng = new Rng(5);
  // Smooth frames (a moving gradient) so the model has something learnable.
  const b = 2;
  const f = 3;
  const data = new Float32Array(b * f * 16 * 16 * 3);
  for (let i = 0; i < data.length; i++) {
    const x = Math.floor(i / 3) % 16;
    const fr = Math.floor(i / (16 * 16 * 3)) % f;
    data[i] = Math.sin((x + fr * 2) / 4) * 0.8;
  }
  return {
    frames: tf.tensor5d(data, [b, f, 16, 16, 3]),
    actions: randomTensor(rng, [b, f - 1, 4], 0.5) as tf.Tensor3D,
    language: randomTensor(rng, [b, 6]) as tf.Tensor2D,
    contextFrames: 1,
  };
}

describe('training step', () => {
  beforeAll(useTestBackend);

  it('lowers the loss on a fixed batch, reaches every parameter, and leaks no tensors', () => {
    const objective = { ...DEFAULT_OBJECTIVE, policyFraction: 1 };
    const trainer = new Trainer(cfg, objective, worldModelInit(cfg, 3), undefined, { ...DEFAULT_ADAMW }, 0.9);
    const batch = fixedBatch();
    const before = Object.fromEntries(Object.entries(trainer.student).map(([k, v]) => [k, v.dataSync().slice()]));
    const draw = () => drawNoise(new Rng(11), cfg, 2, 3, 1, objective); // same noise every step: a fixed objective
    const first = trainer.evaluate(batch, draw());
    let tensorsAfterWarmup = 0;
    for (let s = 0; s < 12; s++) {
      trainer.step(batch, draw(), 3e-3);
      if (s === 1) tensorsAfterWarmup = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(tensorsAfterWarmup);
    const last = trainer.evaluate(batch, draw());
    expect(last.loss).toBeLessThan(first.loss * 0.8);
    const unchanged = Object.entries(trainer.student)
      .filter(([k, v]) => v.dataSync().every((x, i) => x === before[k]![i]))
      .map(([k]) => k);
    expect(unchanged).toEqual([]);
    trainer.dispose();
  });

  // The EMA is the model planning samples with, so the vanilla ablation keeps one too (it once stayed at init).
  for (const kind of ['selfflow', 'vanilla'] as const) {
    it(`the teacher gets no gradient and follows the EMA formula (${kind})`, () => {
      const objective = { ...DEFAULT_OBJECTIVE, kind };
      const trainer = new Trainer(cfg, objective, worldModelInit(cfg, 4), undefined, { ...DEFAULT_ADAMW }, 0.9);
      const batch = fixedBatch();
      const name = 'blocks.0.attn.qkv.weight';
      const t0 = trainer.teacher[name]!.dataSync().slice();
      trainer.step(batch, drawNoise(new Rng(1), cfg, 2, 3, 1, objective), 1e-3);
      const s1 = trainer.student[name]!.dataSync();
      const t1 = trainer.teacher[name]!.dataSync();
      expect(Array.from(t1.slice(0, 50))).not.toEqual(Array.from(t0.slice(0, 50)));
      for (let i = 0; i < 50; i++) expect(t1[i]!).toBeCloseTo(0.9 * t0[i]! + 0.1 * s1[i]!, 6);
      expect(trainer.teacher[name]!.trainable).toBe(false);
      trainer.dispose();
    });
  }
});
