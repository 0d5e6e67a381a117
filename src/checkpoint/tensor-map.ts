/** Host-side tensors as checkpoints hold them, before they become tfjs tensors. */
export type HostDType = 'float32' | 'int32' | 'int64' | 'uint8' | 'bool' | 'float64';

export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  /** float32/float64 -> Float32Array (f64, f16 and bf16 are converted); ints -> Int32Array or BigInt64Array; uint8/bool -> Uint8Array. */
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

export type TensorMap = Map<string, HostTensor>;

export function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Values as float32, whatever the stored integer or float type. */
export function toFloat32(t: HostTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof BigInt64Array) return Float32Array.from(t.data, (v) => Number(v));
  return Float32Array.from(t.data);
}

export function toInt32(t: HostTensor): Int32Array {
  if (t.data instanceof Int32Array) return t.data;
  if (t.data instanceof BigInt64Array) return Int32Array.from(t.data, (v) => Number(v));
  return Int32Array.from(t.data, (v) => Math.round(v));
}

export function shapeText(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}
