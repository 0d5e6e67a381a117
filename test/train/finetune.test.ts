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
import { renderValidationStrip } from '../../src/train/val-strip.js';
import { decodeImage } from '../../src/image/decode.js';
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
    writeManifest(dir, {
      format: 'selfflow-wm/run@1',
      model: cfg,
      configName: 'tiny',
      data: { card: {}, cardName: 'synthetic', dataDir: '' },
      actionStats: unitStats(cfg.actionDim),
      contextFrames: 1,
      futureFrames: 2,
      training: {},
    });
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

  it('logs the action-controllability figure at every validation and draws the other-action futures on the strip', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-ctrl-'));
    const strips: { rows: number; other?: number; windows?: number }[] = [];
    await finetune(
      settings(dir, {
        steps: 4,
        valEvery: 2,
        valWindows: 3,
        renderStrip: (trainer, windows, predicted, step, contrast) => {
          strips.push({ rows: windows.length, other: contrast?.other.length, windows: contrast?.figure.windows });
          return renderValidationStrip(dir, trainer, windows, predicted, step, 1, 2, contrast);
        },
      }),
      squareSource(4, 16, 16, 1, 2, 2),
    );
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    for (const r of rows) {
      const validated = r.step === 2 || r.step === 4;
      expect([r.step, 'val_delta_psnr' in r]).toEqual([r.step, validated]);
      if (!validated) continue;
      expect(Number.isFinite(r.val_delta_psnr)).toBe(true);
      expect(r.val_delta_psnr).toBeCloseTo((r.val_psnr as number) - (r.val_psnr_other_actions as number), 9);
      expect(r.val_recorded_actions_better).toBeGreaterThanOrEqual(0);
      expect(r.val_recorded_actions_better).toBeLessThanOrEqual(1);
    }
    // The figure covers all three val windows; the strip shows them with their other-action futures.
    expect(strips).toEqual([
      { rows: 3, other: 3, windows: 3 },
      { rows: 3, other: 3, windows: 3 },
    ]);
    const png = decodeImage(readFileSync(rows[3]!.val_strip as string), 'strip');
    // 7 frames (1 context, 2 each of recorded actions, other actions, truth) 48 px wide, 11 gaps of 6 px.
    expect(png.width).toBe(7 * 48 + 11 * 6);
    // The caption is drawn in white across the top.
    let white = 0;
    for (let i = 0; i < png.width * 20 * 3; i += 3) if (png.data[i] === 255 && png.data[i + 1] === 255 && png.data[i + 2] === 255) white++;
    expect(white).toBeGreaterThan(50);
  });
});
