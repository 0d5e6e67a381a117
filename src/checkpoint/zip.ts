/**
 * Minimal ZIP reader (central directory, stored and deflated entries, ZIP64 sizes):
 * enough for PyTorch's torch.save archives without any native dependency.
 */
import { inflateRawSync } from 'node:zlib';
import { UserError, errorMessage } from '../core/errors.js';

/** The most bytes all deflated entries of one archive may inflate to, by default (1 GiB). */
export const DEFAULT_MAX_INFLATED_BYTES = 2 ** 30;
/** Deflate cannot compress better than about 1032:1; a declared size beyond that is a lie. */
const MAX_DEFLATE_RATIO = 1032;

export interface ZipLimits {
  /** Total bytes that deflated entries may inflate to (default DEFAULT_MAX_INFLATED_BYTES). */
  maxInflatedBytes?: number;
}

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;
  private readonly maxInflatedBytes: number;
  /** Bytes inflated so far, counted against maxInflatedBytes. */
  private inflated = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly source: string,
    limits: ZipLimits = {},
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.maxInflatedBytes = limits.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES;
    try {
      this.readCentralDirectory();
    } catch (e) {
      // Offsets that point outside the file surface as RangeErrors from the DataView.
      if (e instanceof RangeError) this.fail(`corrupt central directory (${e.message})`);
      throw e;
    }
  }

  private fail(msg: string): never {
    throw new UserError(`${this.source}: ${msg}`);
  }

  /** Inflates an entry into at most its declared size, within what is left of the archive's budget. */
  private inflate(entry: ZipEntry, raw: Uint8Array): Uint8Array {
    const left = this.maxInflatedBytes - this.inflated;
    if (entry.size > left)
      this.fail(
        `entry '${entry.name}' declares ${entry.size} bytes uncompressed, over the ${this.maxInflatedBytes}-byte limit for inflated entries (${left} left)`,
      );
    if (entry.size > raw.byteLength * MAX_DEFLATE_RATIO + 1024)
      this.fail(`entry '${entry.name}' declares ${entry.size} bytes from ${raw.byteLength} compressed, more than deflate can produce`);
    let out: Buffer;
    try {
      // maxOutputLength stops inflation at the declared size, so a lying header cannot grow the output.
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
    } catch (e) {
      const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      this.fail(
        tooLarge
          ? `entry '${entry.name}' inflates past its declared ${entry.size} bytes`
          : `entry '${entry.name}' cannot be inflated (${errorMessage(e)})`,
      );
    }
    if (out.byteLength !== entry.size)
      this.fail(`entry '${entry.name}' inflates to ${out.byteLength} bytes, its header declares ${entry.size}`);
    this.inflated += out.byteLength;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  private readCentralDirectory(): void {
    const v = this.view;
    let eocd = -1;
    for (let i = this.bytes.byteLength - 22; i >= Math.max(0, this.bytes.byteLength - 22 - 65535); i--) {
      if (v.getUint32(i, true) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail('not a zip archive (no end-of-central-directory record)');
    let count = v.getUint16(eocd + 10, true);
    let cdOffset = v.getUint32(eocd + 16, true);
    // ZIP64 end-of-central-directory locator sits right before the classic record.
    if (eocd >= 20 && v.getUint32(eocd - 20, true) === 0x07064b50) {
      const z64 = Number(v.getBigUint64(eocd - 12, true));
      if (v.getUint32(z64, true) !== 0x06064b50) this.fail('bad ZIP64 end-of-central-directory record');
      count = Number(v.getBigUint64(z64 + 32, true));
      cdOffset = Number(v.getBigUint64(z64 + 48, true));
    }
    let p = cdOffset;
    for (let n = 0; n < count; n++) {
      if (v.getUint32(p, true) !== 0x02014b50) this.fail(`bad central directory entry ${n} at byte ${p}`);
      const method = v.getUint16(p + 10, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      let localHeaderOffset = v.getUint32(p + 42, true);
      const name = new TextDecoder().decode(this.bytes.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extra field: present values replace the 0xffffffff placeholders, in this order.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = v.getUint16(e, true);
        const len = v.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) {
            size = Number(v.getBigUint64(q, true));
            q += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = Number(v.getBigUint64(q, true));
            q += 8;
          }
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(v.getBigUint64(q, true));
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
      p = eEnd + commentLen;
    }
  }

  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) this.fail(`archive has no entry '${name}'`);
    const v = this.view;
    const h = entry.localHeaderOffset;
    if (h + 30 > this.bytes.byteLength || v.getUint32(h, true) !== 0x04034b50) this.fail(`bad local header for '${name}'`);
    const start = h + 30 + v.getUint16(h + 26, true) + v.getUint16(h + 28, true);
    const raw = this.bytes.subarray(start, start + entry.compressedSize);
    if (raw.byteLength !== entry.compressedSize) this.fail(`entry '${name}' is truncated`);
    if (entry.method === 0) return raw;
    if (entry.method === 8) return this.inflate(entry, raw);
    this.fail(`entry '${name}' uses unsupported compression method ${entry.method}`);
  }
}
