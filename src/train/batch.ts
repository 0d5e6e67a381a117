/** Training windows as one tensor batch, the form every step and validation takes. */
import * as tf from '@tensorflow/tfjs';
import type { WorldModelConfig } from '../core/model-config.js';
import type { SequenceBatch } from './objective.js';
import type { WindowLike } from './training-window.js';

export function toBatch(windows: WindowLike[], cfg: WorldModelConfig, contextFrames: number, futureFrames: number): SequenceBatch {
  const b = windows.length;
  const f = contextFrames + futureFrames;
  const px = cfg.imageHeight * cfg.imageWidth * 3;
  const frames = new Float32Array(b * f * px);
  // Actions between context frames are left at zero (the normalised mid-range) in training and planning
  // alike: the model reads motion from the context frames and is conditioned only on the actions it must predict.
  const actions = new Float32Array(b * (f - 1) * cfg.actionDim);
  windows.forEach((w, i) => {
    if (w.frames.length !== f * px)
      throw new Error(
        `training window has ${w.frames.length} frame values, expected ${f} frames of ${cfg.imageHeight}x${cfg.imageWidth}x3`,
      );
    if (w.actions.length !== futureFrames * cfg.actionDim)
      throw new Error(`training window has ${w.actions.length} action values, expected ${futureFrames} x ${cfg.actionDim}`);
    frames.set(w.frames, i * f * px);
    actions.set(w.actions, (i * (f - 1) + contextFrames - 1) * cfg.actionDim);
  });
  const language =
    cfg.languageDim > 0 && windows.every((w) => w.language)
      ? tf.tensor2d(Float32Array.from(windows.flatMap((w) => [...w.language!])), [b, cfg.languageDim])
      : undefined;
  return {
    frames: tf.tensor5d(frames, [b, f, cfg.imageHeight, cfg.imageWidth, 3]),
    actions: tf.tensor3d(actions, [b, f - 1, cfg.actionDim]),
    language,
    contextFrames,
  };
}

export function disposeBatch(b: SequenceBatch): void {
  tf.dispose([b.frames, b.actions, ...(b.language ? [b.language] : [])]);
}
