import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { worldModelInit } from '../../src/model/params.js';
import { DEFAULT_ADAMW } from '../../src/train/adamw.js';
import { finetune, type FinetuneSettings } from '../../src/train/finetune.js';
import { DEFAULT_OBJECTIVE } from '../../src/train/objective.js';
import { latestCheckpoint, loadCheckpoint, loadInferenceWeights, writeManifest } from '../../src/train/run-files.js';
import { squareSource } from '../helpers/synthetic-windows.js';
import { useTestBackend } from '../helpers/tf.js';

const cfg = worldModelConfig('tiny', { imageHeight: 16, imageWidth: 16, actionDim: 2, languageDim: 0 });

function settings(runDir: string, over: Partial<FinetuneSettings> = {}): FinetuneSettings {
  return {
    runDir,
    cfg,
    objective: { ...DEFAULT_OBJECTIVE, policyFraction: 0.5 },
    optimizer: { ...DEFAULT_ADAMW },
    steps: 6,
    batchSize: 2,
    lr: 2e-3,
    warmup: 2,
    emaDecay: 0.99,
    contextFrames: 1,
    futureFrames: 2,
    seed: 3,
    checkpointEvery: 2,
    valEvery: 3,
    valWindows: 2,
    init: worldModelInit(cfg, 0),
    resume: false,
    log: () => {},
    ...over,
  };
}

const losses = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; loss: number; val_loss?: number });

describe('finetune loop', () => {
  beforeAll(useTestBackend);

  it('a resumed run reproduces the uninterrupted loss curve, and Ctrl-C saves before exiting', async () => {
    const data = () => squareSource(1, 16, 16, 1, 2, 2);
    const a = mkdtempSync(join(tmpdir(), 'sfwm-a-'));
    await finetune(settings(a), data());
    const b = mkdtempSync(join(tmpdir(), 'sfwm-b-'));
    const abort = new AbortController();
    let seen = 0;
    const src = data();
    const interruptingSource = {
      val: src.val,
      async *train(skip: number) {
        for await (const w of src.train(skip)) {
          // Abort after 3 steps' worth of windows (2 per step): the loop notices before step 4.
          if (++seen > 6) abort.abort();
          yield w;
        }
      },
    };
    const first = await finetune(settings(b), interruptingSource, abort.signal);
    expect(first.interrupted).toBe(true);
    expect(latestCheckpoint(b)!.step).toBe(first.finalStep);
    const second = await finetune(settings(b, { resume: true }), data());
    expect(second.finalStep).toBe(6);
    const la = losses(a);
    const lb = losses(b);
    expect(lb.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (let i = 0; i < 6; i++) expect(lb[i]!.loss).toBeCloseTo(la[i]!.loss, 4);
    expect(lb[5]!.val_loss).toBeCloseTo(la[5]!.val_loss!, 4);
  });

  const unitStats = (d: number) => {
    const z = Array.from({ length: d }, () => 0);
    const one = z.map(() => 1);
    return { names: z.map((_, i) => `a${i}`), count: 1, mean: z, std: one, min: z.map(() => -1), max: one, q01: z.map(() => -1), q99: one };
  };

  it('keeps the latest checkpoint readable when a save was cut off, and writes everything planning needs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-c-'));
    writeManifest(dir, { format: 'selfflow-wm/run@1', model: cfg, configName: 'tiny', data: { card: {}, cardName: 'synthetic', dataDir: '' }, actionStats: unitStats(cfg.actionDim), contextFrames: 1, futureFrames: 2, training: {} });
    await finetune(settings(dir, { steps: 4 }), squareSource(2, 16, 16, 1, 2, 2));
    // A killed save leaves a half-written temp dir and a torn file in it; latest.json still names the complete one.
    const torn = join(dir, 'checkpoints', '.step-0000006.999.tmp');
    mkdirSync(torn);
    writeFileSync(join(torn, 'ema.safetensors'), 'torn');
    const latest = latestCheckpoint(dir)!;
    expect(latest.step).toBe(4);
    expect(loadCheckpoint(latest.dir).state.step).toBe(4);
    const inf = loadInferenceWeights(dir);
    expect(inf.cfg).toEqual(cfg);
    expect(inf.step).toBe(4);
    expect(readdirSync(join(dir, 'checkpoints')).filter((d) => d.startsWith('step-'))).toEqual(['step-0000002', 'step-0000004']);
    expect(tf.memory().numTensors).toBeLessThan(50);
  });
});
