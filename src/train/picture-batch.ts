/**
 * Mini-batches of stored uint8 pictures as [B, H, W, 3] tensors in [-1, 1], optionally each shifted
 * by a few pixels (edge pixels repeated): the random-shift augmentation image policies train with,
 * so that a policy does not key on exact pixel positions of a few hundred layouts.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';

export function pictureBatch(
  pixels: Uint8Array[],
  rows: number[],
  height: number,
  width: number,
  shift?: { rng: Rng; max: number },
): tf.Tensor4D {
  const px = height * width * 3;
  const data = new Float32Array(rows.length * px);
  rows.forEach((r, i) => {
    const src = pixels[r]!;
    const dy = shift ? Math.floor(shift.rng.uniform(-shift.max, shift.max + 1)) : 0;
    const dx = shift ? Math.floor(shift.rng.uniform(-shift.max, shift.max + 1)) : 0;
    for (let y = 0; y < height; y++) {
      const sy = Math.min(height - 1, Math.max(0, y + dy));
      for (let x = 0; x < width; x++) {
        const sx = Math.min(width - 1, Math.max(0, x + dx));
        const o = i * px + (y * width + x) * 3;
        const s = (sy * width + sx) * 3;
        data[o] = src[s]! / 127.5 - 1;
        data[o + 1] = src[s + 1]! / 127.5 - 1;
        data[o + 2] = src[s + 2]! / 127.5 - 1;
      }
    }
  });
  return tf.tensor4d(data, [rows.length, height, width, 3]);
}
