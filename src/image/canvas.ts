/** A tiny RGB canvas for composing panels (validation strips, plan GIFs). */
import type { RgbImage } from './decode.js';

export class Canvas implements RgbImage {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background = 32,
  ) {
    this.data = new Uint8Array(width * height * 3).fill(background);
  }

  /** Draws `img` at (x, y), scaled up by an integer factor (nearest neighbour). */
  draw(img: RgbImage, x: number, y: number, scale = 1): void {
    for (let yy = 0; yy < img.height * scale; yy++) {
      const ty = y + yy;
      if (ty < 0 || ty >= this.height) continue;
      const sy = Math.floor(yy / scale);
      for (let xx = 0; xx < img.width * scale; xx++) {
        const tx = x + xx;
        if (tx < 0 || tx >= this.width) continue;
        const s = (sy * img.width + Math.floor(xx / scale)) * 3;
        const t = (ty * this.width + tx) * 3;
        this.data[t] = img.data[s]!;
        this.data[t + 1] = img.data[s + 1]!;
        this.data[t + 2] = img.data[s + 2]!;
      }
    }
  }
}

/** [-1, 1] floats (h x w x 3) to an RGB image. */
export function unitToImage(values: ArrayLike<number>, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round((values[i]! + 1) * 127.5)));
  return { data, width, height };
}
