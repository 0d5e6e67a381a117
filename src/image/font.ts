/** A 3x5 bitmap font (digits, letters, a little punctuation) for labels burned into GIF frames. */
import type { RgbImage } from './decode.js';

// Each glyph: 5 rows of 3 bits (MSB = left column).
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 2, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  a: [2, 5, 7, 5, 5],
  b: [6, 5, 6, 5, 6],
  c: [7, 4, 4, 4, 7],
  d: [6, 5, 5, 5, 6],
  e: [7, 4, 6, 4, 7],
  f: [7, 4, 6, 4, 4],
  g: [7, 4, 5, 5, 7],
  h: [5, 5, 7, 5, 5],
  i: [7, 2, 2, 2, 7],
  j: [1, 1, 1, 5, 7],
  k: [5, 5, 6, 5, 5],
  l: [4, 4, 4, 4, 7],
  m: [5, 7, 7, 5, 5],
  n: [6, 5, 5, 5, 5],
  o: [7, 5, 5, 5, 7],
  p: [7, 5, 7, 4, 4],
  q: [7, 5, 5, 7, 1],
  r: [7, 5, 6, 5, 5],
  s: [7, 4, 7, 1, 7],
  t: [7, 2, 2, 2, 2],
  u: [5, 5, 5, 5, 7],
  v: [5, 5, 5, 5, 2],
  w: [5, 5, 7, 7, 5],
  x: [5, 5, 2, 5, 5],
  y: [5, 5, 2, 2, 2],
  z: [7, 1, 2, 4, 7],
  ' ': [0, 0, 0, 0, 0],
  ':': [0, 2, 0, 2, 0],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  '/': [1, 1, 2, 4, 4],
  '|': [2, 2, 2, 2, 2],
  '%': [5, 1, 2, 4, 5],
  '=': [0, 7, 0, 7, 0],
  '(': [1, 2, 2, 2, 1],
  ')': [4, 2, 2, 2, 4],
  '·': [0, 0, 2, 0, 0],
  ',': [0, 0, 0, 2, 4],
  '+': [0, 2, 7, 2, 0],
  _: [0, 0, 0, 0, 7],
  '>': [4, 2, 1, 2, 4],
  '<': [1, 2, 4, 2, 1],
  '[': [3, 2, 2, 2, 3],
  ']': [6, 2, 2, 2, 6],
  '!': [2, 2, 2, 0, 2],
  '?': [7, 1, 3, 0, 2],
  "'": [2, 2, 0, 0, 0],
  '#': [5, 7, 5, 7, 5],
  '*': [0, 5, 2, 5, 0],
  '~': [0, 3, 6, 0, 0],
  '"': [5, 5, 0, 0, 0],
};

/** Vertical advance of one text line in font pixels (5 rows of glyph + 1 of spacing). */
export const LINE_HEIGHT = 6;

/** Draws `text` (lower-cased; unknown characters as blanks) at (x, y), each font pixel `scale` pixels wide; clipped to the image. */
export function drawText(
  c: RgbImage,
  text: string,
  x: number,
  y: number,
  scale = 1,
  rgb: [number, number, number] = [255, 255, 255],
): void {
  let cx = x;
  for (const ch of text.toLowerCase()) {
    const g = GLYPHS[ch] ?? GLYPHS[' ']!;
    for (let r = 0; r < 5; r++) {
      for (let col = 0; col < 3; col++) {
        if (!(g[r]! & (4 >> col))) continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = cx + col * scale + dx;
            const py = y + r * scale + dy;
            if (px < 0 || py < 0 || px >= c.width || py >= c.height) continue;
            c.data.set(rgb, (py * c.width + px) * 3);
          }
        }
      }
    }
    cx += 4 * scale;
  }
}

export function textWidth(text: string, scale = 1): number {
  return text.length * 4 * scale;
}
