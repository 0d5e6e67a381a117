/**
 * TFRecord files: `uint64 length | masked crc32c(length) | data | masked crc32c(data)`.
 * Read as a stream (one record in memory at a time) with both CRCs verified; written
 * to a temp file renamed into place on close.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { UserError, errorMessage } from '../core/errors.js';
import { maskedCrc32c } from './crc32c.js';

export interface TfRecord {
  data: Uint8Array;
  /** 0-based record index within the shard. */
  index: number;
  /** Byte offset of the record's length field. */
  offset: number;
  shard: string;
}

export class CorruptRecordError extends Error {
  readonly userFacing = true;
  constructor(
    readonly shard: string,
    readonly index: number,
    readonly offset: number,
    readonly reason: string,
    /** Whether reading can continue with the next record (false: the framing itself is lost). */
    readonly resumable: boolean,
  ) {
    super(`${shard}: record ${index} at byte ${offset}: ${reason}`);
    this.name = 'CorruptRecordError';
  }
}

/** Buffered sequential reader over a file handle. */
class Reader {
  private buf = new Uint8Array(0);
  private pos = 0;
  private filePos = 0;
  private eof = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly chunk = 1 << 20,
  ) {}

  /** Reads exactly n bytes, or fewer at end of file. */
  async read(n: number): Promise<Uint8Array> {
    while (this.buf.length - this.pos < n && !this.eof) {
      const want = Math.max(this.chunk, n - (this.buf.length - this.pos));
      const next = new Uint8Array(this.buf.length - this.pos + want);
      next.set(this.buf.subarray(this.pos));
      const { bytesRead } = await this.fh.read(next, this.buf.length - this.pos, want, this.filePos);
      this.filePos += bytesRead;
      if (bytesRead === 0) this.eof = true;
      this.buf = next.subarray(0, this.buf.length - this.pos + bytesRead);
      this.pos = 0;
    }
    const out = this.buf.subarray(this.pos, Math.min(this.buf.length, this.pos + n));
    this.pos += out.length;
    return out;
  }

  /** Moves past n bytes without reading them into memory. */
  skip(n: number): void {
    const buffered = this.buf.length - this.pos;
    if (n <= buffered) {
      this.pos += n;
      return;
    }
    this.filePos += n - buffered;
    this.buf = new Uint8Array(0);
    this.pos = 0;
  }
}

/** The largest record read by default; a length field above it is treated as corrupt (256 MiB). */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 2 ** 20;

export interface ReadOptions {
  /** Skip records whose data CRC fails (counted via onCorrupt) instead of throwing. */
  skipCorrupt?: boolean;
  onCorrupt?: (e: CorruptRecordError) => void;
  /** Records whose length field exceeds this are corrupt (default DEFAULT_MAX_RECORD_BYTES). */
  maxRecordBytes?: number;
}

function openError(shard: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : errorMessage(e);
  return new UserError(`${shard}: cannot read shard (${why}${code ? `, ${code}` : ''})`, { cause: e });
}

export async function* readTfRecords(shard: string, opts: ReadOptions = {}): AsyncGenerator<TfRecord> {
  const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  let fh: FileHandle;
  let fileSize: number;
  try {
    fh = await open(shard, 'r');
  } catch (e) {
    throw openError(shard, e);
  }
  try {
    try {
      fileSize = (await fh.stat()).size;
    } catch (e) {
      throw openError(shard, e);
    }
    const r = new Reader(fh);
    let offset = 0;
    for (let index = 0; ; index++) {
      let header: Uint8Array;
      try {
        header = await r.read(12);
      } catch (e) {
        throw openError(shard, e);
      }
      const recordOffset = offset;
      const fail = (reason: string, resumable: boolean) => {
        const e = new CorruptRecordError(shard, index, recordOffset, reason, resumable);
        if (!opts.skipCorrupt || !resumable) throw e;
        opts.onCorrupt?.(e);
      };
      if (header.length === 0) {
        // A shard holds at least one record: an empty file is a failed or cut-off write, not an empty dataset.
        if (index === 0) fail('empty shard (0 bytes, no records)', false);
        return;
      }
      if (header.length < 12) {
        // A truncated header ends the shard: nothing after it can be framed.
        fail(`truncated record header (${header.length} of 12 bytes)`, false);
        return;
      }
      const view = new DataView(header.buffer, header.byteOffset, 12);
      const declared = view.getBigUint64(0, true);
      if (maskedCrc32c(header.subarray(0, 8)) !== view.getUint32(8, true)) {
        fail('length CRC mismatch (the record framing is corrupt)', false);
        return;
      }
      // The length is checked before anything is allocated for it: a matching length CRC does not make it sane.
      const remaining = fileSize - recordOffset - 12 - 4;
      if (declared > BigInt(Math.max(0, remaining))) {
        const found = Math.max(0, fileSize - recordOffset - 12);
        // A plausible length in a cut-off file is a truncation; anything larger is a corrupt length field.
        fail(
          declared <= BigInt(maxRecordBytes)
            ? `truncated record: expected ${declared} data bytes + 4 CRC bytes, found ${found}`
            : `record length ${declared} exceeds the ${found} bytes left in the file (the record framing is corrupt)`,
          false,
        );
        return;
      }
      const length = Number(declared);
      if (length > maxRecordBytes) {
        // The framing is intact (the length fits the file), so reading can go on with the next record.
        offset += 12 + length + 4;
        r.skip(length + 4);
        fail(`record length ${length} exceeds the maximum record size of ${maxRecordBytes} bytes`, true);
        continue;
      }
      let body: Uint8Array;
      try {
        body = await r.read(length + 4);
      } catch (e) {
        throw openError(shard, e);
      }
      if (body.length < length + 4) {
        fail(`truncated record: expected ${length} data bytes + 4 CRC bytes, found ${body.length}`, false);
        return;
      }
      const data = body.slice(0, length);
      const crc = new DataView(body.buffer, body.byteOffset + length, 4).getUint32(0, true);
      offset += 12 + length + 4;
      if (maskedCrc32c(data) !== crc) {
        fail('data CRC mismatch', true);
        continue;
      }
      yield { data, index, offset: recordOffset, shard };
    }
  } finally {
    await fh.close();
  }
}

export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Appends records to a temp file; close() fsyncs and renames it to `path`, abort() removes it. */
export class TfRecordWriter {
  private fh?: FileHandle;
  private readonly tmp: string;
  count = 0;
  bytes = 0;

  constructor(readonly path: string) {
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  }

  async write(data: Uint8Array): Promise<void> {
    this.fh ??= await open(this.tmp, 'w');
    const framed = frameRecord(data);
    await this.fh.write(framed);
    this.count++;
    this.bytes += framed.length;
  }

  async close(): Promise<void> {
    this.fh ??= await open(this.tmp, 'w');
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}
