/**
 * The action policy: a flow-matching (diffusion-style) policy over action chunks, the shipped
 * model's own way to act from language. It sees what a robot has at every step: the current
 * camera picture, the robot's state (gripper x, y, z and closedness, as RT-1's
 * `base_pose_tool_reached` and `gripper_closed` record it) and the instruction's embedding. It
 * never sees a goal picture. The planner uses it as its proposal source (preset field `proposer`),
 * and the `wm-policy` preset executes its samples directly.
 *
 * Layers: the convolutional trunk (src/model/conv-trunk.ts) on the picture; its features with the
 * state and the projected instruction make a condition vector; a residual MLP maps the condition,
 * a noised chunk and its flow time to the velocity towards the recorded chunk. Sampling integrates
 * that velocity from Gaussian noise (time 0) to the chunk (time 1) with Euler steps. Actions are
 * the world model's normalised actions (its run's statistics), so proposals need no conversion.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { UserError } from '../core/errors.js';
import { convTrunk, convTrunkLayout, trunkFeatures } from './conv-trunk.js';
import { linear, type Params } from './layers.js';
import { initHost, toTf, type Layout } from './params.js';
import { readWeightFile, writeWeightFile, type WeightFileKind } from './weight-file.js';

export const ACTION_POLICY_FORMAT = 'selfflow-wm/action-policy@1';
/** The policy's file inside a model directory; presets with `proposer: "policy"` load it from there. */
export const ACTION_POLICY_FILE = 'action-policy.safetensors';

/** State values the policy reads: gripper x, y, z (metres) and closedness (0 open .. 1 shut). */
export const STATE_DIM = 4;
/** Sine and cosine features of the flow time. */
const TIME_FREQUENCIES = 8;

export interface ActionPolicyConfig {
  imageHeight: number;
  imageWidth: number;
  patch: number;
  channels: number;
  hidden: number;
  /** Actions per sampled chunk. */
  chunk: number;
  /** The world model's action dimensions, in its order (checked against the run it serves). */
  actionNames: string[];
  languageDim: number;
  /** Normalisation of the state input: the training data's per-value mean and standard deviation. */
  stateMean: number[];
  stateStd: number[];
  /** The fingers' widest opening (m): converts a robot's finger opening to the closedness the policy reads. */
  fullOpening: number;
  /** Euler steps from noise to a chunk. */
  flowSteps: number;
  /**
   * The action statistics (the world model's run.json) the chunks are normalised by: a policy acts only with a world
   * model of the same statistics. Files written before this field have none and are not checked.
   */
  actionMean?: number[];
  actionStd?: number[];
}

export const DEFAULT_ACTION_POLICY = { imageHeight: 64, imageWidth: 80, patch: 4, channels: 32, hidden: 256, chunk: 4, flowSteps: 10 };

export function actionPolicyLayout(c: ActionPolicyConfig): Layout {
  const h = c.hidden;
  const out = c.chunk * c.actionNames.length;
  return new Map([
    ...convTrunkLayout(c.channels, c.patch),
    ['observe.weight', [h, trunkFeatures(c.channels) + STATE_DIM]],
    ['observe.bias', [h]],
    ['language.weight', [h, c.languageDim]],
    ['condition.weight', [h, h]],
    ['condition.bias', [h]],
    ['denoise_in.weight', [h, h + out + 2 * TIME_FREQUENCIES]],
    ['denoise_in.bias', [h]],
    ['denoise_mid.weight', [h, h]],
    ['denoise_mid.bias', [h]],
    ['denoise_out.weight', [out, h]],
    ['denoise_out.bias', [out]],
  ]);
}

export function actionPolicyInit(c: ActionPolicyConfig, seed: number): TensorMap {
  return initHost(actionPolicyLayout(c), seed, () => {
    throw new Error('the action policy has no fixed embeddings');
  });
}

/** The condition [B, hidden] from pictures [B, H, W, 3] in [-1, 1], normalised states [B, 4] and instruction embeddings [B, L]. */
export function policyCondition(
  p: Params,
  c: ActionPolicyConfig,
  images: tf.Tensor4D,
  state: tf.Tensor2D,
  language: tf.Tensor2D,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w] = images.shape;
    if (h !== c.imageHeight || w !== c.imageWidth)
      throw new Error(`action policy: pictures are ${h}x${w}, the policy reads ${c.imageHeight}x${c.imageWidth}`);
    const seen = linear(tf.concat([convTrunk(p, c.patch, images), state], 1), p, 'observe');
    const x = tf.relu(tf.add(seen, linear(language, p, 'language')));
    return tf.add(x, tf.relu(linear(x, p, 'condition'))) as tf.Tensor2D;
  });
}

/** Sine and cosine of the flow time at octave frequencies: [B, 16]. */
function timeFeatures(t: tf.Tensor1D): tf.Tensor2D {
  const freqs = tf.tensor1d(Array.from({ length: TIME_FREQUENCIES }, (_, i) => Math.PI * 2 ** i));
  const angles = tf.mul(t.reshape([-1, 1]), freqs.reshape([1, -1]));
  return tf.concat([tf.sin(angles), tf.cos(angles)], 1) as tf.Tensor2D;
}

/** Velocity [B, chunk * A] of noised chunks `x` [B, chunk * A] at flow times `t` [B] under conditions [B, hidden]. */
export function policyVelocity(p: Params, condition: tf.Tensor2D, x: tf.Tensor2D, t: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const h = tf.relu(linear(tf.concat([condition, x, timeFeatures(t)], 1), p, 'denoise_in'));
    const h2 = tf.add(h, tf.relu(linear(h, p, 'denoise_mid')));
    return linear(h2, p, 'denoise_out') as tf.Tensor2D;
  });
}

/** Chunks [B, chunk * A] (clipped to [-1, 1]) from noise [B, chunk * A] under conditions [B, hidden]: Euler from time 0 to 1. */
export function sampleChunks(p: Params, c: ActionPolicyConfig, condition: tf.Tensor2D, noise: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    let x = noise;
    const b = noise.shape[0];
    for (let i = 0; i < c.flowSteps; i++) {
      const t = tf.fill([b], i / c.flowSteps) as tf.Tensor1D;
      x = tf.add(x, tf.mul(1 / c.flowSteps, policyVelocity(p, condition, x, t))) as tf.Tensor2D;
    }
    return tf.clipByValue(x, -1, 1) as tf.Tensor2D;
  });
}

function checkConfig(c: ActionPolicyConfig, where: string): void {
  const ints = ['imageHeight', 'imageWidth', 'patch', 'channels', 'hidden', 'chunk', 'languageDim', 'flowSteps'] as const;
  for (const k of ints)
    if (!Number.isInteger(c?.[k]) || c[k] < 1) throw new UserError(`${where}: config field '${k}' must be a positive integer`);
  if (c.imageHeight % c.patch || c.imageWidth % c.patch)
    throw new UserError(`${where}: config field 'patch' (${c.patch}) must divide the image size ${c.imageHeight}x${c.imageWidth}`);
  if (!Array.isArray(c.actionNames) || !c.actionNames.length || c.actionNames.some((n) => typeof n !== 'string'))
    throw new UserError(`${where}: config field 'actionNames' must be a non-empty list of names`);
  for (const k of ['stateMean', 'stateStd'] as const)
    if (!Array.isArray(c[k]) || c[k].length !== STATE_DIM || c[k].some((v) => !Number.isFinite(v)))
      throw new UserError(`${where}: config field '${k}' must hold ${STATE_DIM} numbers`);
  if (c.stateStd.some((v) => v <= 0)) throw new UserError(`${where}: config field 'stateStd' must be positive`);
  if (!(c.fullOpening > 0)) throw new UserError(`${where}: config field 'fullOpening' must be a positive number of metres`);
  for (const k of ['actionMean', 'actionStd'] as const)
    if (c[k] !== undefined && (!Array.isArray(c[k]) || c[k].length !== c.actionNames.length || c[k].some((v) => !Number.isFinite(v))))
      throw new UserError(`${where}: config field '${k}' must hold ${c.actionNames.length} numbers, one per action`);
}

/**
 * Why a policy cannot act for a world model with action statistics `stats`, or undefined where it can: its
 * actions are normalised by its own statistics, which must be the model's. A policy without them is not checked.
 */
export function actionStatsMismatch(c: ActionPolicyConfig, stats: { names: string[]; mean: number[]; std: number[] }): string | undefined {
  if (c.actionNames.join(',') !== stats.names.join(','))
    return `the policy acts in [${c.actionNames.join(', ')}], the world model in [${stats.names.join(', ')}]`;
  if (!c.actionMean || !c.actionStd) return undefined;
  const same = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-6 * Math.max(1, Math.abs(b[i]!)));
  const off = c.actionNames.filter((_, i) => !same([c.actionMean![i]!, c.actionStd![i]!], [stats.mean[i]!, stats.std[i]!]));
  return off.length
    ? `the policy's actions are normalised by other action statistics than the world model's (${off.join(', ')} differ): it was trained for another model`
    : undefined;
}

const FILE_KIND: WeightFileKind<ActionPolicyConfig> = {
  format: ACTION_POLICY_FORMAT,
  what: 'a selfflow-wm action policy',
  check: checkConfig,
  layout: actionPolicyLayout,
};

export function writeActionPolicy(path: string, c: ActionPolicyConfig, tensors: TensorMap, extra: Record<string, string> = {}): void {
  writeWeightFile(path, FILE_KIND, c, tensors, extra);
}

export function readActionPolicyFile(path: string): { cfg: ActionPolicyConfig; tensors: TensorMap; metadata: Record<string, string> } {
  return readWeightFile(path, FILE_KIND);
}

export function loadActionPolicyWeights(path: string): { params: Params; cfg: ActionPolicyConfig } {
  const { cfg, tensors } = readActionPolicyFile(path);
  return { params: toTf(tensors), cfg };
}
