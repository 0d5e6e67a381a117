/**
 * Resizing RGB uint8 images. Downscaling averages every source pixel a target pixel covers
 * (area filter, exact for fractional ratios) so 256x320 -> 32x40 does not alias; upscaling is bilinear.
 */
import type { RgbImage } from './decode.js';

function axisWeights(src: number, dst: number): { start: number; weights: number[] }[] {
  const scale = src / dst;
  return Array.from({ length: dst }, (_, i) => {
    const a = i * scale;
    const b = (i + 1) * scale;
    const start = Math.floor(a);
    const weights: number[] = [];
    for (let s = start; s < Math.min(src, Math.ceil(b)); s++) weights.push((Math.min(b, s + 1) - Math.max(a, s)) / scale);
    return { start, weights };
  });
}

function bilinearAxis(src: number, dst: number): { start: number; weights: number[] }[] {
  const scale = src / dst;
  return Array.from({ length: dst }, (_, i) => {
    const x = Math.max(0, (i + 0.5) * scale - 0.5);
    const x0 = Math.min(src - 1, Math.floor(x));
    const f = Math.min(1, x - x0);
    return x0 + 1 < src ? { start: x0, weights: [1 - f, f] } : { start: x0, weights: [1] };
  });
}

/** Resize to height x width; values stay in the 0..255 range, as floats. */
export function resizeRgb(img: RgbImage, height: number, width: number): Float32Array {
  const ys = img.height >= height ? axisWeights(img.height, height) : bilinearAxis(img.height, height);
  const xs = img.width >= width ? axisWeights(img.width, width) : bilinearAxis(img.width, width);
  const out = new Float32Array(height * width * 3);
  const row = new Float32Array(img.width * 3);
  for (let y = 0; y < height; y++) {
    row.fill(0);
    const wy = ys[y]!;
    for (let k = 0; k < wy.weights.length; k++) {
      const base = (wy.start + k) * img.width * 3;
      const w = wy.weights[k]!;
      for (let i = 0; i < img.width * 3; i++) row[i]! += w * img.data[base + i]!;
    }
    for (let x = 0; x < width; x++) {
      const wx = xs[x]!;
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < wx.weights.length; k++) s += wx.weights[k]! * row[(wx.start + k) * 3 + c]!;
        out[(y * width + x) * 3 + c] = s;
      }
    }
  }
  return out;
}

/** uint8-range floats to [-1, 1] in place. */
export function normaliseToUnit(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = values[i]! / 127.5 - 1;
  return values;
}

/** Decoded RGB to the model's input: resized and scaled to [-1, 1]. */
export function toModelFrame(img: RgbImage, height: number, width: number): Float32Array {
  return normaliseToUnit(resizeRgb(img, height, width));
}
