/**
 * Action-shift attention prior (`actionConditioning: 'shift'`). An action moves the gripper a few
 * pixels; to predict that, a patch of frame f must look at the patch of frame f-1 its content came
 * from, i.e. at an offset that depends on the action. A small trunk learns such action-dependent
 * lookups very slowly (our tiny models ignored the action after 2,000 steps), so each head gets it
 * directly: a learned linear map from the action to a 2-D displacement s_h (in patches), and a bias
 *   -gain_h * (1 - t_action) * |(q - k) - m_h(k) * (sum of s_h over the actions from k's frame to q's)|^2
 * on the logits of a frame-f patch query q for the patch keys k of earlier frames. Only the gripper
 * (and what it carries) moves with the action, the background stays: m_h(k) in (0, 1) is a learned
 * "moves with the action" score of key k's pixels, so the static majority of patches does not pull
 * the displacement to zero. The map starts at zero and the gains at 1: a "content stays where it
 * was" prior that the actions then learn to move; noised actions (policy queries) fade it out.
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

/** Host-side constants: which (q, k) pairs get the prior, their row/column offsets, and which actions lie between. */
function pairConstants(query: TokenGrid, key: TokenGrid, nActions: number) {
  const tq = query.frame.length;
  const tk = key.frame.length;
  const valid = new Float32Array(tq * tk);
  const dRow = new Float32Array(tq * tk);
  const dCol = new Float32Array(tq * tk);
  for (let q = 0; q < tq; q++) {
    if (query.row[q]! < 0) continue;
    for (let k = 0; k < tk; k++) {
      if (key.row[k]! < 0 || key.frame[k]! >= query.frame[q]!) continue;
      valid[q * tk + k] = 1;
      dRow[q * tk + k] = query.row[q]! - key.row[k]!;
      dCol[q * tk + k] = query.col[q]! - key.col[k]!;
    }
  }
  // upTo[j, t] = 1 when action j (into frame j + 1) happened by token t's frame: its cumulative displacement.
  const upTo = (g: TokenGrid) => {
    const m = new Float32Array(nActions * g.frame.length);
    g.frame.forEach((f, t) => {
      if (f > nActions) throw new Error(`action-shift: a token of frame ${f} but actions only up to frame ${nActions}`);
      for (let j = 0; j < f; j++) m[j * g.frame.length + t] = 1;
    });
    return tf.tensor2d(m, [nActions, g.frame.length]);
  };
  // own[j, q] = 1 for the action that leads into query q's frame.
  const own = new Float32Array(nActions * tq);
  query.frame.forEach((f, q) => {
    if (f > 0 && query.row[q]! >= 0) own[(f - 1) * tq + q] = 1;
  });
  return {
    valid: tf.tensor4d(valid, [1, 1, tq, tk]),
    dRow: tf.tensor4d(dRow, [1, 1, tq, tk]),
    dCol: tf.tensor4d(dCol, [1, 1, tq, tk]),
    upToQuery: upTo(query),
    upToKey: upTo(key),
    own: tf.tensor2d(own, [nActions, tq]),
  };
}

/**
 * The prior as an additive logit bias [B, heads, Tq, Tk]. `actions` [B, F', A] and `actionT` [B, F']
 * are the actions into frames 1..F' (every frame the query and key tokens belong to). A query of
 * frame f and a key of an earlier frame g are offset by the summed displacements of the actions
 * into frames g+1..f, so a frame being denoised can also look back past a still-noisy one.
 * `movable` [B, heads, Tk] is m_h of every key token (see movableScores).
 */
export function actionShiftBias(
  p: Params,
  heads: number,
  actions: tf.Tensor3D,
  actionT: tf.Tensor2D,
  query: TokenGrid,
  key: TokenGrid,
  movable: tf.Tensor3D,
): tf.Tensor4D {
  const [b, nA] = actions.shape;
  const [tq, tk] = [query.frame.length, key.frame.length];
  const c = pairConstants(query, key, nA);
  // Displacement per (sample, head, axis, action) -> cumulative per token.
  const shift = (linear(actions, p, 'action_shift.proj') as tf.Tensor3D).transpose([0, 2, 1]).reshape([b * 2 * heads, nA]) as tf.Tensor2D;
  const atQuery = tf.unstack(matmul(shift, c.upToQuery).reshape([b, heads, 2, tq]), 2).map((s) => s.expandDims(3));
  const atKey = tf.unstack(matmul(shift, c.upToKey).reshape([b, heads, 2, tk]), 2).map((s) => s.expandDims(2));
  const m = movable.expandDims(2);
  const offRow = tf.sub(c.dRow, tf.mul(m, tf.sub(atQuery[0]!, atKey[0]!)));
  const offCol = tf.sub(c.dCol, tf.mul(m, tf.sub(atQuery[1]!, atKey[1]!)));
  // Clean actions count fully; a fully noised action (a policy query) not at all.
  const weight = matmul(tf.sub(1, actionT) as tf.Tensor2D, c.own).reshape([b, 1, tq, 1]);
  const gain = param(p, 'action_shift.gain').reshape([1, heads, 1, 1]);
  return tf.mul(tf.mul(tf.neg(gain), weight), tf.mul(c.valid, tf.add(tf.square(offRow), tf.square(offCol)))) as tf.Tensor4D;
}

/**
 * m_h of every token [B, heads, T] in sequence order: sigmoid of a linear map of its patch's pixels
 * `patches` [B, F, N, P] (0 for action tokens, which the prior never touches).
 */
export function movableScores(p: Params, heads: number, patches: tf.Tensor4D, patchStart: number[], tokens: number): tf.Tensor3D {
  const [b, f, n] = patches.shape;
  const m = tf
    .sigmoid(linear(patches, p, 'action_shift.movable'))
    .reshape([b, f * n, heads])
    .transpose([0, 2, 1])
    .reshape([b * heads, f * n]);
  const place = new Float32Array(f * n * tokens);
  for (let j = 0; j < f; j++) for (let i = 0; i < n; i++) place[(j * n + i) * tokens + patchStart[j]! + i] = 1;
  return matmul(m as tf.Tensor2D, tf.tensor2d(place, [f * n, tokens])).reshape([b, heads, tokens]) as tf.Tensor3D;
}
