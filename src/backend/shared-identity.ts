/**
 * An Identity kernel for the wasm backend that shares its input's data instead of copying it.
 * tfjs calls Identity for every tensor a gradient needs later (the engine clones each saved
 * input and output), about a thousand times in one training step of the small model; the wasm
 * backend's own Identity copies each one. Tensors are immutable in tfjs, and the wasm backend
 * already shares data this way for Reshape, so a counted reference is enough. The in-place
 * optimizer updates (blas-updates.ts) check that count and never write shared data.
 */
import * as tf from '@tensorflow/tfjs';

/** The parts of tfjs-backend-wasm's BackendWasm this kernel uses. */
interface RefCounting {
  incRef(dataId: object): void;
}

/** Identity as a second reference to `x`'s data; strings (held outside the heap) go to `original`. */
export function sharedIdentityKernel(original: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x!;
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as unknown as RefCounting).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}
