/**
 * Carries a model's patch-size-dependent weights to a patch k times larger (k an integer), so that
 * a model trained at 32x40 with patch 4 starts a 64x80 run with patch 8 on the same 8x10 grid of
 * tokens and the same trunk. The new patch embedding reads each k x k block of pixels as its
 * average (weights / k^2 on the old pixel), and the new final layer paints each old output pixel
 * over its k x k block. On pictures whose k x k blocks are uniform the new model computes exactly
 * what the old one computed on the pictures shrunk k times, then enlarged; on anything finer
 * (detail, and the flow's noise, whose block average has 1/k the spread) it is a warm start.
 */
import { shapeText, type HostTensor } from '../checkpoint/tensor-map.js';

/** The tensors resampled, and how their patch axis is laid out. */
const PATCH_INPUTS = new Set(['x_embedder.proj.weight', 'action_shift.movable.weight']); // [out, (c, p1, p2)]
const PATCH_OUTPUTS = new Set(['final_layer.linear.weight', 'final_layer.linear.bias']); // [(p1, p2, c), ...]

/** The integer side factor k between two patch areas of `channels` channels, or undefined. */
function sideFactor(fromLen: number, toLen: number, channels: number): Factor | undefined {
  const p = Math.round(Math.sqrt(fromLen / channels));
  const q = Math.round(Math.sqrt(toLen / channels));
  if (p * p * channels !== fromLen || q * q * channels !== toLen || q <= p || q % p !== 0) return undefined;
  return { p, q, k: q / p };
}

/**
 * `source` resampled to `shape`, or a reason why it cannot be: only the patch tensors, and only to
 * an integer multiple of the source's patch side with the same channels and hidden size.
 */
export function resamplePatchTensor(name: string, source: HostTensor, shape: number[], channels: number): Float32Array | string {
  const from = source.shape;
  const mismatch = `source shape ${shapeText(from)} != ${shapeText(shape)}`;
  const input = PATCH_INPUTS.has(name);
  if (!input && !PATCH_OUTPUTS.has(name)) return mismatch;
  // Inputs [out, patch]: the patch is the second axis; outputs [patch] or [patch, in]: the first.
  const patchAxis = input ? 1 : 0;
  const otherAxis = 1 - patchAxis;
  if (from.length !== shape.length || (from.length === 2 && from[otherAxis] !== shape[otherAxis])) return mismatch;
  const f = sideFactor(from[patchAxis]!, shape[patchAxis]!, channels);
  if (!f) return `${mismatch}, and not a patch a whole number of times smaller with ${channels} channels`;
  const data = Float32Array.from(source.data as ArrayLike<number>, Number);
  return input ? resampleInput(data, shape[0]!, f, channels) : resampleOutput(data, from.length === 2 ? from[1]! : 1, f, channels);
}

type Factor = { p: number; q: number; k: number };

/** [rows, (c, p1, p2)]: each new pixel's weight is its old pixel's / k^2, so a k x k block reads as its average. */
function resampleInput(data: Float32Array, rows: number, f: Factor, channels: number): Float32Array {
  const [pin, qin] = [f.p * f.p * channels, f.q * f.q * channels];
  const out = new Float32Array(rows * qin);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < f.q; i++)
        for (let j = 0; j < f.q; j++) {
          const src = r * pin + c * f.p * f.p + Math.floor(i / f.k) * f.p + Math.floor(j / f.k);
          out[r * qin + c * f.q * f.q + i * f.q + j] = data[src]! / (f.k * f.k);
        }
  return out;
}

/** [(p1, p2, c), cols]: each new pixel's row is its old pixel's, so an old output pixel paints its k x k block. */
function resampleOutput(data: Float32Array, cols: number, f: Factor, channels: number): Float32Array {
  const out = new Float32Array(f.q * f.q * channels * cols);
  for (let i = 0; i < f.q; i++)
    for (let j = 0; j < f.q; j++)
      for (let c = 0; c < channels; c++) {
        const src = ((Math.floor(i / f.k) * f.p + Math.floor(j / f.k)) * channels + c) * cols;
        out.set(data.subarray(src, src + cols), ((i * f.q + j) * channels + c) * cols);
      }
  return out;
}
