/**
 * A synthetic check of action conditioning: a red square on a fixed textured background is moved
 * by the action (up to 4 px each way), one context frame, one predicted frame. Nothing but the
 * action says where the square goes, so the relative frame loss (1 = "nothing moves") measures how
 * fast a conditioning mode learns action-driven motion, apart from everything a simulator scene
 * adds. An experiment run as the `action-toy` bench suite; nothing in the product imports it.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/backends.js';
import { DEFAULT_ADAMW } from '../train/adamw.js';
import { DEFAULT_OBJECTIVE, drawNoise, type SequenceBatch } from '../train/objective.js';
import { Trainer } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import { worldModelConfig, type ActionConditioning } from '../core/model-config.js';
import { worldModelInit } from '../model/params.js';
import type { BenchOptions } from './options.js';
import type { BenchTable } from './table.js';

const H = 16;
const W = 20;
const SIDE = 4;
const MAX_SHIFT = 4;

/** One batch of (frame, action, moved frame); the action is the pixel shift (dx, dy) / 3. */
export function movingSquareBatch(rng: Rng, batch: number): SequenceBatch {
  const px = new Float32Array(batch * 2 * H * W * 3);
  const act = new Float32Array(batch * 2);
  for (let b = 0; b < batch; b++) {
    const x0 = MAX_SHIFT + Math.floor(rng.next() * (W - 2 * MAX_SHIFT - SIDE + 1));
    const y0 = MAX_SHIFT + Math.floor(rng.next() * (H - 2 * MAX_SHIFT - SIDE + 1));
    const dx = Math.floor(rng.next() * (2 * MAX_SHIFT + 1)) - MAX_SHIFT;
    const dy = Math.floor(rng.next() * (2 * MAX_SHIFT + 1)) - MAX_SHIFT;
    act.set([dx / 3, dy / 3], b * 2);
    for (let f = 0; f < 2; f++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = x >= x0 + f * dx && x < x0 + f * dx + SIDE && y >= y0 + f * dy && y < y0 + f * dy + SIDE;
          for (let c = 0; c < 3; c++) {
            const i = (y * W + x) * 3 + c;
            px[(b * 2 + f) * H * W * 3 + i] = inside ? (c === 0 ? 0.9 : 0.2) : 0.3 * Math.sin(i * 0.37) - 0.5;
          }
        }
      }
    }
  }
  return { frames: tf.tensor5d(px, [batch, 2, H, W, 3]), actions: tf.tensor3d(act, [batch, 1, 2]), contextFrames: 1 };
}

/** Trains a fresh tiny model (vanilla objective, residual frames) and returns the mean relative frame loss per window of steps. */
export function learnMovingSquare(conditioning: ActionConditioning, steps: number, window: number, seed = 1): number[] {
  const cfg = worldModelConfig('tiny', {
    imageHeight: H,
    imageWidth: W,
    actionDim: 2,
    languageDim: 0,
    maxFrames: 2,
    prediction: 'residual',
    actionConditioning: conditioning,
  });
  const objective = { ...DEFAULT_OBJECTIVE, kind: 'vanilla' as const, policyFraction: 0 };
  const trainer = new Trainer(cfg, objective, worldModelInit(cfg, 0), undefined, { ...DEFAULT_ADAMW }, 0.99);
  const rng = new Rng(seed);
  const means: number[] = [];
  let sum = 0;
  try {
    for (let s = 1; s <= steps; s++) {
      const batch = movingSquareBatch(rng, 16);
      sum += trainer.step(batch, drawNoise(rng, cfg, 16, 2, 1, objective), 1e-3).frame;
      tf.dispose([batch.frames, batch.actions]);
      if (s % window === 0) {
        means.push(sum / window);
        sum = 0;
      }
    }
  } finally {
    trainer.dispose();
  }
  return means;
}

/** The `action-toy` suite: how fast each action-conditioning mode learns action-driven motion. */
export async function benchActionToy(opts: BenchOptions): Promise<BenchTable[]> {
  await initBackend('wasm');
  const steps = opts.quick ? 100 : 200;
  const window = 50;
  const modes: ActionConditioning[] = opts.quick ? ['adaln', 'shift'] : ['token', 'adaln', 'shift'];
  const rows: (string | number)[][] = [];
  for (const mode of modes) {
    const t0 = performance.now();
    const means = learnMovingSquare(mode, steps, window);
    rows.push([mode, ...means, (performance.now() - t0) / 1000 / steps]);
  }
  return [
    {
      title: `Action conditioning on a moving square (tiny, 16x20, batch 16, lr 1e-3, vanilla objective, wasm)`,
      columns: [
        '--action-conditioning',
        ...Array.from({ length: steps / window }, (_, i) => `frame loss, steps ${i * window + 1}-${(i + 1) * window}`),
        's/step',
      ],
      rows,
      notes: ['relative frame loss: 1 = "nothing moves"; only the action says where the square goes'],
    },
  ];
}
