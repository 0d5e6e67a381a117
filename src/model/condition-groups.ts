/**
 * adaLN on distinct conditioning rows only. A token's conditioning row c is a function of its sample,
 * its slot (which frame's patches, or which action token) and its noise level. Tokens that share all
 * three share the row by construction, so every adaLN modulation linear can run on one row per group
 * and hand each token its group's result. With per-frame noise levels (planning, context encoding) or
 * the two levels per frame of dual-timestep training, a sample of hundreds of tokens has about ten
 * groups; the modulation linears (6D x D per token) are a third of the trunk's products.
 *
 * Rows are picked and spread with one-hot products, exact in float32, so gradients reach c (and through
 * it the timestep, action and language embedders) through ordinary matmul gradients.
 */
import * as tf from '@tensorflow/tfjs';

import { matmul } from './layers.js';

export interface ConditionGroups {
  /** [B, U, T] one-hot: row u of sample b picks one token of group u (all zeros past that sample's groups). */
  pick: tf.Tensor3D;
  /** [B, T, U] one-hot: token t of sample b takes its group's row. */
  spread: tf.Tensor3D;
}

/**
 * Whether grouping pays: it costs about 7 U / (6 D) of the per-token modulation products (the pick and spread
 * products against the linears it saves), so it is used when a sample has at most D / 4 groups.
 */
export function groupingPays(groups: number, hidden: number): boolean {
  return groups * 4 <= hidden;
}

/**
 * Groups for `b` samples of `slots.length` tokens: `slots[t]` names token t's slot, `times[b * T + t]`
 * its noise level. Undefined where grouping would save too little for the sample with the most groups (groupingPays).
 */
export function conditionGroups(slots: ArrayLike<number>, times: Float32Array, b: number, hidden: number): ConditionGroups | undefined {
  const t = slots.length;
  if (times.length !== b * t) throw new Error(`conditionGroups: ${times.length} times for ${b} samples of ${t} tokens`);
  const groupOf = new Int32Array(b * t);
  const firsts: number[][] = [];
  let most = 0;
  for (let s = 0; s < b; s++) {
    const seen = new Map<string, number>();
    const first: number[] = [];
    for (let k = 0; k < t; k++) {
      const key = `${slots[k]}:${times[s * t + k]}`;
      let g = seen.get(key);
      if (g === undefined) {
        g = first.length;
        seen.set(key, g);
        first.push(k);
      }
      groupOf[s * t + k] = g;
    }
    firsts.push(first);
    most = Math.max(most, first.length);
  }
  if (!groupingPays(most, hidden)) return undefined;
  const pick = new Float32Array(b * most * t);
  const spread = new Float32Array(b * t * most);
  for (let s = 0; s < b; s++) {
    firsts[s]!.forEach((k, g) => (pick[(s * most + g) * t + k] = 1));
    for (let k = 0; k < t; k++) spread[(s * t + k) * most + groupOf[s * t + k]!] = 1;
  }
  return { pick: tf.tensor3d(pick, [b, most, t]), spread: tf.tensor3d(spread, [b, t, most]) };
}

/** The distinct rows [B, U, D] of per-token conditioning `c` [B, T, D]. */
export function distinctRows(c: tf.Tensor3D, groups: ConditionGroups): tf.Tensor3D {
  return matmul(groups.pick, c) as tf.Tensor3D;
}

/** Per-group values [B, U, E] handed to every token of the group: [B, T, E]. */
export function spreadRows(rows: tf.Tensor, groups: ConditionGroups): tf.Tensor3D {
  return matmul(groups.spread, rows) as tf.Tensor3D;
}
