/**
 * JPEG encoding of RGB pictures, and the round trip a picture makes through a JPEG store or a
 * compressed camera stream (encode, then decode).
 */
import jpeg from 'jpeg-js';
import { decodeImage } from './decode.js';

/** The quality `sim collect` stores its episodes' pictures at. */
export const COLLECT_JPEG_QUALITY = 92;

/** RGB to JPEG at `quality` (1-100; jpeg-js wants RGBA). */
export function encodeJpeg(rgb: Uint8Array, width: number, height: number, quality = 85): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    rgba[j] = rgb[i * 3]!;
    rgba[j + 1] = rgb[i * 3 + 1]!;
    rgba[j + 2] = rgb[i * 3 + 2]!;
    rgba[j + 3] = 255;
  }
  const out = jpeg.encode({ data: rgba, width, height }, quality).data;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * The RGB picture as it comes back from a JPEG of `quality`, decoded by the decoder that reads
 * training episodes (decodeImage): what a model trained on stored JPEGs saw. Decoders differ by a
 * pixel value here and there, and the state reader's readings move with that (docs/results.md, item 38).
 */
export function jpegRoundTrip(rgb: Uint8Array, width: number, height: number, quality: number): Uint8Array {
  return decodeImage(encodeJpeg(rgb, width, height, quality), 'camera frame').data;
}
