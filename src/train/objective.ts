/**
 * The Self-Flow training objective on world-model sequences:
 * - linear-path flow matching (official time convention): velocity models regress the velocity,
 *   residual models (clean frame as a change from the last context frame) the clean frame, with
 *   the error measured relative to predicting no motion;
 * - Dual-Timestep Scheduling: two noise levels per sample, a random subset of the future-frame
 *   tokens gets the second, so one sequence mixes noise levels;
 * - self-distillation: the EMA teacher sees every noised token at the lower level; the student's
 *   projected features after block k predict the teacher's raw features after block m (cosine);
 * - `vanilla`: one timestep per sample and no teacher, for the paper's ablation.
 * Context frames stay clean; action tokens are clean (world-model query) or, in a fraction of
 * samples, noised too (policy query), so one model learns both.
 * All randomness comes from the caller's seeded Rng so a resumed run redraws the same noise.
 */
import * as tf from '@tensorflow/tfjs';
import { inPlaceUpdates } from '../backend/blas-updates.js';
import { noisy, velocityTarget } from '../flow/path.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { patchGrid, pixelTimes, worldModelForward, worldModelRawFeatures, type FrameBatch } from '../model/world-model.js';
import type { Rng } from '../util/rng.js';

export type ObjectiveKind = 'selfflow' | 'vanilla';

export interface ObjectiveOptions {
  kind: ObjectiveKind;
  /** Fraction of future-frame tokens that get the second timestep (paper default 0.25). */
  maskRatio: number;
  /** Fraction of samples whose action tokens are noised too (policy query). */
  policyFraction: number;
  /** Weight lambda of the self-distillation loss. */
  sslWeight: number;
  /** Weight of the action velocity loss (policy-query samples only). */
  actionWeight: number;
  /**
   * Shift s of the noise-level distribution towards noise: t = s*u / (1 + (s-1)*u), u uniform
   * (1 = uniform). Planning rollouts take 1-3 flow steps from t = 1, where only the context and
   * the action say what comes next; nearly clean inputs teach denoising, not dynamics.
   */
  timeShift: number;
  /**
   * Extra weight m of the residual frame loss on pixels that move (a pixel of a future frame that differs
   * from the last context frame by more than MOVED_PIXEL in some channel weighs 1 + m, the rest 1). The
   * gripper is a few dozen of 1,280 pixels at 32x40: an unweighted loss is dominated by the still scene,
   * while telling actions apart depends on where those few pixels go. 0 = plain MSE.
   */
  motionWeight?: number;
}

export const DEFAULT_OBJECTIVE: ObjectiveOptions = {
  kind: 'selfflow',
  maskRatio: 0.25,
  policyFraction: 0.3,
  sslWeight: 1,
  actionWeight: 1,
  timeShift: 1,
};

/** A uniform draw u in [0, 1) mapped to a noise level shifted towards 1 by `s` (s = 1: t = u). */
export function shiftTime(u: number, s: number): number {
  return (s * u) / (1 + (s - 1) * u);
}

/** A training batch of clean sequences. */
export interface SequenceBatch {
  /** [B, K+H, height, width, 3] in [-1, 1]. */
  frames: tf.Tensor5D;
  /** [B, K+H-1, A] normalised; actions[:, f-1] leads from frame f-1 to f. */
  actions: tf.Tensor3D;
  language?: tf.Tensor2D;
  contextFrames: number;
}

/** Host-side random draws for one batch (all a step needs, so it can be redrawn exactly). */
export interface NoiseDraw {
  frameNoise: Float32Array;
  actionNoise: Float32Array;
  /** Student per-token time of patch tokens [B, F, N] (0 for context). */
  studentT: Float32Array;
  /** Teacher per-token time: noised tokens at min(t1, t2). */
  teacherT: Float32Array;
  /** Action token time [B, F-1] (0 unless a policy-query sample). */
  actionT: Float32Array;
  /** 1 for policy-query samples. */
  policy: Float32Array;
  /** 1 for second-timestep tokens [B, F, N]. */
  secondMask: Float32Array;
}

export function drawNoise(
  rng: Rng,
  cfg: WorldModelConfig,
  b: number,
  frames: number,
  contextFrames: number,
  o: ObjectiveOptions,
): NoiseDraw {
  const { n } = patchGrid(cfg);
  const pix = cfg.imageHeight * cfg.imageWidth * 3;
  const frameNoise = Float32Array.from({ length: b * frames * pix }, () => rng.normal());
  const actionNoise = Float32Array.from({ length: b * (frames - 1) * cfg.actionDim }, () => rng.normal());
  const studentT = new Float32Array(b * frames * n);
  const teacherT = new Float32Array(b * frames * n);
  const secondMask = new Float32Array(b * frames * n);
  const actionT = new Float32Array(b * (frames - 1));
  const policy = new Float32Array(b);
  for (let i = 0; i < b; i++) {
    const shift = o.timeShift ?? 1;
    const t1 = shiftTime(rng.next(), shift);
    const t2 = o.kind === 'selfflow' ? shiftTime(rng.next(), shift) : t1;
    const tMin = Math.min(t1, t2);
    for (let f = contextFrames; f < frames; f++) {
      for (let k = 0; k < n; k++) {
        const idx = (i * frames + f) * n + k;
        const second = o.kind === 'selfflow' && rng.next() < o.maskRatio;
        secondMask[idx] = second ? 1 : 0;
        studentT[idx] = second ? t2 : t1;
        teacherT[idx] = tMin;
      }
    }
    if (rng.next() < o.policyFraction) {
      policy[i] = 1;
      // Executed context actions stay clean; the actions into future frames are what a policy predicts.
      for (let a = contextFrames - 1; a < frames - 1; a++) actionT[i * (frames - 1) + a] = t1;
    }
  }
  return { frameNoise, actionNoise, studentT, teacherT, actionT, policy, secondMask };
}

/** The draws of samples [start, end) of a batch of `b` (every field is sample-major). */
export function sliceDraw(draw: NoiseDraw, b: number, start: number, end: number): NoiseDraw {
  const part = (a: Float32Array) => {
    const per = a.length / b;
    return a.slice(start * per, end * per);
  };
  return {
    frameNoise: part(draw.frameNoise),
    actionNoise: part(draw.actionNoise),
    studentT: part(draw.studentT),
    teacherT: part(draw.teacherT),
    actionT: part(draw.actionT),
    policy: part(draw.policy),
    secondMask: part(draw.secondMask),
  };
}

/**
 * What a share of a batch needs to know of the whole batch so that the shares' losses (and so their
 * gradients) add up to the whole batch's: its size, its no-motion error and its policy-query count.
 */
export interface WholeBatch {
  size: number;
  /** The whole batch's floored no-motion error (residual frame loss divisor). */
  noMotion: number;
  /** Policy-query samples in the whole batch. */
  policyCount: number;
}

export interface LossParts {
  total: tf.Scalar;
  frame: tf.Scalar;
  action: tf.Scalar;
  ssl: tf.Scalar;
}

function noisedBatch(
  batch: SequenceBatch,
  draw: NoiseDraw,
  frameT: Float32Array,
  cfg: WorldModelConfig,
): { input: FrameBatch; eps: tf.Tensor; epsA: tf.Tensor } {
  const [b, f, h, w, ch] = batch.frames.shape;
  const { n } = patchGrid(cfg);
  const eps = tf.tensor(draw.frameNoise, batch.frames.shape);
  const epsA = tf.tensor(draw.actionNoise, batch.actions.shape);
  const t = tf.tensor3d(frameT, [b, f, n]);
  const aT = tf.tensor2d(draw.actionT, [b, f - 1]);
  const k = batch.contextFrames;
  const input: FrameBatch = {
    frames: noisy(batch.frames, eps, pixelTimes(t, cfg)) as tf.Tensor5D,
    frameT: t,
    actions: noisy(batch.actions, epsA, aT) as tf.Tensor3D,
    actionT: aT,
    reference: batch.frames.slice([0, k - 1, 0, 0, 0], [b, 1, h, w, ch]).reshape([b, h, w, ch]) as tf.Tensor4D,
  };
  return { input, eps, epsA };
}

/**
 * Teacher raw features after `teacherLayer` on the cleaner input; computed outside any gradient tape.
 * Only the blocks up to `teacherLayer` run: the later blocks and the output heads do not change these features.
 */
export function teacherFeatures(teacher: Params, cfg: WorldModelConfig, batch: SequenceBatch, draw: NoiseDraw): tf.Tensor4D {
  return tf.tidy(() => {
    const { input } = noisedBatch(batch, draw, draw.teacherT, cfg);
    return worldModelRawFeatures(teacher, cfg, input, { language: batch.language }, cfg.teacherLayer);
  });
}

/** Mean of 1 - cos(a, b) over the future-frame tokens. */
export function cosineLoss(a: tf.Tensor4D, b: tf.Tensor4D, contextFrames: number): tf.Scalar {
  const [bs, f, n, d] = a.shape;
  const fa = a.slice([0, contextFrames, 0, 0], [bs, f - contextFrames, n, d]);
  const fb = b.slice([0, contextFrames, 0, 0], [bs, f - contextFrames, n, d]);
  const dot = tf.sum(tf.mul(fa, fb), -1);
  const norms = tf.mul(tf.norm(fa, 'euclidean', -1), tf.norm(fb, 'euclidean', -1));
  return tf.mean(tf.sub(1, tf.div(dot, tf.maximum(norms, 1e-8)))) as tf.Scalar;
}

/** Floor of the no-motion error a residual frame loss is divided by (a batch where nothing moves). */
const NO_MOTION_FLOOR = 1e-4;

/** A pixel whose value changes by more than this ([-1, 1] units, in any channel) counts as moved. */
export const MOVED_PIXEL = 0.05;

/**
 * Per-pixel weights of the future frames' loss [B, F-K, h, w, 1]: 1 + motionWeight where the true future
 * frame differs from the last context frame by more than MOVED_PIXEL, 1 elsewhere; undefined for plain MSE.
 */
export function motionWeights(frames: tf.Tensor5D, contextFrames: number, motionWeight = 0): tf.Tensor | undefined {
  return tf.tidy(() => weightsOfChange(futureChange(frames, contextFrames), motionWeight));
}

/** motionWeights from the future frames' change ([B, F-K, h, w, 3]) already at hand. */
function weightsOfChange(change: tf.Tensor, motionWeight = 0): tf.Tensor | undefined {
  if (!(motionWeight > 0)) return undefined;
  const moved = tf.max(tf.abs(change), -1, true);
  return tf.add(1, tf.mul(tf.cast(tf.greater(moved, MOVED_PIXEL), 'float32'), motionWeight));
}

/** The future frames' change from the last context frame [B, F-K, h, w, 3]. */
function futureChange(frames: tf.Tensor5D, contextFrames: number): tf.Tensor {
  const [b, f, h, w, ch] = frames.shape;
  const k = contextFrames;
  const last = frames.slice([0, k - 1, 0, 0, 0], [b, 1, h, w, ch]);
  const future = frames.slice([0, k, 0, 0, 0], [b, f - k, h, w, ch]);
  return tf.sub(future, last);
}

/** Mean of `sq` ([B, F-K, h, w, 3]), each pixel weighted by `weights` when given. */
function weightedMean(sq: tf.Tensor, weights?: tf.Tensor): tf.Scalar {
  return (weights ? tf.mean(tf.mul(sq, weights)) : tf.mean(sq)) as tf.Scalar;
}

/** The floored weighted mean square of the future frames' change: what "nothing moves" costs. */
function noMotionOfChange(change: tf.Tensor, weights?: tf.Tensor): tf.Scalar {
  return tf.maximum(weightedMean(tf.square(change), weights), NO_MOTION_FLOOR) as tf.Scalar;
}

/**
 * Mean squared change of the future frames from the last context frame (motion-weighted as the frame loss
 * is), floored: what "nothing moves" costs.
 */
export function noMotionError(frames: tf.Tensor5D, contextFrames: number, motionWeight = 0): tf.Scalar {
  return tf.tidy(() => {
    const change = futureChange(frames, contextFrames);
    return noMotionOfChange(change, weightsOfChange(change, motionWeight));
  });
}

export function wholeBatchOf(batch: SequenceBatch, draw: NoiseDraw, motionWeight = 0): WholeBatch {
  const noMotion = tf.tidy(() => noMotionError(batch.frames, batch.contextFrames, motionWeight).dataSync()[0]!);
  return { size: batch.frames.shape[0], noMotion, policyCount: draw.policy.reduce((a, c) => a + c, 0) };
}

/**
 * The residual frame loss: the future frames' squared error, relative to the error of predicting no motion
 * (1 = "nothing moves"), with moved pixels weighing 1 + motionWeight in both. `noMotion` is the whole batch's
 * divisor when `frames` is a share of it.
 */
export function residualFrameLoss(
  predicted: tf.Tensor5D,
  frames: tf.Tensor5D,
  contextFrames: number,
  motionWeight = 0,
  noMotion?: number,
): tf.Scalar {
  return tf.tidy(() => {
    const [b, f, h, w, ch] = frames.shape;
    const k = contextFrames;
    const err = tf.sub(predicted, frames).slice([0, k, 0, 0, 0], [b, f - k, h, w, ch]);
    // The change and its weights once, for the error and (unless the whole batch's is given) the divisor.
    const change = futureChange(frames, k);
    const weights = weightsOfChange(change, motionWeight);
    const divisor = noMotion !== undefined ? tf.scalar(noMotion) : noMotionOfChange(change, weights);
    return tf.div(weightedMean(tf.square(err), weights), divisor) as tf.Scalar;
  });
}

/**
 * The student's loss on one batch; `teacherRaw` is required for the selfflow objective. With `whole`,
 * `batch` is a share of a larger batch and each part is the share's contribution to the whole
 * batch's loss, so the parts (and their gradients) summed over the shares are the whole batch's.
 */
export function studentLoss(
  student: Params,
  cfg: WorldModelConfig,
  batch: SequenceBatch,
  draw: NoiseDraw,
  o: ObjectiveOptions,
  teacherRaw?: tf.Tensor4D,
  whole?: WholeBatch,
): LossParts {
  const [b, f] = batch.frames.shape;
  // Mean-type parts of a share weigh by its fraction of the whole batch.
  const share = whole ? b / whole.size : 1;
  const k = batch.contextFrames;
  const { input, eps, epsA } = noisedBatch(batch, draw, draw.studentT, cfg);
  const out = worldModelForward(
    student,
    cfg,
    input,
    { language: batch.language },
    { projectedLayer: o.kind === 'selfflow' ? cfg.studentLayer : undefined },
  );
  const hw = [cfg.imageHeight, cfg.imageWidth, 3];
  const future = (x: tf.Tensor) => x.slice([0, k, 0, 0, 0], [b, f - k, ...hw]);
  let frame: tf.Scalar;
  if (out.frameClean) {
    // Residual models regress the clean frame (the velocity loss would weight it by 1/t^2, letting the one
    // nearly clean sample of a batch dominate), relative to the batch's no-motion error: 1 = "nothing moves".
    // Raw pixel MSE is ~100x smaller than the action and distillation losses and starved under gradient clipping.
    frame = residualFrameLoss(out.frameClean, batch.frames, k, o.motionWeight, whole?.noMotion);
  } else frame = tf.mean(tf.square(future(tf.sub(out.frameVelocity, velocityTarget(batch.frames, eps))))) as tf.Scalar;
  if (whole) frame = tf.mul(frame, share) as tf.Scalar;
  const aTarget = velocityTarget(batch.actions, epsA);
  const aErr = tf.sub(out.actionVelocity, aTarget).slice([0, k - 1, 0], [b, f - k, cfg.actionDim]);
  const perSample = tf.mean(tf.square(aErr), [1, 2]);
  const policy = tf.tensor1d(draw.policy);
  const nPolicy = whole ? whole.policyCount : draw.policy.reduce((a, c) => a + c, 0);
  const action = (nPolicy > 0 ? tf.div(tf.sum(tf.mul(perSample, policy)), nPolicy) : tf.scalar(0)) as tf.Scalar;
  let ssl = tf.scalar(0);
  if (o.kind === 'selfflow') {
    if (!teacherRaw || !out.projected) throw new Error('selfflow objective needs teacher features');
    ssl = cosineLoss(out.projected, teacherRaw, k);
    if (whole) ssl = tf.mul(ssl, share) as tf.Scalar;
  }
  const total = tf.addN([frame, tf.mul(action, o.actionWeight), tf.mul(ssl, o.sslWeight)]) as tf.Scalar;
  return { total, frame, action, ssl };
}

/** teacher <- decay * teacher + (1 - decay) * student, in place. */
export function emaUpdate(teacher: Record<string, tf.Variable>, student: Params, decay: number): void {
  // wasm+blas: in place on the heap (src/backend/blas-updates.ts), where the teacher owns its data.
  const native = inPlaceUpdates();
  tf.tidy(() => {
    for (const [name, t] of Object.entries(teacher))
      if (!native?.ema(t, student[name]!, decay)) t.assign(tf.add(tf.mul(t, decay), tf.mul(student[name]!, 1 - decay)));
  });
}
