import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { drawText } from '../../src/image/font.js';
import { blank, captionHeight, encodeGif, hconcat, upscale, vconcat, withCaption, writeGif } from '../../src/image/gif.js';
import { encodePng } from '../../src/image/png.js';

function solid(width: number, height: number, rgb: [number, number, number]) {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height };
}

const px = (img: { data: Uint8Array; width: number }, x: number, y: number) => [
  ...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3),
];

/** Walks a GIF's blocks: logical screen size, and per image its size and the delay of the graphic control extension before it. */
function parseGif(b: Uint8Array): {
  width: number;
  height: number;
  frames: { width: number; height: number; delayCs: number }[];
  loops: boolean;
} {
  expect(new TextDecoder().decode(b.subarray(0, 6))).toBe('GIF89a');
  const u16 = (o: number) => b[o]! | (b[o + 1]! << 8);
  let o = 13;
  if (b[10]! & 0x80) o += 3 << ((b[10]! & 7) + 1);
  const frames: { width: number; height: number; delayCs: number }[] = [];
  let delay = -1;
  let loops = false;
  const skipSubBlocks = () => {
    while (b[o]! !== 0) o += b[o]! + 1;
    o++;
  };
  for (;;) {
    const tag = b[o++]!;
    if (tag === 0x3b) break;
    if (tag === 0x21) {
      const label = b[o++]!;
      if (label === 0xf9) delay = u16(o + 2);
      if (label === 0xff && new TextDecoder().decode(b.subarray(o + 1, o + 12)) === 'NETSCAPE2.0') loops = true;
      skipSubBlocks();
    } else if (tag === 0x2c) {
      frames.push({ width: u16(o + 4), height: u16(o + 6), delayCs: delay });
      const packed = b[o + 8]!;
      o += 9;
      if (packed & 0x80) o += 3 << ((packed & 7) + 1);
      o++; // LZW minimum code size
      skipSubBlocks();
    } else throw new Error(`unexpected GIF block 0x${tag.toString(16)} at ${o - 1}`);
  }
  return { width: u16(6), height: u16(8), frames, loops };
}

describe('image encoders', () => {
  it('encodePng round-trips RGB pixels through pngjs', () => {
    const img = solid(5, 3, [10, 200, 30]);
    img.data.set([255, 0, 128], (2 * 5 + 4) * 3);
    const back = PNG.sync.read(Buffer.from(encodePng(img.data, 5, 3)));
    expect([back.width, back.height]).toEqual([5, 3]);
    expect([...back.data.subarray(0, 4)]).toEqual([10, 200, 30, 255]);
    expect([...back.data.subarray((2 * 5 + 4) * 4, (2 * 5 + 4) * 4 + 4)]).toEqual([255, 0, 128, 255]);
    expect(() => encodePng(img.data, 4, 3)).toThrow(/45 bytes, expected 4x3x3 = 36/);
  });

  it('hconcat and vconcat place panels side by side and stacked, padding with the background', () => {
    const a = solid(2, 2, [255, 0, 0]);
    const b = solid(3, 1, [0, 255, 0]);
    const h = hconcat([a, b], 1, 7);
    expect([h.width, h.height]).toEqual([6, 2]);
    expect(px(h, 0, 0)).toEqual([255, 0, 0]);
    expect(px(h, 2, 0)).toEqual([7, 7, 7]); // the gap
    expect(px(h, 3, 0)).toEqual([0, 255, 0]);
    expect(px(h, 3, 1)).toEqual([7, 7, 7]); // b is shorter: padded
    const v = vconcat([a, b], 0, 9);
    expect([v.width, v.height]).toEqual([3, 3]);
    expect(px(v, 2, 0)).toEqual([9, 9, 9]);
    expect(px(v, 2, 2)).toEqual([0, 255, 0]);
    expect(() => hconcat([{ data: new Uint8Array(5), width: 2, height: 2 }])).toThrow(/hconcat image 0: 5 bytes/);
  });

  it('drawText sets glyph pixels (and clips at the border); upscale repeats pixels', () => {
    const img = blank(12, 7, 0);
    drawText(img, '1', 0, 0, 1, [255, 255, 255]);
    // '1' is [010, 110, 010, 010, 111]: the top-middle pixel is lit, the top-left one is not.
    expect(px(img, 1, 0)).toEqual([255, 255, 255]);
    expect(px(img, 0, 0)).toEqual([0, 0, 0]);
    expect(px(img, 0, 4)).toEqual([255, 255, 255]);
    drawText(img, 'step 3 · 180 ms', 8, 4, 2); // runs off the image: must not throw
    const big = upscale(solid(1, 1, [1, 2, 3]), 3);
    expect([big.width, big.height, ...px(big, 2, 2)]).toEqual([3, 3, 1, 2, 3]);
  });

  it('withCaption adds a band of text lines under the frame', () => {
    const f = withCaption(solid(40, 10, [0, 0, 255]), ['real | goal'], { scale: 1, background: 0 });
    expect([f.width, f.height]).toEqual([40, 10 + captionHeight(1)]);
    expect(px(f, 0, 0)).toEqual([0, 0, 255]);
    const band = f.data.subarray(10 * 40 * 3);
    expect(band.some((v) => v === 255)).toBe(true);
  });

  it('encodeGif writes every frame with its own delay, captions growing all frames alike', () => {
    const frames = [
      { ...solid(16, 8, [255, 0, 0]), delayMs: 100, lines: ['step 1'] },
      { ...solid(16, 8, [0, 255, 0]) },
      { ...solid(16, 8, [0, 0, 255]), delayMs: 1000, lines: ['step 3', '180 ms'] },
    ];
    const g = parseGif(encodeGif(frames, { delayMs: 250 }));
    const h = 8 + captionHeight(2);
    expect([g.width, g.height, g.loops]).toEqual([16, h, true]);
    expect(g.frames).toEqual([
      { width: 16, height: h, delayCs: 10 },
      { width: 16, height: h, delayCs: 25 },
      { width: 16, height: h, delayCs: 100 },
    ]);
    expect(() => encodeGif([solid(4, 4, [0, 0, 0]), solid(4, 5, [0, 0, 0])])).toThrow(/frame 1: 4x5, but frame 0 is 4x4/);
  });

  it('writeGif writes the file atomically (no temp file left behind)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-gif-'));
    writeGif(join(dir, 'a.gif'), [solid(4, 4, [9, 9, 9])], 333);
    expect(parseGif(new Uint8Array(readFileSync(join(dir, 'a.gif')))).frames).toEqual([{ width: 4, height: 4, delayCs: 33 }]);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir)).toEqual(['a.gif']);
  });
});
