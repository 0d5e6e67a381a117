/**
 * Validation of imagination: the EMA model samples each val window's future from its context and
 * true actions; we report its pixel error next to the "nothing moves" baseline (the last context
 * frame repeated), and draw strips of context | predicted future | true future as PNG.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { Canvas, unitToImage } from '../image/canvas.js';
import { encodePng } from '../image/png.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { WindowLike } from './training-window.js';
import type { Trainer } from './trainer.js';

const SCALE = 3;
const GAP = 6;

/** Imagined futures [H, h, w, 3] per window (8 Heun steps, seeded per window). */
export function predictFutures(params: Params, cfg: WorldModelConfig, windows: WindowLike[], k: number, h: number, seed: number): Float32Array[] {
  const [fh, fw] = [cfg.imageHeight, cfg.imageWidth];
  const px = fh * fw * 3;
  return windows.map((w, row) =>
    tf.tidy(() => {
      const frames = tf.tensor5d(w.frames.subarray(0, k * px), [1, k, fh, fw, 3]);
      const cond = w.language ? { language: tf.tensor2d(w.language, [1, cfg.languageDim]) } : {};
      const ctx = contextCache(params, cfg, frames, tf.zeros([1, k - 1, cfg.actionDim]) as tf.Tensor3D, cond);
      const out = imagine(params, cfg, ctx, tf.tensor3d(w.actions, [1, h, cfg.actionDim]), cond, { steps: 8, integrator: 'heun', seed: seed + row }).frames;
      disposeContext(ctx);
      return out.dataSync().slice() as Float32Array;
    }),
  );
}

export interface ImaginationError {
  /** Mean squared pixel error of imagined vs true future frames ([-1, 1] units). */
  mse: number;
  /** The same for the last context frame repeated (a model that predicts no motion). */
  copyMse: number;
}

export function imaginationError(predicted: Float32Array[], windows: WindowLike[], k: number, px: number): ImaginationError {
  let se = 0;
  let copy = 0;
  let count = 0;
  windows.forEach((w, i) => {
    const last = w.frames.subarray((k - 1) * px, k * px);
    const future = w.frames.subarray(k * px);
    const pred = predicted[i]!;
    for (let j = 0; j < future.length; j++) {
      se += (pred[j]! - future[j]!) ** 2;
      copy += (last[j % px]! - future[j]!) ** 2;
    }
    count += future.length;
  });
  return { mse: se / count, copyMse: copy / count };
}

/** Writes the strip for the first `rows` windows; `predicted` comes from predictFutures. */
export async function renderValidationStrip(runDir: string, trainer: Trainer, windows: WindowLike[], predicted: Float32Array[], step: number, k: number, h: number): Promise<string | undefined> {
  if (!windows.length) return undefined;
  const cfg = trainer.cfg;
  const [fh, fw] = [cfg.imageHeight, cfg.imageWidth];
  const px = fh * fw * 3;
  const cols = k + 2 * h;
  const canvas = new Canvas(cols * (fw * SCALE) + (cols + 2) * GAP, windows.length * (fh * SCALE + GAP) + GAP);
  windows.forEach((w, row) => {
    const pred = predicted[row]!;
    const y = GAP + row * (fh * SCALE + GAP);
    let x = GAP;
    const put = (values: ArrayLike<number>) => {
      canvas.draw(unitToImage(values, fw, fh), x, y, SCALE);
      x += fw * SCALE + GAP;
    };
    for (let i = 0; i < k; i++) put(w.frames.subarray(i * px, (i + 1) * px));
    x += GAP;
    for (let i = 0; i < h; i++) put(pred.subarray(i * px, (i + 1) * px));
    x += GAP;
    for (let i = 0; i < h; i++) put(w.frames.subarray((k + i) * px, (k + i + 1) * px));
  });
  const file = join(runDir, 'val', `step-${String(step).padStart(7, '0')}.png`);
  writeFileAtomic(file, encodePng(canvas.data, canvas.width, canvas.height));
  return file;
}
