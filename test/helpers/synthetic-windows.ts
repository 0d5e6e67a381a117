import type { WindowLike, WindowSource } from '../../src/train/training-window.js';
import { Rng } from '../../src/util/rng.js';

/**
 * A learnable toy world: a bright square moves by the action (dx, dy) each frame on a dark
 * background. Deterministic for a seed, so training on it is reproducible.
 */
export function squareWindow(rng: Rng, h: number, w: number, k: number, hf: number, actionDim: number): WindowLike {
  const f = k + hf;
  const frames = new Float32Array(f * h * w * 3).fill(-0.8);
  const actions = new Float32Array(hf * actionDim);
  let x = rng.int(w - 4);
  let y = rng.int(h - 4);
  for (let i = 0; i < f; i++) {
    if (i >= k) {
      const dx = rng.int(3) - 1;
      const dy = rng.int(3) - 1;
      actions[(i - k) * actionDim] = dx;
      actions[(i - k) * actionDim + 1] = dy;
      x = Math.min(w - 4, Math.max(0, x + dx * 2));
      y = Math.min(h - 4, Math.max(0, y + dy * 2));
    }
    for (let yy = y; yy < y + 4; yy++) for (let xx = x; xx < x + 4; xx++) frames.set([0.9, 0.5, -0.2], ((i * h + yy) * w + xx) * 3);
  }
  return { frames, actions };
}

export function squareSource(seed: number, h: number, w: number, k: number, hf: number, actionDim: number): WindowSource {
  return {
    async *train(skip: number) {
      const rng = new Rng(seed);
      for (let i = 0; ; i++) {
        const win = squareWindow(rng, h, w, k, hf, actionDim);
        if (i >= skip) yield win;
      }
    },
    async val(count: number) {
      const rng = new Rng(seed + 1000);
      return Array.from({ length: count }, () => squareWindow(rng, h, w, k, hf, actionDim));
    },
  };
}
