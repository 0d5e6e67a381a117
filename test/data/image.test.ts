import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCard } from '../../src/data/card.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { decodeImage, JPEG_DECODERS, jpegDecoderName, setJpegDecoder } from '../../src/image/decode.js';
import { normaliseToUnit, resizeRgb, toModelFrame } from '../../src/image/resize.js';
import { sharedFixture } from '../helpers/fixtures.js';

async function rt1Frames(): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const ep of readEpisodes(sharedFixture('rt1-fractal-sample'), loadCard('rt1')))
    out.push(...(ep.fields.get('steps/observation/image')!.values as Uint8Array[]));
  return out;
}

describe('image decoding', () => {
  afterEach(() => setJpegDecoder(undefined));

  it('the default JPEG decoder is the native one where it loads, else jpeg-js; SELFFLOW_JPEG_DECODER overrides', () => {
    let native = true;
    try {
      createRequire(import.meta.url)('@napi-rs/image');
    } catch {
      native = false;
    }
    expect(jpegDecoderName()).toBe(native ? 'napi' : 'jpeg-js');
    const saved = process.env.SELFFLOW_JPEG_DECODER;
    try {
      process.env.SELFFLOW_JPEG_DECODER = 'jpeg-js';
      setJpegDecoder(undefined);
      expect(jpegDecoderName()).toBe('jpeg-js');
      process.env.SELFFLOW_JPEG_DECODER = 'libjpeg';
      setJpegDecoder(undefined);
      expect(() => jpegDecoderName()).toThrow('SELFFLOW_JPEG_DECODER=libjpeg: expected one of napi, jpeg-js');
    } finally {
      if (saved === undefined) delete process.env.SELFFLOW_JPEG_DECODER;
      else process.env.SELFFLOW_JPEG_DECODER = saved;
    }
  });

  it.each(JPEG_DECODERS)('%s decodes every RT-1 fixture frame to 256x320 RGB within 1.0 of the expected mean pixel', async (decoder) => {
    setJpegDecoder(decoder);
    const expected = (
      JSON.parse(readFileSync(sharedFixture('rt1-fractal-sample/expected-summary.json'), 'utf8')) as {
        episodes: { image_mean_per_step: number[] }[];
      }
    ).episodes.flatMap((e) => e.image_mean_per_step);
    const frames = await rt1Frames();
    expect(frames.length).toBe(expected.length);
    frames.forEach((bytes, i) => {
      const img = decodeImage(bytes);
      expect([img.height, img.width, img.data.length]).toEqual([256, 320, 256 * 320 * 3]);
      expect(img.data.constructor).toBe(Uint8Array);
      let s = 0;
      for (const v of img.data) s += v;
      expect(Math.abs(s / img.data.length - expected[i]!), `frame ${i}`).toBeLessThan(1);
    });
  });

  it.each(JPEG_DECODERS)('%s rejects a truncated JPEG, naming where it came from', async (decoder) => {
    setJpegDecoder(decoder);
    const f = (await rt1Frames())[0]!;
    expect(() => decodeImage(f.subarray(0, f.length >> 1), 'ep#0 step 3')).toThrow(/^ep#0 step 3: cannot decode jpeg image/);
  });

  it('detects PNG by magic bytes and drops alpha; unknown bytes are a clear error', () => {
    const png = new PNG({ width: 2, height: 1 });
    png.data.set([10, 20, 30, 255, 40, 50, 60, 0]);
    const img = decodeImage(new Uint8Array(PNG.sync.write(png)));
    expect([img.width, img.height, Array.from(img.data)]).toEqual([2, 1, [10, 20, 30, 40, 50, 60]]);
    expect(() =>
      decodeImage(Uint8Array.from([0x47, 0x49, 0x46, 0x38, 0x39]), 'x.tfrecord: record 4 feature steps/observation/image'),
    ).toThrow('x.tfrecord: record 4 feature steps/observation/image: not a JPEG or PNG image (starts with 47 49 46 38)');
  });
});

describe('resize and normalisation', () => {
  it('area downscale averages exactly over fractional footprints', () => {
    // 3 -> 2 pixels: each target pixel covers 1.5 source pixels.
    const img = { width: 3, height: 1, data: Uint8Array.from([0, 0, 0, 90, 90, 90, 180, 180, 180]) };
    expect(Array.from(resizeRgb(img, 1, 2))).toEqual([30, 30, 30, 150, 150, 150]);
  });

  it('bilinear upscale keeps the end values and interpolates between', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([0, 0, 0, 100, 100, 100]) };
    expect(Array.from(resizeRgb(img, 1, 4)).filter((_, i) => i % 3 === 0)).toEqual([0, 25, 75, 100]);
  });

  it('a model frame lies in [-1, 1]: 0 -> -1, 255 -> 1', () => {
    expect(Array.from(normaliseToUnit(Float32Array.from([0, 127.5, 255])))).toEqual([-1, 0, 1]);
    const f = toModelFrame({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3).fill(255) }, 2, 2);
    expect(Array.from(f)).toEqual(new Array(12).fill(1));
  });
});
