/**
 * Validation of imagination: the EMA model samples each val window's future from its context and
 * true actions; we report its pixel error next to the "nothing moves" baseline (the last context
 * frame repeated), and draw strips of context | predicted future | (future under another window's
 * actions) | true future as PNG, captioned with the action-controllability figure.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { Canvas, unitToImage } from '../image/canvas.js';
import { drawText, LINE_HEIGHT, textWidth } from '../image/font.js';
import { encodePng } from '../image/png.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { writeFileAtomic } from '../util/atomic.js';
import { describeControllability, type Controllability } from './controllability.js';
import type { WindowLike } from './training-window.js';
import type { Trainer } from './trainer.js';

const SCALE = 3;
const GAP = 6;

/**
 * Imagined futures [H, h, w, 3] per window (8 Heun steps, seeded per window index), under the
 * windows' recorded actions or under `actions` (one H x A sequence per window).
 */
export function predictFutures(
  params: Params,
  cfg: WorldModelConfig,
  windows: WindowLike[],
  k: number,
  h: number,
  seed: number,
  actions: Float32Array[] = windows.map((w) => w.actions),
): Float32Array[] {
  const [fh, fw] = [cfg.imageHeight, cfg.imageWidth];
  const px = fh * fw * 3;
  return windows.map((w, row) =>
    tf.tidy(() => {
      const frames = tf.tensor5d(w.frames.subarray(0, k * px), [1, k, fh, fw, 3]);
      const cond = w.language ? { language: tf.tensor2d(w.language, [1, cfg.languageDim]) } : {};
      const ctx = contextCache(params, cfg, frames, tf.zeros([1, k - 1, cfg.actionDim]) as tf.Tensor3D, cond);
      const out = imagine(params, cfg, ctx, tf.tensor3d(actions[row]!, [1, h, cfg.actionDim]), cond, {
        steps: 8,
        integrator: 'heun',
        seed: seed + row,
      }).frames;
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

/** The same windows imagined under other windows' actions, and the controllability figure over all val windows. */
export interface StripContrast {
  other: Float32Array[];
  figure: Controllability;
}

/** The largest font scale, at most `max`, at which `text` fits in `width` pixels (1 when none does). */
function fitScale(text: string, width: number, max: number): number {
  for (let s = max; s > 1; s--) if (textWidth(text, s) <= width) return s;
  return 1;
}

/**
 * Writes the strip for the first `rows` windows, one row each: context | imagined under the recorded
 * actions | (imagined under another window's actions) | truth, under a caption with the step and,
 * given `contrast`, the controllability figure. `predicted` comes from predictFutures.
 */
export async function renderValidationStrip(
  runDir: string,
  trainer: Trainer,
  windows: WindowLike[],
  predicted: Float32Array[],
  step: number,
  k: number,
  h: number,
  contrast?: StripContrast,
): Promise<string | undefined> {
  if (!windows.length) return undefined;
  const cfg = trainer.cfg;
  const [fh, fw] = [cfg.imageHeight, cfg.imageWidth];
  const px = fh * fw * 3;
  const groups: { label: string; frames: number }[] = [
    { label: 'context', frames: k },
    { label: 'recorded actions', frames: h },
    ...(contrast ? [{ label: 'other actions', frames: h }] : []),
    { label: 'truth', frames: h },
  ];
  const cols = groups.reduce((a, g) => a + g.frames, 0);
  const width = cols * (fw * SCALE) + (cols + groups.length) * GAP;
  const caption = `step ${step}${contrast ? `  ${describeControllability(contrast.figure)}` : ''}`;
  const captionScale = fitScale(caption, width - 2 * GAP, 2);
  // One size for every column label: the largest at which each fits over its columns.
  const labelScale = Math.min(...groups.map((g) => fitScale(g.label, g.frames * (fw * SCALE + GAP) - GAP, 2)));
  const labelHeight = LINE_HEIGHT * labelScale;
  const top = GAP + LINE_HEIGHT * captionScale + GAP + labelHeight;
  const canvas = new Canvas(width, top + windows.length * (fh * SCALE + GAP) + GAP);
  drawText(canvas, caption, GAP, GAP, captionScale);
  let gx = GAP;
  groups.forEach((g) => {
    drawText(canvas, g.label, gx, top - labelHeight, labelScale, [200, 200, 200]);
    gx += g.frames * (fw * SCALE + GAP) + GAP;
  });
  windows.forEach((w, row) => {
    const y = top + row * (fh * SCALE + GAP);
    let x = GAP;
    const put = (values: ArrayLike<number>) => {
      canvas.draw(unitToImage(values, fw, fh), x, y, SCALE);
      x += fw * SCALE + GAP;
    };
    const future = (values: Float32Array) => {
      for (let i = 0; i < h; i++) put(values.subarray(i * px, (i + 1) * px));
      x += GAP;
    };
    for (let i = 0; i < k; i++) put(w.frames.subarray(i * px, (i + 1) * px));
    x += GAP;
    future(predicted[row]!);
    if (contrast) future(contrast.other[row]!);
    future(w.frames.subarray(k * px));
  });
  const file = join(runDir, 'val', `step-${String(step).padStart(7, '0')}.png`);
  writeFileAtomic(file, encodePng(canvas.data, canvas.width, canvas.height));
  return file;
}
