/**
 * Carries a model's patch-size-dependent weights to a patch k times larger (k an integer), so that
 * a model trained at 32x40 with patch 4 starts a 64x80 run with patch 8 on the same 8x10 grid of
 * tokens and the same trunk. The new patch embedding reads each k x k block of pixels as its
 * average (weights / k^2 on the old pixel), and the new final layer paints each old output pixel
 * over its k x k block. On pictures whose k x k blocks are uniform the new model computes exactly
 * what the old one computed on the pictures shrunk k times, then enlarged; on anything finer
 * (detail, and the flow's noise, whose block average has 1/k the spread) it is a warm start.
 */
import { numel, shapeText, type HostTensor } from '../checkpoint/tensor-map.js';

/** The tensors resampled, and how their patch axis is laid out. */
const PATCH_INPUTS = new Set(['x_embedder.proj.weight', 'action_shift.movable.weight']); // [out, (c, p1, p2)]
const PATCH_OUTPUTS = new Set(['final_layer.linear.weight', 'final_layer.linear.bias']); // [(p1, p2, c), ...]

export function isPatchTensor(name: string): boolean {
  return PATCH_INPUTS.has(name) || PATCH_OUTPUTS.has(name);
}

/** The integer side factor k between two patch areas of `channels` channels, or undefined. */
function sideFactor(fromLen: number, toLen: number, channels: number): { p: number; q: number; k: number } | undefined {
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
  const notWhole = `${mismatch}, and not a patch a whole number of times smaller with ${channels} channels`;
  const data = Float32Array.from(source.data as ArrayLike<number>, Number);
  if (PATCH_INPUTS.has(name)) {
    if (from.length !== 2 || shape.length !== 2 || from[0] !== shape[0]) return mismatch;
    const f = sideFactor(from[1]!, shape[1]!, channels);
    if (!f) return notWhole;
    const out = new Float32Array(numel(shape));
    const [rows, pin, qin] = [shape[0]!, f.p * f.p * channels, f.q * f.q * channels];
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < channels; c++)
        for (let i = 0; i < f.q; i++)
          for (let j = 0; j < f.q; j++) {
            const src = r * pin + c * f.p * f.p + Math.floor(i / f.k) * f.p + Math.floor(j / f.k);
            out[r * qin + c * f.q * f.q + i * f.q + j] = data[src]! / (f.k * f.k);
          }
    return out;
  }
  if (PATCH_OUTPUTS.has(name)) {
    const cols = from.length === 2 ? from[1]! : 1;
    if (from.length !== shape.length || (from.length === 2 && from[1] !== shape[1])) return mismatch;
    const f = sideFactor(from[0]!, shape[0]!, channels);
    if (!f) return notWhole;
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < f.q; i++)
      for (let j = 0; j < f.q; j++)
        for (let c = 0; c < channels; c++) {
          const src = ((Math.floor(i / f.k) * f.p + Math.floor(j / f.k)) * channels + c) * cols;
          out.set(data.subarray(src, src + cols), ((i * f.q + j) * channels + c) * cols);
        }
    return out;
  }
  return mismatch;
}
