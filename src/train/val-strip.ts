/** Validation strip: per val window, context | predicted future (EMA model) | true future, as PNG. */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { Canvas, unitToImage } from '../image/canvas.js';
import { encodePng } from '../image/png.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { WindowLike } from './finetune.js';
import type { Trainer } from './trainer.js';

const SCALE = 3;
const GAP = 6;

export async function renderValidationStrip(runDir: string, trainer: Trainer, windows: WindowLike[], step: number, k: number, h: number, seed: number): Promise<string | undefined> {
  if (!windows.length) return undefined;
  const cfg = trainer.cfg;
  const [fh, fw] = [cfg.imageHeight, cfg.imageWidth];
  const px = fh * fw * 3;
  const cols = k + 2 * h;
  const canvas = new Canvas(cols * (fw * SCALE) + (cols + 2) * GAP, windows.length * (fh * SCALE + GAP) + GAP);
  const params = trainer.teacherParams();
  windows.forEach((w, row) => {
    const predicted = tf.tidy(() => {
      const frames = tf.tensor5d(w.frames.subarray(0, k * px), [1, k, fh, fw, 3]);
      const ctx = contextCache(params, cfg, frames, tf.zeros([1, k - 1, cfg.actionDim]) as tf.Tensor3D, w.language ? { language: tf.tensor2d(w.language, [1, cfg.languageDim]) } : {});
      const out = imagine(params, cfg, ctx, tf.tensor3d(w.actions, [1, h, cfg.actionDim]), w.language ? { language: tf.tensor2d(w.language, [1, cfg.languageDim]) } : {}, { steps: 8, integrator: 'heun', seed: seed + row }).frames;
      disposeContext(ctx);
      return out;
    });
    const pred = predicted.dataSync();
    predicted.dispose();
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
