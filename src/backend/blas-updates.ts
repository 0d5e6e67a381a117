/**
 * Optimizer updates in place on the wasm heap through the OpenBLAS addon (native/blas): AdamW
 * and the EMA teacher update as one native loop per parameter instead of a dozen tensor ops, each
 * of which allocates an output and walks the whole parameter. Offered only where the wasm backend's
 * products run on the addon (`wasm+blas`) and the addon has these functions (one built before
 * them has not). A tensor is written in place only when it alone owns its data: a variable that
 * still shares its initial tensor's data is left to the caller's tensor ops.
 */
import * as tf from '@tensorflow/tfjs';
import type { BlasAddon } from './blas-addon.js';
import { activeBlasAddon } from './blas-kernels.js';

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
interface WasmHeap {
  wasm: { HEAPU8: Uint8Array };
  getMemoryOffset(dataId: object): number;
  refCount(dataId: object): number;
}

/** AdamW's step with its scalars folded as src/train/adamw.ts folds them. */
export interface AdamWFactors {
  gradToM: number;
  gradSqToV: number;
  beta1: number;
  beta2: number;
  invBc2: number;
  eps: number;
  stepSize: number;
  /** The parameter's factor before the step: 1 - lr * weight decay, or 1. */
  keep: number;
}

export interface InPlaceUpdates {
  /** The sum of squares of a float32 tensor (accumulated in double). */
  sumSquares(t: tf.Tensor): number;
  /** m, v and p updated in place; false when not done (shared data, another dtype): use tensor ops. */
  adamw(p: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, f: AdamWFactors): boolean;
  /** t = decay t + (1 - decay) s in place; false when not done. */
  ema(t: tf.Variable, s: tf.Tensor, decay: number): boolean;
}

type UpdatingAddon = BlasAddon & Required<Pick<BlasAddon, 'sumSquares' | 'adamw' | 'ema'>>;

function hasUpdates(a: BlasAddon | undefined): a is UpdatingAddon {
  return typeof a?.sumSquares === 'function' && typeof a.adamw === 'function' && typeof a.ema === 'function';
}

/** The native updates, when the current backend can take them. */
export function inPlaceUpdates(): InPlaceUpdates | undefined {
  const addon = activeBlasAddon();
  if (!hasUpdates(addon) || tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as unknown as WasmHeap;
  const at = (t: tf.Tensor) => backend.getMemoryOffset(t.dataId);
  const readable = (t: tf.Tensor, size: number) => t.dtype === 'float32' && t.size === size;
  const writable = (t: tf.Tensor, size: number) => readable(t, size) && backend.refCount(t.dataId) === 1;
  return {
    sumSquares(t) {
      if (t.dtype !== 'float32') throw new Error(`sumSquares needs float32, got ${t.dtype}`);
      return addon.sumSquares(backend.wasm.HEAPU8, at(t), t.size);
    },
    adamw(p, g, m, v, f) {
      const n = p.size;
      if (!writable(p, n) || !writable(m, n) || !writable(v, n) || !readable(g, n)) return false;
      addon.adamw(
        backend.wasm.HEAPU8,
        n,
        at(p),
        at(g),
        at(m),
        at(v),
        f.gradToM,
        f.gradSqToV,
        f.beta1,
        f.beta2,
        f.invBc2,
        f.eps,
        f.stepSize,
        f.keep,
      );
      return true;
    },
    ema(t, s, decay) {
      if (!writable(t, t.size) || !readable(s, t.size)) return false;
      addon.ema(backend.wasm.HEAPU8, t.size, at(t), at(s), decay);
      return true;
    },
  };
}
