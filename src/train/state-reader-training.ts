/**
 * Trains the state reader (src/model/state-reader.ts) on RLDS episodes that record the robot's
 * state with every picture: RT-1's `base_pose_tool_reached` (the first three values: x, y, z) and
 * `gripper_closed`. Episodes are split into train and validation by their key, as finetune splits
 * them, and the validation errors are what the command reports.
 */
import * as tf from '@tensorflow/tfjs';
import { perStepSize, type DatasetCard } from '../data/card.js';
import { decodeImage } from '../image/decode.js';
import { resizeRgb } from '../image/resize.js';
import { readEpisodes, recordWhere, stepRow, type Episode } from '../data/rlds.js';
import { isValEpisode, toBytes } from '../data/windows.js';
import { UserError } from '../core/errors.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { DEFAULT_STATE_READER, stateReaderForward, stateReaderInit, toReadStates, type StateReaderConfig } from '../model/state-reader.js';
import { fitSmallNet, trainAndHeld, type SmallNetFitOptions } from './small-net-fit.js';
import { pictureBatch } from './picture-batch.js';

/**
 * Weight of the closedness loss against the position loss: the fingers are a few pixels of the
 * picture and a gripper closed on a can differs from an open one by 4 cm of finger travel, so with
 * equal weights the reader learnt positions first and read cans held as half open.
 */
export const CLOSEDNESS_WEIGHT = 5;

export const POSITION_FEATURE = 'steps/observation/base_pose_tool_reached';
export const CLOSEDNESS_FEATURE = 'steps/observation/gripper_closed';

/** Pictures at the reader's size with the state recorded with each. */
export interface ReaderSamples {
  height: number;
  width: number;
  /** N x height x width x 3, uint8. */
  pixels: Uint8Array[];
  /** N x 3 metres. */
  positions: Float32Array;
  closedness: Float32Array;
  val: boolean[];
}

/** A per-step state feature of an episode with at least `size` values; `who` names the learner in errors. */
export function stateField(ep: Episode, name: string, size: number, who = 'the state reader') {
  const f = ep.fields.get(name);
  if (!f) throw new UserError(`${recordWhere(ep)}: feature '${name}' is missing; ${who} learns from it`);
  const per = perStepSize(f.spec);
  if (per < size) throw new UserError(`${recordWhere(ep)}: feature '${name}' holds ${per} values per step, ${who} needs ${size}`);
  return f;
}

export interface SampleOptions {
  dataDirs: string[];
  card: DatasetCard;
  height: number;
  width: number;
  valFraction: number;
  /** Keep every `stride`-th step (neighbouring pictures are nearly the same). */
  stride: number;
  skipCorrupt?: boolean;
  onCorrupt?: (m: string) => void;
}

export async function readerSamples(o: SampleOptions): Promise<ReaderSamples> {
  const pixels: Uint8Array[] = [];
  const positions: number[] = [];
  const closedness: number[] = [];
  const val: boolean[] = [];
  for (const dir of o.dataDirs) {
    for await (const ep of readEpisodes(dir, o.card, { skipCorrupt: o.skipCorrupt, onCorrupt: o.onCorrupt })) {
      const images = ep.fields.get(o.card.image)!.values as Uint8Array[];
      const pose = stateField(ep, POSITION_FEATURE, 3);
      const closed = stateField(ep, CLOSEDNESS_FEATURE, 1);
      const held = isValEpisode(`${dir}/${ep.key}`, o.valFraction);
      for (let t = 0; t < ep.steps; t += o.stride) {
        const img = decodeImage(images[t]!, `${recordWhere(ep)}: feature '${o.card.image}' step ${t}`);
        pixels.push(toBytes(resizeRgb(img, o.height, o.width)));
        positions.push(...stepRow(pose, t).subarray(0, 3));
        const c = stepRow(closed, t)[0]!;
        if (!(c >= 0 && c <= 1))
          throw new UserError(`${recordWhere(ep)}: feature '${CLOSEDNESS_FEATURE}' step ${t} is ${c}, not in [0, 1]`);
        closedness.push(c);
        val.push(held);
      }
    }
  }
  if (!pixels.length) throw new UserError(`${o.dataDirs.join(', ')}: no episodes to train the state reader on`);
  return {
    height: o.height,
    width: o.width,
    pixels,
    positions: Float32Array.from(positions),
    closedness: Float32Array.from(closedness),
    val,
  };
}

export interface ReaderTrainOptions extends SmallNetFitOptions {
  fullOpening: number;
  /** Patch side of the stem and trunk channels; DEFAULT_STATE_READER's where not given. */
  patch?: number;
  channels?: number;
}

/** Mean absolute errors on the held-out pictures. */
export interface ReaderErrors {
  pictures: number;
  /** Per axis, metres. */
  position: [number, number, number];
  /** Euclidean, metres: median and 90th percentile. */
  distanceMedian: number;
  distanceP90: number;
  closedness: number;
}

export function meanStd(values: Float32Array, stride: number, k: number, rows: number[]): [number, number] {
  let s = 0;
  let s2 = 0;
  for (const i of rows) {
    const v = values[i * stride + k]!;
    s += v;
    s2 += v * v;
  }
  const mean = s / rows.length;
  return [mean, Math.sqrt(Math.max(1e-8, s2 / rows.length - mean * mean))];
}

const batchImages = (s: ReaderSamples, rows: number[]) => pictureBatch(s.pixels, rows, s.height, s.width);

export async function trainStateReader(
  s: ReaderSamples,
  o: ReaderTrainOptions,
): Promise<{ cfg: StateReaderConfig; tensors: TensorMap; errors: ReaderErrors }> {
  const { train, held } = trainAndHeld(s.val);
  if (!train.length) throw new UserError('state reader: every episode fell into the validation split; add episodes');
  const stats = [0, 1, 2].map((k) => meanStd(s.positions, 3, k, train));
  const cfg: StateReaderConfig = {
    ...DEFAULT_STATE_READER,
    patch: o.patch ?? DEFAULT_STATE_READER.patch,
    channels: o.channels ?? DEFAULT_STATE_READER.channels,
    imageHeight: s.height,
    imageWidth: s.width,
    positionMean: stats.map((m) => m[0]) as [number, number, number],
    positionStd: stats.map((m) => m[1]) as [number, number, number],
    fullOpening: o.fullOpening,
  };
  const { tensors, result } = await fitSmallNet(
    stateReaderInit(cfg, o.seed),
    train,
    o,
    (rows) => {
      const images = batchImages(s, rows);
      const target = tf.tensor2d(
        rows.flatMap((r) => [0, 1, 2].map((k) => (s.positions[r * 3 + k]! - cfg.positionMean[k]!) / cfg.positionStd[k]!)),
        [rows.length, 3],
      );
      const closed = tf.tensor2d(
        rows.map((r) => s.closedness[r]!),
        [rows.length, 1],
      );
      const loss = (vars: Record<string, tf.Variable>) => {
        const out = stateReaderForward(vars, cfg, images);
        const pos = tf.losses.meanSquaredError(target, out.slice([0, 0], [-1, 3]));
        const grip = tf.losses.sigmoidCrossEntropy(closed, out.slice([0, 3], [-1, 1]));
        return tf.add(pos, tf.mul(grip, CLOSEDNESS_WEIGHT)) as tf.Scalar;
      };
      return { loss, inputs: [images, target, closed] };
    },
    (vars) => readerErrors(vars, cfg, s, held.length ? held : train),
  );
  return { cfg, tensors, errors: result };
}

export function readerErrors(params: Record<string, tf.Tensor>, cfg: StateReaderConfig, s: ReaderSamples, rows: number[]): ReaderErrors {
  const abs = [0, 0, 0];
  let closedErr = 0;
  const dist: number[] = [];
  for (let i = 0; i < rows.length; i += 256) {
    const part = rows.slice(i, i + 256);
    const images = batchImages(s, part);
    const raw = stateReaderForward(params, cfg, images);
    const states = toReadStates(raw.dataSync() as Float32Array, cfg);
    tf.dispose([images, raw]);
    states.forEach((st, j) => {
      const r = part[j]!;
      const d = [0, 1, 2].map((k) => st.position[k]! - s.positions[r * 3 + k]!);
      d.forEach((v, k) => (abs[k]! += Math.abs(v)));
      dist.push(Math.hypot(...d));
      closedErr += Math.abs(st.closedness - s.closedness[r]!);
    });
  }
  dist.sort((a, b) => a - b);
  const n = rows.length;
  return {
    pictures: n,
    position: abs.map((v) => v / n) as [number, number, number],
    distanceMedian: dist[Math.floor(n / 2)]!,
    distanceP90: dist[Math.min(n - 1, Math.floor(n * 0.9))]!,
    closedness: closedErr / n,
  };
}
