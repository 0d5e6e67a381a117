/**
 * Builders for hostile inputs: TFRecord framing with any length field, minimal zip archives
 * (stored or deflated, with any declared size) for torch.save `.pt` files, pickle opcodes, and
 * image headers that declare any size. Each builds a tiny file that claims something large.
 */
import { deflateRawSync } from 'node:zlib';
import { maskedCrc32c } from '../../src/data/crc32c.js';

/** A TFRecord header (length + its valid masked CRC) declaring `length` data bytes. */
export function recordHeader(length: bigint): Uint8Array {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, length, true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  return out;
}

export interface ZipFile {
  name: string;
  data: Uint8Array;
  /** Deflate the data (method 8) instead of storing it. */
  deflate?: boolean;
  /** The uncompressed size written in the headers (default: the true size). */
  declaredSize?: number;
}

/** A zip archive (no data descriptors, CRC fields zero: the reader under test does not check them). */
export function zipArchive(files: ZipFile[]): Uint8Array {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(f.name);
    const body = f.deflate ? deflateRawSync(f.data) : Buffer.from(f.data);
    const size = f.declaredSize ?? f.data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(f.deflate ? 8 : 0, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(f.deflate ? 8 : 0, 10);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    offset += 30 + name.length + body.length;
  }
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cdBytes, eocd]));
}

/** A torch.save-style `.pt` whose `archive/data.pkl` holds `pickle`. */
export function torchPt(pickle: Uint8Array, opts: Omit<ZipFile, 'name' | 'data'> = {}): Uint8Array {
  return zipArchive([{ name: 'archive/data.pkl', data: pickle, ...opts }]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
};

/** PROTO 2, the given opcodes, STOP. */
export function pickleOf(...parts: (Uint8Array | number[] | string)[]): Uint8Array {
  const body = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p)));
  return new Uint8Array(Buffer.concat([Buffer.from([0x80, 0x02]), ...body, Buffer.from('.')]));
}

/** LONG4 with an n-byte little-endian argument of `fill` bytes. */
export function long4(n: number, fill = 0x11): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from([0x8b]), u32(n), Buffer.alloc(n, fill)]));
}

/** Dicts nested `depth` deep: {'a': {'a': ... {}}}, built with EMPTY_DICT, key, ..., SETITEM x depth. */
export function nestedDicts(depth: number): Uint8Array {
  const key = Buffer.concat([Buffer.from([0x58]), u32(1), Buffer.from('a')]); // BINUNICODE 'a'
  const open = Buffer.concat([Buffer.from('}'), key]);
  return pickleOf(Buffer.concat([Buffer.alloc(open.length * depth).fill(open), Buffer.from('}'), Buffer.alloc(depth, 's')]));
}

/** A dict that holds itself: EMPTY_DICT, BINPUT 0, key, BINGET 0, SETITEM. */
export function selfContainingDict(): Uint8Array {
  return pickleOf([0x7d, 0x71, 0x00], Buffer.concat([Buffer.from([0x58]), u32(1), Buffer.from('a')]), [0x68, 0x00, 0x73]);
}

/** PNG signature + an IHDR chunk declaring width x height, and nothing else. */
export function pngHeader(width: number, height: number): Uint8Array {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b[24] = 8; // bit depth
  b[25] = 2; // RGB
  return new Uint8Array(b);
}

/** SOI, APP0, a baseline frame header (SOF0) declaring width x height with 3 components, EOI. */
export function jpegHeader(width: number, height: number): Uint8Array {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x22,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
  ]);
  return new Uint8Array(Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.from([0xff, 0xd9])]));
}
