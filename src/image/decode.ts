/**
 * JPEG/PNG decoding by magic bytes to RGB uint8. jpeg-js is pure JavaScript (no install-time
 * download); `npm run bench -- --only data` reports its frames/s.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export function imageCodec(bytes: Uint8Array): 'jpeg' | 'png' | 'unknown' {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  return 'unknown';
}

function dropAlpha(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    out[i * 3] = rgba[j]!;
    out[i * 3 + 1] = rgba[j + 1]!;
    out[i * 3 + 2] = rgba[j + 2]!;
  }
  return out;
}

export function decodeImage(bytes: Uint8Array, where = 'image'): RgbImage {
  const codec = imageCodec(bytes);
  try {
    if (codec === 'jpeg') {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      return { data: img.data as Uint8Array, width: img.width, height: img.height };
    }
    if (codec === 'png') {
      const img = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { data: dropAlpha(img.data, img.width, img.height), width: img.width, height: img.height };
    }
  } catch (e) {
    throw new Error(`${where}: cannot decode ${codec} image (${(e as Error).message})`);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(`${where}: not a JPEG or PNG image (starts with ${head || 'nothing'})`);
}
