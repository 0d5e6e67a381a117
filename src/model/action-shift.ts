/**
 * Action-shift attention prior (`actionConditioning: 'shift'`). An action moves the gripper a few
 * pixels; to predict that, a patch of frame f must look at the patch of frame f-1 its content came
 * from, i.e. at an offset that depends on the action. A small trunk learns such action-dependent
 * lookups very slowly (our tiny models ignored the action after 2,000 steps), so each head gets it
 * directly: a learned linear map from the action to a 2-D displacement s_h (in patches), and a bias
 *   -gain_h * (1 - t_action) * |(q - k) - s_h|^2
 * on the logits of a frame-f patch query q for the frame-(f-1) patch keys k. Gains start at zero, so
 * a model imported without them behaves exactly as before; noised actions (policy queries) fade out.
 */
import * as tf from '@tensorflow/tfjs';
import { linear, matmul, param, type Params } from './layers.js';

/** Where each token sits: its frame, and its patch row/column (-1 for action tokens). */
export interface TokenGrid {
  frame: number[];
  row: number[];
  col: number[];
}

/** Grid of a token sequence laid out as world-model.ts does: per frame f > 0 an action token, then its patches in raster order. */
export function tokenGrid(frameOf: number[], gridWidth: number): TokenGrid {
  const row: number[] = [];
  const col: number[] = [];
  let patch = 0;
  for (let i = 0; i < frameOf.length; i++) {
    const first = i === 0 || frameOf[i - 1] !== frameOf[i];
    if (first) patch = 0;
    if (first && frameOf[i]! > 0) {
      row.push(-1); // the frame's action token
      col.push(-1);
      continue;
    }
    row.push(Math.floor(patch / gridWidth));
    col.push(patch % gridWidth);
    patch++;
  }
  return { frame: frameOf, row, col };
}

/** Host-side constants: which (q, k) pairs get the prior, their row/column offsets, and each query's action. */
function pairConstants(query: TokenGrid, key: TokenGrid, actionFrames: number[]) {
  const tq = query.frame.length;
  const tk = key.frame.length;
  const valid = new Float32Array(tq * tk);
  const dRow = new Float32Array(tq * tk);
  const dCol = new Float32Array(tq * tk);
  const pick = new Float32Array(actionFrames.length * tq);
  for (let q = 0; q < tq; q++) {
    const a = actionFrames.indexOf(query.frame[q]!);
    if (query.row[q]! < 0 || a < 0) continue;
    pick[a * tq + q] = 1;
    for (let k = 0; k < tk; k++) {
      if (key.row[k]! < 0 || key.frame[k] !== query.frame[q]! - 1) continue;
      valid[q * tk + k] = 1;
      dRow[q * tk + k] = query.row[q]! - key.row[k]!;
      dCol[q * tk + k] = query.col[q]! - key.col[k]!;
    }
  }
  return {
    valid: tf.tensor4d(valid, [1, 1, tq, tk]),
    dRow: tf.tensor4d(dRow, [1, 1, tq, tk]),
    dCol: tf.tensor4d(dCol, [1, 1, tq, tk]),
    pick: tf.tensor2d(pick, [actionFrames.length, tq]),
  };
}

/**
 * The prior as an additive logit bias [B, heads, Tq, Tk]. `actions` [B, F', A] and `actionT` [B, F']
 * belong to the query tokens' frames `actionFrames` (frame index of each action, in order).
 */
export function actionShiftBias(p: Params, heads: number, actions: tf.Tensor3D, actionT: tf.Tensor2D, actionFrames: number[], query: TokenGrid, key: TokenGrid): tf.Tensor4D {
  const [b, nA] = actions.shape;
  const tq = query.frame.length;
  const c = pairConstants(query, key, actionFrames);
  // Displacement per (sample, head, query): [B, 2H, F'] x [F', Tq].
  const shift = (linear(actions, p, 'action_shift.proj') as tf.Tensor3D).transpose([0, 2, 1]).reshape([b * 2 * heads, nA]);
  const perQuery = matmul(shift as tf.Tensor2D, c.pick).reshape([b, heads, 2, tq]);
  const [sRow, sCol] = tf.unstack(perQuery, 2).map((s) => s.expandDims(3));
  const dist2 = tf.add(tf.square(tf.sub(c.dRow, sRow!)), tf.square(tf.sub(c.dCol, sCol!)));
  // Clean actions count fully; a fully noised action (a policy query) not at all.
  const weight = matmul(tf.sub(1, actionT) as tf.Tensor2D, c.pick).reshape([b, 1, tq, 1]);
  const gain = param(p, 'action_shift.gain').reshape([1, heads, 1, 1]);
  return tf.mul(tf.mul(tf.neg(gain), weight), tf.mul(c.valid, dist2)) as tf.Tensor4D;
}
