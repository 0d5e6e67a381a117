import { bf16ToF32, f16ToF32 } from './half.js';
import type { HostTensor } from './tensor-map.js';

/** Storage element types that safetensors and torch storages share. */
export type RawType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const RAW_BYTES: Record<RawType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** The most elements a view may have beyond those its storage holds (a 64 MiB float32 tensor). */
const MAX_BROADCAST_ELEMENTS = 2 ** 24;

/**
 * Decode `count` little-endian elements starting at `byteOffset`, gathering with `strides`
 * (in elements) when the tensor is a non-contiguous view of its storage.
 */
export function decodeRaw(bytes: Uint8Array, type: RawType, shape: number[], elementOffset = 0, strides?: number[]): HostTensor {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new Error(`tensor shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (
    strides !== undefined &&
    (!Array.isArray(strides) || strides.length !== shape.length || !strides.every((d) => Number.isSafeInteger(d) && d >= 0))
  )
    throw new Error(`tensor strides ${JSON.stringify(strides)} do not match shape [${shape.join(', ')}]`);
  if (!Number.isSafeInteger(elementOffset) || elementOffset < 0)
    throw new Error(`tensor storage offset ${elementOffset} is not a non-negative integer`);
  const count = shape.reduce((a, b) => a * b, 1);
  // A view may repeat stored elements (stride 0), but not so many that a small file asks for a huge buffer.
  const limit = Math.max(bytes.byteLength / RAW_BYTES[type], MAX_BROADCAST_ELEMENTS);
  if (count > limit)
    throw new Error(`tensor of shape [${shape.join(', ')}] has ${count} elements, more than its ${bytes.byteLength}-byte storage can back`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = RAW_BYTES[type];
  const index = stridedIndex(shape, strides);
  const at = (i: number) => (elementOffset + index(i)) * size;
  const need = count === 0 ? 0 : at(count - 1) + size;
  if (need > bytes.byteLength && count > 0) {
    throw new Error(`tensor data needs ${need} bytes but only ${bytes.byteLength} are stored`);
  }
  if (type === 'F32' && index === IDENTITY) {
    // Fast path (the common case): one copy, no per-element decode. Little-endian hosts only, as Node on x86/arm.
    const start = bytes.byteOffset + elementOffset * 4;
    return { dtype: 'float32', shape, data: new Float32Array(bytes.buffer.slice(start, start + count * 4)) };
  }
  switch (type) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at(i), true);
      return { dtype: 'float32', shape, data: out };
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at(i), true);
      return { dtype: 'float32', shape, data: out };
    }
    case 'F16':
    case 'BF16': {
      const conv = type === 'F16' ? f16ToF32 : bf16ToF32;
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = conv(view.getUint16(at(i), true));
      return { dtype: 'float32', shape, data: out };
    }
    case 'I64': {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(at(i), true);
      return { dtype: 'int64', shape, data: out };
    }
    case 'I32':
    case 'I16':
    case 'I8': {
      const out = new Int32Array(count);
      const get =
        type === 'I32'
          ? (o: number) => view.getInt32(o, true)
          : type === 'I16'
            ? (o: number) => view.getInt16(o, true)
            : (o: number) => view.getInt8(o);
      for (let i = 0; i < count; i++) out[i] = get(at(i));
      return { dtype: 'int32', shape, data: out };
    }
    case 'U8':
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint8(at(i));
      return { dtype: type === 'BOOL' ? 'bool' : 'uint8', shape, data: out };
    }
  }
}

/** Maps a row-major element index to its storage index under `strides` (identity when contiguous). */
const IDENTITY = (i: number) => i;

function stridedIndex(shape: number[], strides?: number[]): (i: number) => number {
  if (!strides) return IDENTITY;
  const contiguous: number[] = [];
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    contiguous[d] = acc;
    acc *= shape[d]!;
  }
  if (contiguous.every((s, d) => shape[d] === 1 || s === strides[d])) return IDENTITY;
  return (i) => {
    let rem = i;
    let off = 0;
    for (let d = 0; d < shape.length; d++) {
      const q = Math.floor(rem / contiguous[d]!);
      rem -= q * contiguous[d]!;
      off += q * strides[d]!;
    }
    return off;
  };
}
