/** Analytic FLOP counts (multiply-add = 2 FLOPs) of the world-model forward, for achieved-GFLOP/s figures. */
import type { WorldModelConfig } from '../core/model-config.js';
import { groupingPays } from './condition-groups.js';
import { patchGrid } from './world-model.js';

/**
 * Forward FLOPs for a batch of `batch` sequences of `frames` frames (full frame-causal attention over all tokens).
 * The adaLN modulation linears run once per distinct conditioning row (src/model/condition-groups.ts): one per
 * frame slot at a per-frame noise level, `2 * frames - 1` rows, unless `conditionRows` says otherwise; grouping
 * then adds its one-hot pick and spread products.
 */
export function worldModelForwardFlops(
  cfg: WorldModelConfig,
  batch: number,
  frames: number,
  contextTokens = 0,
  conditionRows = 2 * frames - 1,
): number {
  const d = cfg.dit.hidden_size;
  const mlp = d * cfg.dit.mlp_ratio;
  const { n, p } = patchGrid(cfg);
  const tokens = frames * n + (frames - 1);
  const grouped = groupingPays(conditionRows, d);
  const rows = grouped ? conditionRows : tokens;
  const perTokenBlock = 2 * d * (3 * d + d) + 2 * 2 * d * mlp + (grouped ? 2 * rows * 6 * d : 0);
  const adaln = (out: number) => rows * 2 * d * out;
  // Attention scores and weighted values: each query attends (on average) to half the sequence plus any cached prefix.
  const keysPerQuery = tokens / 2 + contextTokens;
  const attention = 2 * 2 * keysPerQuery * d;
  const embed = 2 * (p * p * 3 * d) + 2 * (256 * d + d * d);
  const pick = grouped ? 2 * 2 * rows * d : 0; // the trunk and the final layer each pick their rows
  const final = 2 * d * p * p * 3 + (grouped ? 2 * rows * 2 * d : 0);
  return (
    batch * (tokens * (cfg.dit.depth * (perTokenBlock + attention) + embed + final + pick) + cfg.dit.depth * adaln(6 * d) + adaln(2 * d))
  );
}
