/** Analytic FLOP counts (multiply-add = 2 FLOPs) of the world-model forward, for achieved-GFLOP/s figures. */
import type { WorldModelConfig } from '../core/model-config.js';
import { patchGrid } from './world-model.js';

/** Forward FLOPs for a batch of `batch` sequences of `frames` frames (full frame-causal attention over all tokens). */
export function worldModelForwardFlops(cfg: WorldModelConfig, batch: number, frames: number, contextTokens = 0): number {
  const d = cfg.dit.hidden_size;
  const mlp = d * cfg.dit.mlp_ratio;
  const { n, p } = patchGrid(cfg);
  const tokens = frames * n + (frames - 1);
  const perTokenBlock = 2 * d * (3 * d + d + 6 * d) + 2 * 2 * d * mlp;
  // Attention scores and weighted values: each query attends (on average) to half the sequence plus any cached prefix.
  const keysPerQuery = tokens / 2 + contextTokens;
  const attention = 2 * 2 * keysPerQuery * d;
  const embed = 2 * (p * p * 3 * d) + 2 * (256 * d + d * d);
  const final = 2 * d * 2 * d + 2 * d * p * p * 3;
  return batch * tokens * (cfg.dit.depth * (perTokenBlock + attention) + embed + final);
}
