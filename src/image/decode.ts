/**
 * JPEG/PNG decoding by magic bytes to RGB uint8.
 *
 * JPEG decoder picked by measurement (`npm run bench -- --only data`, 256x320 RT-1 frames, one
 * core): @napi-rs/image (a native binary inside its npm package, synchronous) ~1,300 frames/s,
 * @cwasm/jpeg-turbo (wasm) ~750, sharp ~520 (asynchronous), jpeg-js (pure JS) ~155. So
 * @napi-rs/image is the default; jpeg-js stays as the fallback for platforms without a prebuilt
 * binary and can be forced with SELFFLOW_JPEG_DECODER=jpeg-js.
 */
import { createRequire } from 'node:module';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { UserError } from '../core/errors.js';

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type JpegDecoderName = 'napi' | 'jpeg-js';
export const JPEG_DECODERS: JpegDecoderName[] = ['napi', 'jpeg-js'];

export function imageCodec(bytes: Uint8Array): 'jpeg' | 'png' | 'unknown' {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  return 'unknown';
}

/** 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) interleaved channels to RGB. */
function toRgb(src: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  if (channels === 3) return src;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const j = i * channels;
    const gray = channels < 3;
    out[i * 3] = src[j]!;
    out[i * 3 + 1] = src[gray ? j : j + 1]!;
    out[i * 3 + 2] = src[gray ? j : j + 2]!;
  }
  return out;
}

interface NapiTransformer {
  metadataSync(): { width: number; height: number };
  rawPixelsSync(): Uint8Array;
}
type NapiImage = { Transformer: new (input: Uint8Array) => NapiTransformer };

let napi: NapiImage | null | undefined;
let napiError = '';

/** Loads @napi-rs/image once; null when its binary has no build for this platform. */
function loadNapi(): NapiImage | null {
  if (napi === undefined) {
    try {
      napi = createRequire(import.meta.url)('@napi-rs/image') as NapiImage;
    } catch (e) {
      napi = null;
      napiError = (e as Error).message.split('\n')[0]!;
    }
  }
  return napi;
}

let chosen: JpegDecoderName | undefined;

/** The JPEG decoder in use: SELFFLOW_JPEG_DECODER if set, else @napi-rs/image when it loads, else jpeg-js. */
export function jpegDecoderName(): JpegDecoderName {
  if (chosen) return chosen;
  const env = process.env.SELFFLOW_JPEG_DECODER;
  if (env !== undefined && env !== '') {
    if (!JPEG_DECODERS.includes(env as JpegDecoderName))
      throw new UserError(`SELFFLOW_JPEG_DECODER=${env}: expected one of ${JPEG_DECODERS.join(', ')}`);
    if (env === 'napi' && !loadNapi()) throw new UserError(`SELFFLOW_JPEG_DECODER=napi: @napi-rs/image does not load here (${napiError})`);
    return (chosen = env as JpegDecoderName);
  }
  return (chosen = loadNapi() ? 'napi' : 'jpeg-js');
}

/** Forces a decoder (benchmarks compare them); undefined returns to the default choice. */
export function setJpegDecoder(name: JpegDecoderName | undefined): void {
  if (name === 'napi' && !loadNapi()) throw new UserError(`@napi-rs/image does not load here (${napiError})`);
  chosen = name;
}

/** JPEG streams end with FF D9; some writers pad a few bytes after it. */
function hasEndMarker(b: Uint8Array): boolean {
  for (let i = b.length - 2; i >= Math.max(2, b.length - 64); i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

function decodeJpeg(bytes: Uint8Array, decoder: JpegDecoderName): RgbImage {
  if (decoder === 'napi') {
    // The native decoder fills in a truncated stream instead of failing; TensorFlow (and jpeg-js) reject it.
    if (!hasEndMarker(bytes)) throw new Error('truncated JPEG (no end-of-image marker FF D9)');
    const Transformer = loadNapi()!.Transformer;
    const t = new Transformer(bytes);
    const { width, height } = t.metadataSync();
    const raw = t.rawPixelsSync();
    const channels = raw.length / (width * height);
    if (!Number.isInteger(channels) || channels < 1 || channels > 4)
      throw new Error(`unexpected ${raw.length} decoded bytes for ${width}x${height}`);
    const rgb = toRgb(raw, width, height, channels);
    // A plain Uint8Array view (Buffer's slice() shares memory, unlike Uint8Array's).
    return { data: rgb === raw ? new Uint8Array(raw.buffer, raw.byteOffset, raw.length) : rgb, width, height };
  }
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return { data: img.data, width: img.width, height: img.height };
}

/** The largest image decoded by default: 4096x4096 pixels (a 48 MiB RGB buffer). */
export const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

export interface DecodeOptions {
  /** Images that declare more pixels than this are refused before any decoding. */
  maxPixels?: number;
}

const JPEG_SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf, 0xde]);

/**
 * The width and height a PNG (IHDR) or JPEG (every frame header before the first scan) declares,
 * read from the headers alone; undefined when the headers do not hold a size.
 */
export function declaredImageSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const codec = imageCodec(bytes);
  if (codec === 'png') {
    // Signature (8 bytes), then the IHDR chunk: length (4), type (4), width (4), height (4), big-endian.
    if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
    return { width: view.getUint32(16, false), height: view.getUint32(20, false) };
  }
  if (codec !== 'jpeg') return undefined;
  let size: { width: number; height: number } | undefined;
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) {
      p++; // stray bytes between segments: decoders skip to the next marker, and so does this scan
      continue;
    }
    const marker = bytes[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return size; // start of scan / end of image: the frame headers are behind us
    const length = view.getUint16(p + 2, false);
    if (JPEG_SOF_MARKERS.has(marker) && p + 9 <= bytes.length) {
      // Segment: length (2), precision (1), height (2), width (2). The largest frame counts.
      const height = view.getUint16(p + 5, false);
      const width = view.getUint16(p + 7, false);
      if (!size || width * height > size.width * size.height) size = { width, height };
    }
    p += 2 + length;
  }
  return size;
}

/** An image whose headers declare more pixels than allowed: in a dataset, a corrupt record like any other. */
export class ImageTooLargeError extends UserError {}

/** Refuses an image whose headers declare more than `maxPixels` pixels, before it is decoded. */
export function checkImageSize(bytes: Uint8Array, where: string, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): void {
  const size = declaredImageSize(bytes);
  if (size && (size.width === 0 || size.height === 0))
    throw new Error(`${where}: image declares ${size.width}x${size.height} pixels (an empty image); it was not decoded`);
  if (size && size.width * size.height > maxPixels) {
    throw new ImageTooLargeError(
      `${where}: image declares ${size.width}x${size.height} pixels (${size.width * size.height}), over the limit of ${maxPixels} pixels; it was not decoded`,
    );
  }
}

/**
 * Decodes JPEG or PNG bytes to RGB; `where` names the record/feature in errors. The declared
 * dimensions are checked against `maxPixels` first, so a small file cannot demand a huge buffer.
 */
export function decodeImage(bytes: Uint8Array, where = 'image', opts: DecodeOptions = {}): RgbImage {
  const codec = imageCodec(bytes);
  checkImageSize(bytes, where, opts.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS);
  try {
    if (codec === 'jpeg') return decodeJpeg(bytes, jpegDecoderName());
    if (codec === 'png') {
      const img = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { data: toRgb(img.data, img.width, img.height, 4), width: img.width, height: img.height };
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new Error(`${where}: cannot decode ${codec} image (${(e as Error).message})`);
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new Error(`${where}: not a JPEG or PNG image (starts with ${head || 'nothing'})`);
}
