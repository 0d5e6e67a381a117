/**
 * Animated GIF writer (gifenc) and the panel helpers used to build episode, plan and failure GIFs:
 * equal-size RGB frames, a delay per frame, optional caption lines drawn with the built-in bitmap
 * font under each frame, and side-by-side / stacked composition. Files are written atomically.
 */
import * as gifencModule from 'gifenc';
import { writeFileAtomic } from '../util/atomic.js';
import type { RgbImage } from './decode.js';
import { drawText, LINE_HEIGHT } from './font.js';

export { drawText, textWidth } from './font.js';

// gifenc is CommonJS: Node exposes its exports as `default`, bundlers (vitest) as named exports.
const mod = gifencModule as unknown as Record<string, unknown> & { default?: Record<string, unknown> };
const { GIFEncoder, quantize, applyPalette } = (mod.GIFEncoder ? mod : mod.default) as unknown as {
  GIFEncoder: () => {
    writeFrame(index: Uint8Array, w: number, h: number, o: { palette: number[][]; delay: number; repeat?: number }): void;
    finish(): void;
    bytes(): Uint8Array;
  };
  quantize: (rgba: Uint8Array, n: number) => number[][];
  applyPalette: (rgba: Uint8Array, palette: number[][]) => Uint8Array;
};

/** A GIF frame: an RGB image, optionally its own delay and caption lines (drawn in a band below it). */
export interface GifFrame extends RgbImage {
  delayMs?: number;
  lines?: string[];
}

export interface GifOptions {
  /** Delay of frames that do not set their own (ms). GIF stores hundredths of a second. */
  delayMs?: number;
  /** Font pixel size of caption lines. */
  textScale?: number;
  /** Colour of the caption band and panel gaps (grey level). */
  background?: number;
}

const DEFAULT_BACKGROUND = 32;

function checkImage(img: RgbImage, what: string): void {
  if (!(img.width > 0 && img.height > 0 && Number.isInteger(img.width) && Number.isInteger(img.height)))
    throw new Error(`${what}: bad size ${img.width}x${img.height}`);
  if (img.data.length !== img.width * img.height * 3)
    throw new Error(`${what}: ${img.data.length} bytes, expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3}`);
}

/** A blank RGB image filled with grey level `background`. */
export function blank(width: number, height: number, background = DEFAULT_BACKGROUND): RgbImage {
  return { data: new Uint8Array(width * height * 3).fill(background), width, height };
}

/** Copies `src` into `dst` at (x, y), clipped to `dst`. */
export function blit(dst: RgbImage, src: RgbImage, x: number, y: number): void {
  for (let r = 0; r < src.height; r++) {
    const ty = y + r;
    if (ty < 0 || ty >= dst.height) continue;
    const c0 = Math.max(0, -x);
    const c1 = Math.min(src.width, dst.width - x);
    if (c1 <= c0) continue;
    dst.data.set(src.data.subarray((r * src.width + c0) * 3, (r * src.width + c1) * 3), (ty * dst.width + x + c0) * 3);
  }
}

/** Images side by side (left to right), top-aligned, `gap` pixels apart; shorter ones are padded. */
export function hconcat(images: RgbImage[], gap = 0, background = DEFAULT_BACKGROUND): RgbImage {
  if (!images.length) throw new Error('hconcat needs at least one image');
  images.forEach((im, i) => checkImage(im, `hconcat image ${i}`));
  const width = images.reduce((s, im) => s + im.width, 0) + gap * (images.length - 1);
  const out = blank(width, Math.max(...images.map((im) => im.height)), background);
  let x = 0;
  for (const im of images) {
    blit(out, im, x, 0);
    x += im.width + gap;
  }
  return out;
}

/** Images stacked (top to bottom), left-aligned, `gap` pixels apart; narrower ones are padded. */
export function vconcat(images: RgbImage[], gap = 0, background = DEFAULT_BACKGROUND): RgbImage {
  if (!images.length) throw new Error('vconcat needs at least one image');
  images.forEach((im, i) => checkImage(im, `vconcat image ${i}`));
  const height = images.reduce((s, im) => s + im.height, 0) + gap * (images.length - 1);
  const out = blank(Math.max(...images.map((im) => im.width)), height, background);
  let y = 0;
  for (const im of images) {
    blit(out, im, 0, y);
    y += im.height + gap;
  }
  return out;
}

/** Nearest-neighbour upscaling by an integer factor (small simulator frames are unreadable in a GIF at 1x). */
export function upscale(img: RgbImage, factor: number): RgbImage {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new Error(`upscale factor must be a positive integer, got ${factor}`);
  if (factor === 1) return img;
  const out = blank(img.width * factor, img.height * factor);
  for (let y = 0; y < out.height; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < out.width; x++) {
      const s = (sy * img.width + Math.floor(x / factor)) * 3;
      const t = (y * out.width + x) * 3;
      out.data[t] = img.data[s]!;
      out.data[t + 1] = img.data[s + 1]!;
      out.data[t + 2] = img.data[s + 2]!;
    }
  }
  return out;
}

/** Height of a caption band for `lines` lines at font scale `scale`. */
export function captionHeight(lines: number, scale = 1): number {
  return lines > 0 ? lines * LINE_HEIGHT * scale + 2 * scale : 0;
}

/** `img` with a band of `bandLines` text lines below it holding `lines` (white on the background). */
export function withCaption(
  img: RgbImage,
  lines: string[],
  opts: { scale?: number; bandLines?: number; background?: number } = {},
): RgbImage {
  const scale = opts.scale ?? 1;
  const band = captionHeight(Math.max(lines.length, opts.bandLines ?? 0), scale);
  if (band === 0) return img;
  const out = blank(img.width, img.height + band, opts.background ?? DEFAULT_BACKGROUND);
  blit(out, img, 0, 0);
  lines.forEach((line, i) => drawText(out, line, scale, img.height + scale + i * LINE_HEIGHT * scale, scale));
  return out;
}

/**
 * Encodes frames as an endlessly looping GIF (one 256-colour palette per frame). When any frame
 * has caption lines, every frame gets a caption band of the same height so all frames stay one size.
 */
export function encodeGif(frames: GifFrame[], opts: GifOptions | number = {}): Uint8Array {
  const o: GifOptions = typeof opts === 'number' ? { delayMs: opts } : opts;
  if (!frames.length) throw new Error('GIF needs at least one frame');
  const { width, height } = frames[0]!;
  const bandLines = Math.max(0, ...frames.map((f) => f.lines?.length ?? 0));
  const gif = GIFEncoder();
  frames.forEach((f, i) => {
    checkImage(f, `GIF frame ${i}`);
    if (f.width !== width || f.height !== height)
      throw new Error(`GIF frame ${i}: ${f.width}x${f.height}, but frame 0 is ${width}x${height}; frames must share one size`);
    const img = bandLines ? withCaption(f, f.lines ?? [], { scale: o.textScale, bandLines, background: o.background }) : f;
    const n = img.width * img.height;
    const rgba = new Uint8Array(n * 4);
    for (let p = 0; p < n; p++) {
      rgba[p * 4] = img.data[p * 3]!;
      rgba[p * 4 + 1] = img.data[p * 3 + 1]!;
      rgba[p * 4 + 2] = img.data[p * 3 + 2]!;
      rgba[p * 4 + 3] = 255;
    }
    const delay = f.delayMs ?? o.delayMs ?? 333;
    if (!(delay >= 0 && Number.isFinite(delay))) throw new Error(`GIF frame ${i}: bad delay ${delay} ms`);
    const palette = quantize(rgba, 256);
    gif.writeFrame(applyPalette(rgba, palette), img.width, img.height, { palette, delay, repeat: 0 });
  });
  gif.finish();
  return gif.bytes();
}

/** Writes an animated GIF atomically (temp file + rename). `opts` may be the delay in ms for every frame. */
export function writeGif(path: string, frames: GifFrame[], opts: GifOptions | number = {}): void {
  writeFileAtomic(path, encodeGif(frames, opts));
}
