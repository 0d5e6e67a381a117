import { describe, expect, it } from 'vitest';
import { decodeExample } from '../../src/data/example.js';
import { readTfRecords } from '../../src/data/tfrecord.js';
import { DEFAULT_MAX_IMAGE_PIXELS, declaredImageSize, decodeImage } from '../../src/image/decode.js';
import { encodePng } from '../../src/image/png.js';
import { UserError } from '../../src/core/errors.js';
import { jpegHeader, pngHeader } from '../helpers/crafted.js';
import { sharedFixture } from '../helpers/fixtures.js';

async function fixtureJpeg(): Promise<Uint8Array> {
  for await (const r of readTfRecords(sharedFixture('rt1-fractal-sample/fractal20220817_data-train.tfrecord-00000-of-00001'))) {
    return (decodeExample(r.data).get('steps/observation/image')!.value as Uint8Array[])[0]!;
  }
  throw new Error('fixture has no records');
}

describe('image size limit', () => {
  it('a PNG declaring 16000x16000 and a JPEG declaring 8000x8000 are refused from their headers, naming the source and size', () => {
    for (const [bytes, size] of [
      [pngHeader(16000, 16000), '16000x16000'],
      [jpegHeader(8000, 8000), '8000x8000'],
    ] as const) {
      let err: unknown;
      try {
        decodeImage(bytes, 'setGoal.images[0]');
      } catch (e) {
        err = e;
      }
      // The headers hold no pixel data: reaching a decoder would give a "cannot decode" error instead.
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe(
        `setGoal.images[0]: image declares ${size} pixels (${Number(size.split('x')[0]) ** 2}), over the limit of ${DEFAULT_MAX_IMAGE_PIXELS} pixels; it was not decoded`,
      );
    }
    expect(DEFAULT_MAX_IMAGE_PIXELS).toBe(4096 * 4096);
  });

  it('reads the declared size of real JPEG and PNG files, and the limit is a parameter', async () => {
    const jpeg = await fixtureJpeg();
    expect(declaredImageSize(jpeg)).toEqual({ width: 320, height: 256 });
    expect(decodeImage(jpeg).width).toBe(320);
    expect(() => decodeImage(jpeg, 'goal', { maxPixels: 320 * 255 })).toThrow(/goal: image declares 320x256 pixels/);
    const png = encodePng(new Uint8Array(7 * 5 * 3), 7, 5);
    expect(declaredImageSize(png)).toEqual({ width: 7, height: 5 });
    expect(decodeImage(png, 'goal', { maxPixels: 35 }).height).toBe(5);
    expect(() => decodeImage(png, 'goal', { maxPixels: 34 })).toThrow(UserError);
  });

  it('finds the frame header past stray bytes and reports an empty image as undecodable', () => {
    const j = jpegHeader(9000, 9000);
    // Garbage between APP0 and SOF0: decoders skip to the next marker, so the size check must too.
    const padded = new Uint8Array([...j.subarray(0, 20), 0x00, 0x13, 0x37, ...j.subarray(20)]);
    expect(declaredImageSize(padded)).toEqual({ width: 9000, height: 9000 });
    expect(() => decodeImage(jpegHeader(0, 100), 'x')).toThrow(/x: image declares 0x100 pixels \(an empty image\)/);
  });
});
