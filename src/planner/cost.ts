/**
 * The planner's cost, one for every model: predicted futures (src/planner/plan-model.ts) scored
 * against the goal picture with a preset's weights. Per step: pixel MSE, multi-scale pixel
 * distance, change-map and reach distances (src/planner/image-distance.ts, relative to the current
 * frame), the model's own representation distance when it has one, and metres from the predicted
 * gripper position to the goal picture's; steps are mixed between terminal and accumulated
 * (stepWeights); the mean squared normalised action is added once per candidate.
 */
import * as tf from '@tensorflow/tfjs';
import type { ActionStats } from '../core/action-stats.js';
import { observationToTensor } from './frames.js';
import { distance, goalGripperPosition, predictedPositions, type Vec3 } from './gripper-position.js';
import { changeDistance, pyramidDistance, reachDistance } from './image-distance.js';
import type { CostFactory, CostWeights, Futures, PlanModel } from './plan-model.js';
import type { Goal, Observation } from '../core/types.js';

/** Per-step cost weights: the terminal fraction on the last step, the rest spread evenly. */
export function stepWeights(horizon: number, terminal: number): number[] {
  return Array.from({ length: horizon }, (_, j) => (1 - terminal) / horizon + (j === horizon - 1 ? terminal : 0));
}

/** What futures are compared with: the current frame and the goal picture at the model's resolution, and the goal's gripper position. */
export interface CostReference {
  now: tf.Tensor3D;
  goal: tf.Tensor3D;
  goalPosition?: Vec3;
}

/** The goal's recorded gripper position is read only for a pose cost (`withPosition`): a real robot's goal picture carries none. */
export function costReference(obs: Observation, goal: Goal, height: number, width: number, withPosition: boolean): CostReference {
  const last = goal.images[goal.images.length - 1];
  if (!last) throw new Error('goal has no image');
  return {
    now: observationToTensor(obs, height, width),
    goal: observationToTensor(last, height, width),
    goalPosition: withPosition ? goalGripperPosition(goal) : undefined,
  };
}

/**
 * The goal as scoring threads get it: a plain copy of its last picture, with the picture's recorded
 * gripper position only for a pose cost (`withPosition`) and without the recorded gripper state, so
 * a worker can read nothing of the goal that the cost does not use.
 */
export function scoringGoal(goal: Goal, withPosition: boolean): Goal {
  const last = goal.images[goal.images.length - 1];
  if (!last) throw new Error('goal has no image');
  const picture = { image: last.image, height: last.height, width: last.width, stamp: last.stamp };
  return { images: [withPosition && last.proprio ? { ...picture, proprio: last.proprio } : picture], instruction: goal.instruction };
}

/** Per candidate: the step-weighted distance of the positions (n x horizon x 3) to `goal`. */
export function poseCosts(positions: Float64Array, n: number, horizon: number, goal: Vec3, weights: number[]): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < horizon; t++) {
      const o = (i * horizon + t) * 3;
      out[i]! += weights[t]! * distance([positions[o]!, positions[o + 1]!, positions[o + 2]!], goal);
    }
  }
  return out;
}

/** The pose term of kinematically predicted moves (predictedPositions) from `start`. */
export function predictedPoseCosts(
  candidates: Float32Array,
  n: number,
  horizon: number,
  stats: ActionStats,
  start: Vec3,
  goal: Vec3,
  weights: number[],
): Float32Array {
  return poseCosts(predictedPositions(candidates, n, horizon, stats, start), n, horizon, goal, weights);
}

/**
 * Costs of n candidates (n x horizon x actionDim normalised) from their futures, which `predict`
 * makes inside this function's tf.tidy (so their tensors are freed with it).
 */
export function futureCosts(
  w: CostWeights,
  ref: CostReference,
  predict: () => Futures,
  candidates: Float32Array,
  n: number,
  horizon: number,
  actionDim: number,
): Float32Array {
  let futures!: Futures;
  const costs = tf.tidy(() => {
    const actions = tf.tensor3d(candidates.subarray(0, n * horizon * actionDim), [n, horizon, actionDim]);
    futures = predict();
    const img = futures.frames;
    const [, , h, wd] = img.shape;
    const stepW = tf.tensor1d(stepWeights(horizon, w.terminal));
    let perStep = tf.zeros([n, horizon]);
    if (w.pixel > 0) perStep = tf.add(perStep, tf.mul(w.pixel, tf.mean(tf.square(tf.sub(img, ref.goal)), [2, 3, 4])));
    const flat = img.reshape([n * horizon, h, wd, 3]) as tf.Tensor4D;
    if (w.pyramid > 0) perStep = tf.add(perStep, tf.mul(w.pyramid, pyramidDistance(flat, ref.goal).reshape([n, horizon])));
    if (w.change > 0) perStep = tf.add(perStep, tf.mul(w.change, changeDistance(flat, ref.now, ref.goal).reshape([n, horizon])));
    if (w.reach > 0) perStep = tf.add(perStep, tf.mul(w.reach, reachDistance(flat, ref.now, ref.goal).reshape([n, horizon])));
    if (w.representation > 0 && futures.representation) perStep = tf.add(perStep, tf.mul(w.representation, futures.representation()));
    let total = tf.sum(tf.mul(perStep, stepW), -1);
    if (w.actionMagnitude > 0) total = tf.add(total, tf.mul(w.actionMagnitude, tf.mean(tf.square(actions), [1, 2])));
    return total;
  });
  const out = costs.dataSync().slice() as Float32Array;
  costs.dispose();
  const positions = w.pose > 0 && ref.goalPosition ? futures.positions?.() : undefined;
  if (positions) {
    const poseW = stepWeights(horizon, w.terminal).map((x) => x * w.pose);
    poseCosts(positions, n, horizon, ref.goalPosition!, poseW).forEach((x, i) => (out[i]! += x));
  }
  return out;
}

/** What the cost reads of a preset, at every plan (so a preset edited in place takes effect). */
export interface CostSettings {
  cost: CostWeights;
  optimizer: { horizon: number };
}

/** The per-plan cost of a model: its futures for each candidate, scored by futureCosts with the preset's weights. */
export function modelCost(model: PlanModel, settings: CostSettings, actionDim: number): CostFactory {
  return (obs, goal, rng) => {
    const horizon = settings.optimizer.horizon;
    const rollout = model.rollout(obs, goal, horizon, rng);
    let ref: CostReference;
    try {
      ref = costReference(obs, goal, model.imageHeight, model.imageWidth, settings.cost.pose > 0);
    } catch (e) {
      rollout.dispose();
      throw e;
    }
    const imagine = rollout.imagine?.bind(rollout);
    return {
      cost: async (c, n) => futureCosts(settings.cost, ref, () => rollout.predict(c, n), c, n, horizon, actionDim),
      proposals: rollout.proposals,
      imagine: imagine && (async (best) => imagine(best)),
      dispose() {
        rollout.dispose();
        tf.dispose([ref.now, ref.goal]);
      },
    };
  };
}
