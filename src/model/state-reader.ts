/**
 * The state reader: a small convolutional network that reads the robot's own state off one camera
 * picture, the gripper's x, y, z (metres, the frame of RT-1's `base_pose_tool_reached`) and its
 * closedness (RT-1's `gripper_closed`, 0 open .. 1 shut). It is trained on the robot's episodes,
 * which record that state with every picture (`selfflow-wm model train-reader`), and it tells the
 * planner where the gripper is in a goal picture, which carries no recorded state.
 *
 * Layers: the convolutional trunk (src/model/conv-trunk.ts: a patch stem, 4x4 by default and 8x8 in
 * the shipped 128x160 reader, two residual 3x3 convolutions, spatial softmax and channel means) into
 * a two-layer head.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { UserError } from '../core/errors.js';
import { convTrunk, convTrunkLayout, trunkFeatures } from './conv-trunk.js';
import { linear, type Params } from './layers.js';
import { initHost, toTf, type Layout } from './params.js';
import { readWeightFile, writeWeightFile, type WeightFileKind } from './weight-file.js';
import { toModelFrame } from '../image/resize.js';

export const STATE_READER_FORMAT = 'selfflow-wm/state-reader@1';
/** The reader's file inside a model directory; presets with `goalState: "read"` load it from there. */
export const STATE_READER_FILE = 'state-reader.safetensors';

export interface StateReaderConfig {
  imageHeight: number;
  imageWidth: number;
  patch: number;
  channels: number;
  hidden: number;
  /** Normalisation of the position outputs: the training data's per-axis mean and standard deviation. */
  positionMean: [number, number, number];
  positionStd: [number, number, number];
  /** The fingers' widest opening (m): converts closedness to an opening the planner compares with the robot's. */
  fullOpening: number;
}

/** What the reader sees in one picture. */
export interface ReadState {
  position: [number, number, number];
  /** 0 fully open .. 1 shut. */
  closedness: number;
}

export const DEFAULT_STATE_READER: Omit<StateReaderConfig, 'positionMean' | 'positionStd' | 'fullOpening'> = {
  imageHeight: 64,
  imageWidth: 80,
  patch: 4,
  channels: 32,
  hidden: 128,
};

/** Outputs: x, y, z (normalised), closedness logit. */
const OUTPUTS = 4;

export function stateReaderLayout(c: StateReaderConfig): Layout {
  const k = c.channels;
  return new Map([
    ...convTrunkLayout(k, c.patch),
    ['head1.weight', [c.hidden, trunkFeatures(k)]],
    ['head1.bias', [c.hidden]],
    ['head2.weight', [OUTPUTS, c.hidden]],
    ['head2.bias', [OUTPUTS]],
  ]);
}

export function stateReaderInit(c: StateReaderConfig, seed: number): TensorMap {
  return initHost(stateReaderLayout(c), seed, () => {
    throw new Error('the state reader has no fixed embeddings');
  });
}

/** Raw outputs [B, 4] (x, y, z normalised; closedness logit) of pictures [B, H, W, 3] in [-1, 1]. */
export function stateReaderForward(p: Params, c: StateReaderConfig, images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [, h, w] = images.shape;
    if (h !== c.imageHeight || w !== c.imageWidth)
      throw new Error(`state reader: pictures are ${h}x${w}, the reader reads ${c.imageHeight}x${c.imageWidth}`);
    const features = convTrunk(p, c.patch, images);
    return linear(tf.relu(linear(features, p, 'head1')), p, 'head2') as tf.Tensor2D;
  });
}

/** Raw outputs [B, 4] to states in metres and closedness. */
export function toReadStates(raw: Float32Array | number[], c: StateReaderConfig): ReadState[] {
  const out: ReadState[] = [];
  for (let i = 0; i + OUTPUTS <= raw.length; i += OUTPUTS) {
    const pos = [0, 1, 2].map((k) => raw[i + k]! * c.positionStd[k]! + c.positionMean[k]!) as [number, number, number];
    out.push({ position: pos, closedness: 1 / (1 + Math.exp(-raw[i + 3]!)) });
  }
  return out;
}

function checkConfig(c: StateReaderConfig, where: string): void {
  const ints = ['imageHeight', 'imageWidth', 'patch', 'channels', 'hidden'] as const;
  for (const k of ints)
    if (!Number.isInteger(c?.[k]) || c[k] < 1) throw new UserError(`${where}: config field '${k}' must be a positive integer`);
  if (c.imageHeight % c.patch || c.imageWidth % c.patch)
    throw new UserError(`${where}: config field 'patch' (${c.patch}) must divide the image size ${c.imageHeight}x${c.imageWidth}`);
  for (const k of ['positionMean', 'positionStd'] as const)
    if (!Array.isArray(c[k]) || c[k].length !== 3 || c[k].some((v) => !Number.isFinite(v)))
      throw new UserError(`${where}: config field '${k}' must hold three numbers`);
  if (c.positionStd.some((v) => v <= 0)) throw new UserError(`${where}: config field 'positionStd' must be positive`);
  if (!(c.fullOpening > 0)) throw new UserError(`${where}: config field 'fullOpening' must be a positive number of metres`);
}

const FILE_KIND: WeightFileKind<StateReaderConfig> = {
  format: STATE_READER_FORMAT,
  what: 'a selfflow-wm state reader',
  check: checkConfig,
  layout: stateReaderLayout,
};

export function writeStateReader(path: string, c: StateReaderConfig, tensors: TensorMap, extra: Record<string, string> = {}): void {
  writeWeightFile(path, FILE_KIND, c, tensors, extra);
}

export function readStateReaderFile(path: string): { cfg: StateReaderConfig; tensors: TensorMap; metadata: Record<string, string> } {
  return readWeightFile(path, FILE_KIND);
}

/** Reads pictures with trained weights; `read` takes RGB uint8 pictures of any size. */
export class StateReader {
  constructor(
    readonly params: Params,
    readonly cfg: StateReaderConfig,
  ) {}

  /** Pictures [B, H, W, 3] in [-1, 1] at the reader's size. */
  readBatch(images: tf.Tensor4D): ReadState[] {
    const raw = stateReaderForward(this.params, this.cfg, images);
    try {
      return toReadStates(raw.dataSync() as Float32Array, this.cfg);
    } finally {
      raw.dispose();
    }
  }

  /** RGB uint8 pictures of any size (resized to the reader's). */
  read(pictures: { image: Uint8Array; width: number; height: number }[]): ReadState[] {
    if (!pictures.length) return [];
    const { imageHeight: h, imageWidth: w } = this.cfg;
    const data = new Float32Array(pictures.length * h * w * 3);
    pictures.forEach((p, i) => data.set(toModelFrame({ data: p.image, width: p.width, height: p.height }, h, w), i * h * w * 3));
    const images = tf.tensor4d(data, [pictures.length, h, w, 3]);
    try {
      return this.readBatch(images);
    } finally {
      images.dispose();
    }
  }

  dispose(): void {
    tf.dispose(Object.values(this.params));
  }
}

export function loadStateReader(path: string): StateReader {
  const { cfg, tensors } = readStateReaderFile(path);
  return new StateReader(toTf(tensors), cfg);
}
