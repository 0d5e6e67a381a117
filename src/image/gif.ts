/** Animated GIF writer (gifenc): equal-size RGB frames, a per-frame delay, written atomically. */
import * as gifencModule from 'gifenc';
import { writeFileAtomic } from '../util/atomic.js';
import type { RgbImage } from './decode.js';

// gifenc is CommonJS: Node exposes its exports as `default`, bundlers (vitest) as named exports.
const mod = gifencModule as unknown as Record<string, unknown> & { default?: Record<string, unknown> };
const { GIFEncoder, quantize, applyPalette } = (mod.GIFEncoder ? mod : mod.default) as unknown as {
  GIFEncoder: () => { writeFrame(index: Uint8Array, w: number, h: number, o: { palette: number[][]; delay: number }): void; finish(): void; bytes(): Uint8Array };
  quantize: (rgba: Uint8Array, n: number) => number[][];
  applyPalette: (rgba: Uint8Array, palette: number[][]) => Uint8Array;
};

export function encodeGif(frames: RgbImage[], delayMs = 333): Uint8Array {
  if (!frames.length) throw new Error('GIF needs at least one frame');
  const { width, height } = frames[0]!;
  const gif = GIFEncoder();
  for (const f of frames) {
    if (f.width !== width || f.height !== height) throw new Error(`GIF frames must share one size: ${f.width}x${f.height} vs ${width}x${height}`);
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba[i * 4] = f.data[i * 3]!;
      rgba[i * 4 + 1] = f.data[i * 3 + 1]!;
      rgba[i * 4 + 2] = f.data[i * 3 + 2]!;
      rgba[i * 4 + 3] = 255;
    }
    const palette = quantize(rgba, 256);
    gif.writeFrame(applyPalette(rgba, palette), width, height, { palette, delay: delayMs });
  }
  gif.finish();
  return gif.bytes();
}

export function writeGif(path: string, frames: RgbImage[], delayMs = 333): void {
  writeFileAtomic(path, encodeGif(frames, delayMs));
}
