/**
 * safetensors: u64 little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then the raw bytes.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.js';
import { UserError } from '../core/errors.js';
import { decodeRaw, RAW_BYTES, type RawType } from './decode-raw.js';
import { numel, type HostTensor, type TensorMap } from './tensor-map.js';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): { tensors: TensorMap; metadata: Record<string, string> } {
  if (bytes.byteLength < 8) throw new UserError(`${source}: file too short for a safetensors header (${bytes.byteLength} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen <= 0 || 8 + headerLen > bytes.byteLength) {
    throw new UserError(`${source}: header length ${headerLen} does not fit in a ${bytes.byteLength}-byte file (not safetensors?)`);
  }
  let header: Record<string, HeaderEntry | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as typeof header;
  } catch (e) {
    throw new UserError(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  const data = bytes.subarray(8 + headerLen);
  const tensors: TensorMap = new Map();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as HeaderEntry;
    if (!(e.dtype in RAW_BYTES)) throw new UserError(`${source}: tensor '${name}' has unsupported dtype '${e.dtype}'`);
    const [begin, end] = e.data_offsets;
    const expected = numel(e.shape) * RAW_BYTES[e.dtype as RawType];
    if (end - begin !== expected || end > data.byteLength) {
      throw new UserError(
        `${source}: tensor '${name}' ${e.dtype}${JSON.stringify(e.shape)} has data_offsets [${begin}, ${end}] ` +
          `(needs ${expected} bytes; ${data.byteLength} bytes of data in the file)`,
      );
    }
    tensors.set(name, decodeRaw(data.subarray(begin, end), e.dtype as RawType, e.shape));
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

export function readSafetensors(path: string): { tensors: TensorMap; metadata: Record<string, string> } {
  return parseSafetensors(new Uint8Array(readFileSync(path)), path);
}

const DTYPE_TO_RAW: Record<HostTensor['dtype'], RawType> = {
  float32: 'F32',
  float64: 'F64',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  bool: 'BOOL',
};

export function serializeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.data.byteLength;
    header[name] = { dtype: DTYPE_TO_RAW[t.dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad so the data section starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const name of names) {
    const t = tensors.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: TensorMap, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
