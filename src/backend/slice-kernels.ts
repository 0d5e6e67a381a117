/**
 * Slicing kernels for the wasm backend that read their input where the backend keeps it. The wasm
 * backend's own Slice (and Unpack and SplitV, which slice once per output) first copies the whole
 * input out of the wasm heap into a new JS array, so taking one row block of a weight costs as much
 * as copying the weight, and unstacking n matrices costs n whole copies (measured: slicing 384 rows
 * of a 2304x384 weight took ~15 ms). These copy only the elements of each output.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function size(shape: number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

/**
 * Copies the block `begin`/`size` of `x` into a new output. Trailing axes taken whole join the
 * innermost axis into one contiguous run, so row blocks of a matrix are a single copy.
 */
export function sliceInHeap(backend: WasmBackend, x: tf.TensorInfo, begin: number[], sizes: number[]): tf.TensorInfo {
  const out = backend.makeOutput(sizes, x.dtype);
  const count = size(sizes);
  if (count === 0) return out;
  // Views are taken after makeOutput: allocating may grow the wasm memory and detach older views.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  if (rank === 0) {
    dst[0] = src[0]!;
    return out;
  }
  const strides = tf.util.computeStrides(x.shape);
  const stride = (axis: number) => (axis === rank - 1 ? 1 : strides[axis]!);
  // The innermost axis that is not taken whole bounds the contiguous run.
  let inner = rank - 1;
  while (inner > 0 && sizes[inner] === x.shape[inner]) inner--;
  const run = sizes[inner]! * stride(inner);
  let base = 0;
  for (let axis = 0; axis <= inner; axis++) base += begin[axis]! * stride(axis);
  const outer = count / run;
  const index = new Array<number>(inner).fill(0);
  let offset = base;
  for (let r = 0; r < outer; r++) {
    dst.set(src.subarray(offset, offset + run), r * run);
    // Advance the odometer over the outer axes 0..inner-1.
    for (let axis = inner - 1; axis >= 0; axis--) {
      index[axis]!++;
      offset += stride(axis);
      if (index[axis]! < sizes[axis]!) break;
      offset -= index[axis]! * stride(axis);
      index[axis] = 0;
    }
  }
  return out;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Whether the input lives in the heap as numbers (strings are kept outside it). */
function inHeap(t: tf.TensorInfo): boolean {
  return t.dtype !== 'string';
}

export function sliceKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!inHeap(x)) return original.kernelFunc(args);
    const { begin, size: sizeAttr } = args.attrs as unknown as tf.SliceAttrs;
    const [b, s] = tf.slice_util.parseSliceParams(x, begin, sizeAttr);
    return sliceInHeap(args.backend as unknown as WasmBackend, x, b!, s!);
  };
}

export function unpackKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { value } = args.inputs as { value: tf.TensorInfo };
    if (!inHeap(value)) return original.kernelFunc(args);
    const rank = value.shape.length;
    let { axis } = args.attrs as unknown as tf.UnpackAttrs;
    if (axis < 0) axis += rank;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = new Array<number>(rank).fill(0);
    const sizes = value.shape.slice();
    sizes[axis] = 1;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]!; i++) {
      begin[axis] = i;
      const o = sliceInHeap(args.backend as unknown as WasmBackend, value, begin, sizes);
      outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape });
    }
    return outs;
  };
}

export function splitVKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (!inHeap(x)) return original.kernelFunc(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const splitSizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, a);
    const begin = new Array<number>(x.shape.length).fill(0);
    const outs: tf.TensorInfo[] = [];
    for (const s of splitSizes) {
      const sizes = x.shape.slice();
      sizes[a] = s;
      outs.push(sliceInHeap(args.backend as unknown as WasmBackend, x, begin, sizes));
      begin[a]! += s;
    }
    return outs;
  };
}
