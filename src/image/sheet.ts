/** A contact sheet: equally sized frames tiled row by row into one PNG (for looking at an episode at a glance). */
import { writeFileAtomic } from '../util/atomic.js';
import { Canvas } from './canvas.js';
import type { RgbImage } from './decode.js';
import { encodePng } from './png.js';

export function contactSheet(frames: RgbImage[], columns: number, gap = 2): Canvas {
  if (!frames.length) throw new Error('contact sheet: no frames');
  const { width: w, height: h } = frames[0]!;
  const cols = Math.max(1, Math.min(columns, frames.length));
  const rows = Math.ceil(frames.length / cols);
  const c = new Canvas(cols * (w + gap) + gap, rows * (h + gap) + gap, 0);
  frames.forEach((f, i) => c.draw(f, gap + (i % cols) * (w + gap), gap + Math.floor(i / cols) * (h + gap)));
  return c;
}

export function writeContactSheet(path: string, frames: RgbImage[], columns: number): void {
  const c = contactSheet(frames, columns);
  writeFileAtomic(path, encodePng(c.data, c.width, c.height));
}
