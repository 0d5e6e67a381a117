/**
 * tfjs kernels for the wasm backend that run matrix products through OpenBLAS. Operands are
 * read where the wasm backend keeps them (its heap) and the result is written into the output
 * tensor the backend allocates, so no tensor data is copied. tfjs routes every matrix product
 * (tf.matMul, its gradients, tf.fused.matMul) through BatchMatMul or _FusedMatMul; it has no
 * separate MatMul kernel. Cases the addon does not serve go to the wasm backend's own kernel.
 * The same switch also replaces the wasm slicing kernels (Slice, Unpack, SplitV) with ones that
 * read the heap in place (slice-kernels.ts), and Identity with one that shares its input's data
 * (shared-identity.ts), so `wasm` stays the unmodified backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { BlasAddon } from './blas-addon.js';
import { sharedIdentityKernel } from './shared-identity.js';
import { sliceKernel, splitVKernel, unpackKernel } from './slice-kernels.js';

/** The parts of tfjs-backend-wasm's BackendWasm these kernels use. */
interface WasmBackend {
  wasm: { HEAPU8: Uint8Array };
  getMemoryOffset(dataId: object): number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Activation codes of the addon's epilogue (native/blas/src/blas.cc). */
const FUSED_ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, prelu: 3, leakyrelu: 4, sigmoid: 5, elu: 6 };

/** Matrix products served by OpenBLAS, slicing kernels that read the heap in place, and an Identity that copies nothing. */
const KERNELS = [tf.BatchMatMul, tf._FusedMatMul, tf.Slice, tf.Unpack, tf.SplitV, tf.Identity] as const;

function replacementKernel(name: (typeof KERNELS)[number], addon: BlasAddon, original: tf.KernelConfig): tf.KernelFunc {
  switch (name) {
    case tf.BatchMatMul:
      return batchMatMulKernel(addon, original);
    case tf._FusedMatMul:
      return fusedMatMulKernel(addon, original);
    case tf.Slice:
      return sliceKernel(original);
    case tf.Unpack:
      return unpackKernel(original);
    case tf.SplitV:
      return splitVKernel(original);
    case tf.Identity:
      return sharedIdentityKernel(original);
  }
}

interface ProductInputs {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
}

function size(shape: number[]): number {
  return shape.reduce((x, y) => x * y, 1);
}

/**
 * Writes op(a) x op(b) over the last two axes into a new output, broadcasting the leading
 * (batch) axes as tf.matMul does: equal batches pair up, a batch of 1 repeats.
 */
function product(addon: BlasAddon, backend: WasmBackend, { a, b, transposeA, transposeB }: ProductInputs): tf.TensorInfo {
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const k = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
  const kB = transposeB ? b.shape[bRank - 1]! : b.shape[bRank - 2]!;
  const m = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
  const n = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
  if (k !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  const batchShape = tf.broadcast_util.assertAndGetBroadcastShape(aBatchShape, bBatchShape);
  const out = backend.makeOutput([...batchShape, m, n], 'float32');
  const batch = size(batchShape);
  if (batch === 0 || m === 0 || n === 0) return out;
  // The heap view is read after makeOutput: allocating may grow the memory and replace HEAPU8.
  const heap = backend.wasm.HEAPU8;
  const aOffset = backend.getMemoryOffset(a.dataId);
  const bOffset = backend.getMemoryOffset(b.dataId);
  const cOffset = backend.getMemoryOffset(out.dataId);
  const aMatrix = m * k * 4;
  const bMatrix = k * n * 4;
  const aBatch = size(aBatchShape);
  const bBatch = size(bBatchShape);
  const regular = (aBatch === batch || aBatch === 1) && (bBatch === batch || bBatch === 1);
  if (regular) {
    addon.gemm(
      heap,
      transposeA,
      transposeB,
      m,
      n,
      k,
      batch,
      aOffset,
      aBatch === 1 ? 0 : aMatrix,
      bOffset,
      bBatch === 1 ? 0 : bMatrix,
      cOffset,
    );
    return out;
  }
  // Both sides broadcast along different axes (e.g. [2, 1] against [1, 3]): one product per output matrix.
  const aIndex = batchIndexer(aBatchShape, batchShape);
  const bIndex = batchIndexer(bBatchShape, batchShape);
  for (let i = 0; i < batch; i++) {
    addon.gemm(
      heap,
      transposeA,
      transposeB,
      m,
      n,
      k,
      1,
      aOffset + aIndex(i) * aMatrix,
      0,
      bOffset + bIndex(i) * bMatrix,
      0,
      cOffset + i * m * n * 4,
    );
  }
  return out;
}

/** Maps a flat index over `outShape` to the flat index of the operand batch it reads. */
function batchIndexer(shape: number[], outShape: number[]): (i: number) => number {
  const pad = outShape.length - shape.length;
  const dims = outShape.map((_, d) => (d < pad ? 1 : shape[d - pad]!));
  return (i) => {
    let index = 0;
    let stride = 1;
    for (let d = outShape.length - 1; d >= 0; d--) {
      const coord = i % outShape[d]!;
      i = Math.floor(i / outShape[d]!);
      if (dims[d]! !== 1) index += coord * stride;
      stride *= dims[d]!;
    }
    return index;
  };
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function isFloat(...tensors: (tf.TensorInfo | undefined)[]): boolean {
  return tensors.every((t) => t === undefined || t.dtype === 'float32');
}

function batchMatMulKernel(addon: BlasAddon, original: tf.KernelConfig): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    if (!isFloat(a, b)) return original.kernelFunc(args);
    return product(addon, args.backend as unknown as WasmBackend, { a, b, transposeA, transposeB });
  };
}

function fusedMatMulKernel(addon: BlasAddon, original: tf.KernelConfig): tf.KernelFunc {
  return (args: KernelArgs) => {
    const {
      a,
      b,
      bias,
      preluActivationWeights: prelu,
    } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as tf._FusedMatMulAttrs;
    const code = FUSED_ACTIVATIONS[activation];
    // The wasm kernel accepts a rank-1 bias only and rejects other activations; it says so itself.
    const biasSize = bias ? size(bias.shape) : 0;
    const preluSize = prelu ? size(prelu.shape) : 0;
    const served =
      code !== undefined &&
      isFloat(a, b, bias, prelu) &&
      (bias === undefined || (bias.shape.length === 1 && biasSize > 0)) &&
      (code !== FUSED_ACTIVATIONS.prelu || preluSize > 0);
    if (!served) return original.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackend;
    const out = product(addon, backend, { a, b, transposeA, transposeB });
    const count = size(out.shape);
    if (count === 0 || (bias === undefined && code === FUSED_ACTIVATIONS.linear)) return out;
    addon.epilogue(
      backend.wasm.HEAPU8,
      backend.getMemoryOffset(out.dataId),
      count,
      bias ? backend.getMemoryOffset(bias.dataId) : -1,
      biasSize,
      code,
      leakyreluAlpha || 0,
      prelu && code === FUSED_ACTIVATIONS.prelu ? backend.getMemoryOffset(prelu.dataId) : -1,
      preluSize,
    );
    return out;
  };
}

/** The wasm backend's own configs, kept to restore plain wasm and to serve what BLAS does not. */
const originals = new Map<string, tf.KernelConfig>();

function originalConfig(name: string): tf.KernelConfig {
  let config = originals.get(name);
  if (!config) {
    config = tf.getKernel(name, 'wasm');
    if (!config) throw new Error(`the wasm backend registers no ${name} kernel`);
    originals.set(name, config);
  }
  return config;
}

let active: BlasAddon | undefined;

function replaceKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel(config);
}

/** Serves the wasm backend's matrix products from `addon` and its slices in place. Call after the wasm backend is registered. */
export function installBlasKernels(addon: BlasAddon): void {
  if (active === addon) return;
  for (const name of KERNELS) {
    const original = originalConfig(name);
    const kernelFunc = replacementKernel(name, addon, original);
    replaceKernel({ kernelName: name, backendName: 'wasm', setupFunc: original.setupFunc, disposeFunc: original.disposeFunc, kernelFunc });
  }
  active = addon;
}

/** Restores the wasm backend's own matrix-product and slicing kernels (plain wasm). */
export function removeBlasKernels(): void {
  if (!active) return;
  for (const name of KERNELS) replaceKernel(originalConfig(name));
  active = undefined;
}

/** The addon serving the wasm backend's matrix products, if any (src/backend/blas-updates.ts uses it too). */
export function activeBlasAddon(): BlasAddon | undefined {
  return active;
}

/** Whether the wasm backend's matrix products currently run on OpenBLAS. */
export function blasKernelsActive(): boolean {
  return active !== undefined;
}
