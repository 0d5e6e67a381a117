/** PNG encoding (pngjs) of RGB uint8 frames: rendered camera views, validation strips. */
import { PNG } from 'pngjs';

/** RGB uint8 (row-major, 3 bytes a pixel) to PNG bytes. */
export function encodePng(rgb: Uint8Array, width: number, height: number): Uint8Array {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0))
    throw new Error(`encodePng: bad size ${width}x${height}`);
  if (rgb.length !== width * height * 3)
    throw new Error(`encodePng: ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`);
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = rgb[i * 3]!;
    png.data[i * 4 + 1] = rgb[i * 3 + 1]!;
    png.data[i * 4 + 2] = rgb[i * 3 + 2]!;
    png.data[i * 4 + 3] = 255;
  }
  return new Uint8Array(PNG.sync.write(png));
}
