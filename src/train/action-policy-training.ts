/**
 * Trains the action policy (src/model/action-policy.ts) by flow matching on robot episodes: for
 * every step, the picture, the robot's state (RT-1's `base_pose_tool_reached` x, y, z and
 * `gripper_closed`), the instruction's embedding, and the chunk of recorded actions that starts
 * there, normalised with the world model's action statistics. Episodes are split into train and
 * validation by their key, as finetune splits them; the validation figures are what the command
 * reports.
 */
import * as tf from '@tensorflow/tfjs';
import type { ActionStats } from '../core/action-stats.js';
import { normaliseActions } from '../core/action-stats.js';
import { UserError } from '../core/errors.js';
import { rawActionAt } from '../data/action-stats.js';
import { actionNames, type DatasetCard } from '../data/card.js';
import { readEpisodes, recordWhere, stepRow, type Episode } from '../data/rlds.js';
import { isValEpisode, toBytes } from '../data/windows.js';
import { decodeImage } from '../image/decode.js';
import { resizeRgb } from '../image/resize.js';
import { seededNormal } from '../flow/noise.js';
import {
  actionPolicyInit,
  actionStatsMismatch,
  DEFAULT_ACTION_POLICY,
  policyCondition,
  policyVelocity,
  sampleChunks,
  STATE_DIM,
  type ActionPolicyConfig,
} from '../model/action-policy.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { Rng } from '../util/rng.js';
import { fitSmallNet, trainAndHeld, type SmallNetFitOptions } from './small-net-fit.js';
import { pictureBatch } from './picture-batch.js';
import { CLOSEDNESS_FEATURE, meanStd, POSITION_FEATURE, stateField } from './state-reader-training.js';

const WHO = 'the action policy';
/** An episode counts as successful when its last step's reward is positive (RT-1 and `sim collect` episodes). */
export const REWARD_FEATURE = 'steps/reward';

/** One sample per kept step: picture, state, instruction (by episode) and the recorded chunk from there. */
export interface PolicySamples {
  height: number;
  width: number;
  chunk: number;
  actionDim: number;
  pixels: Uint8Array[];
  /** N x 4: x, y, z (m), closedness. */
  states: Float32Array;
  /** N x chunk x A normalised actions; steps past the episode's end repeat its last action. */
  chunks: Float32Array;
  /** Per sample, the index of its episode's instruction embedding. */
  language: number[];
  embeddings: Float32Array[];
  val: boolean[];
  /** Episodes kept (the relabelled ones among them) and left out as unsuccessful. */
  episodes: { kept: number; relabelled: number; unsuccessful: number };
}

export interface PolicySampleOptions {
  dataDirs: string[];
  /** Directories of expert-relabelled episodes (src/eval/dagger.ts): kept whatever their outcome. */
  relabelledDirs?: string[];
  card: DatasetCard;
  stats: ActionStats;
  height: number;
  width: number;
  chunk: number;
  valFraction: number;
  /** Keep only episodes whose last reward is positive. */
  successfulOnly: boolean;
  skipCorrupt?: boolean;
  onCorrupt?: (m: string) => void;
}

function succeeded(ep: Episode): boolean {
  const f = ep.fields.get(REWARD_FEATURE);
  if (!f) throw new UserError(`${recordWhere(ep)}: feature '${REWARD_FEATURE}' is missing; --successful-only reads it`);
  return stepRow(f, ep.steps - 1)[0]! > 0;
}

export async function policySamples(o: PolicySampleOptions): Promise<PolicySamples> {
  const names = actionNames(o.card);
  if (names.join(',') !== o.stats.names.join(','))
    throw new UserError(`the world model acts in [${o.stats.names.join(', ')}], card '${o.card.name}' records [${names.join(', ')}]`);
  const languageFeature = o.card.language_embedding;
  if (!languageFeature) throw new UserError(`card '${o.card.name}' names no language embedding; ${WHO} is conditioned on one`);
  const a = names.length;
  const s: PolicySamples = {
    height: o.height,
    width: o.width,
    chunk: o.chunk,
    actionDim: a,
    pixels: [],
    states: new Float32Array(0),
    chunks: new Float32Array(0),
    language: [],
    embeddings: [],
    val: [],
    episodes: { kept: 0, relabelled: 0, unsuccessful: 0 },
  };
  const states: number[] = [];
  const chunks: Float32Array[] = [];
  // A demonstration that failed teaches its failure; an expert-relabelled episode's actions are the expert's whatever happened.
  const sources = [...o.dataDirs.map((dir) => ({ dir, labels: false })), ...(o.relabelledDirs ?? []).map((dir) => ({ dir, labels: true }))];
  for (const { dir, labels } of sources) {
    for await (const ep of readEpisodes(dir, o.card, { skipCorrupt: o.skipCorrupt, onCorrupt: o.onCorrupt })) {
      if (o.successfulOnly && !labels && !succeeded(ep)) {
        s.episodes.unsuccessful++;
        continue;
      }
      s.episodes.kept++;
      if (labels) s.episodes.relabelled++;
      const images = ep.fields.get(o.card.image)!.values as Uint8Array[];
      const pose = stateField(ep, POSITION_FEATURE, 3, WHO);
      const closed = stateField(ep, CLOSEDNESS_FEATURE, 1, WHO);
      const langField = stateField(ep, languageFeature, 1, WHO);
      const lang = Float32Array.from(stepRow(langField, 0));
      s.embeddings.push(lang);
      const actions = Array.from({ length: ep.steps }, (_, t) => normaliseActions(o.stats, rawActionAt(o.card, ep, t)));
      const held = isValEpisode(`${dir}/${ep.key}`, o.valFraction);
      for (let t = 0; t < ep.steps; t++) {
        const img = decodeImage(images[t]!, `${recordWhere(ep)}: feature '${o.card.image}' step ${t}`);
        s.pixels.push(toBytes(resizeRgb(img, o.height, o.width)));
        const c = stepRow(closed, t)[0]!;
        if (!(c >= 0 && c <= 1))
          throw new UserError(`${recordWhere(ep)}: feature '${CLOSEDNESS_FEATURE}' step ${t} is ${c}, not in [0, 1]`);
        states.push(...stepRow(pose, t).subarray(0, 3), c);
        const chunk = new Float32Array(o.chunk * a);
        for (let k = 0; k < o.chunk; k++) chunk.set(actions[Math.min(t + k, ep.steps - 1)]!, k * a);
        chunks.push(chunk);
        s.language.push(s.embeddings.length - 1);
        s.val.push(held);
      }
    }
  }
  if (!s.pixels.length) throw new UserError(`${sources.map((x) => x.dir).join(', ')}: no episodes to train the action policy on`);
  s.states = Float32Array.from(states);
  s.chunks = new Float32Array(chunks.length * o.chunk * a);
  chunks.forEach((c, i) => s.chunks.set(c, i * o.chunk * a));
  return s;
}

export interface PolicyTrainOptions extends SmallNetFitOptions {
  fullOpening: number;
  /** Random shift of training pictures, pixels each way. */
  shift: number;
  /** Network sizes other than DEFAULT_ACTION_POLICY's (tests train small ones). */
  net?: Partial<Pick<ActionPolicyConfig, 'patch' | 'channels' | 'hidden' | 'flowSteps'>>;
  /**
   * Start from this policy instead of random weights (fine-tuning on new episodes, e.g. a DAgger round). Its sizes and
   * its state normalisation are kept, since its weights were learnt with them; `name` labels its mismatches.
   */
  init?: { name: string; cfg: ActionPolicyConfig; tensors: TensorMap };
}

/** Refuses a starting policy that cannot act on these samples: another picture size, chunk, action set or instruction embedding. */
function checkInitPolicy(init: NonNullable<PolicyTrainOptions['init']>, s: PolicySamples, stats: ActionStats, fullOpening: number) {
  const c = init.cfg;
  const wrong = (field: string, has: unknown, want: unknown) =>
    new UserError(`${init.name}: ${field} is ${JSON.stringify(has)}, but this training needs ${JSON.stringify(want)}`);
  if (c.imageHeight !== s.height || c.imageWidth !== s.width)
    throw wrong('the picture size', `${c.imageHeight}x${c.imageWidth}`, `${s.height}x${s.width}`);
  if (c.chunk !== s.chunk) throw wrong('chunk', c.chunk, s.chunk);
  const mismatch = actionStatsMismatch(c, stats);
  if (mismatch) throw new UserError(`${init.name}: ${mismatch}`);
  if (c.languageDim !== s.embeddings[0]!.length) throw wrong('languageDim', c.languageDim, s.embeddings[0]!.length);
  if (c.fullOpening !== fullOpening) throw wrong('fullOpening', c.fullOpening, fullOpening);
}

/** Held-out figures: the flow loss, and how far sampled chunks land from the recorded ones (normalised units, mean |difference|). */
export interface PolicyErrors {
  samples: number;
  flowLoss: number;
  /** Per action dimension, first action of the chunk. */
  firstAction: number[];
  chunk: number;
}

function batchTensors(s: PolicySamples, cfg: ActionPolicyConfig, rows: number[], shift?: { rng: Rng; max: number }) {
  const a = s.actionDim * s.chunk;
  return {
    images: pictureBatch(s.pixels, rows, s.height, s.width, shift),
    state: tf.tensor2d(
      rows.flatMap((r) =>
        Array.from({ length: STATE_DIM }, (_, k) => (s.states[r * STATE_DIM + k]! - cfg.stateMean[k]!) / cfg.stateStd[k]!),
      ),
      [rows.length, STATE_DIM],
    ),
    language: tf.tensor2d(
      rows.flatMap((r) => Array.from(s.embeddings[s.language[r]!]!)),
      [rows.length, cfg.languageDim],
    ),
    target: tf.tensor2d(
      rows.flatMap((r) => Array.from(s.chunks.subarray(r * a, (r + 1) * a))),
      [rows.length, a],
    ),
  };
}

/** Flow matching: x_t = (1 - t) noise + t chunk, velocity target chunk - noise. */
function flowLoss(p: Record<string, tf.Tensor>, cfg: ActionPolicyConfig, b: ReturnType<typeof batchTensors>, rng: Rng): tf.Scalar {
  return tf.tidy(() => {
    const n = b.target.shape[0];
    const noise = seededNormal(b.target.shape, rng.int(1 << 30)) as tf.Tensor2D;
    const t = tf.tensor1d(Array.from({ length: n }, () => rng.uniform(0, 1)));
    const tc = t.reshape([-1, 1]);
    const x = tf.add(tf.mul(tf.sub(1, tc), noise), tf.mul(tc, b.target)) as tf.Tensor2D;
    const cond = policyCondition(p, cfg, b.images, b.state, b.language);
    return tf.losses.meanSquaredError(tf.sub(b.target, noise), policyVelocity(p, cond, x, t)) as tf.Scalar;
  });
}

/** A new policy's configuration: default sizes, the samples' shapes and the training steps' state normalisation. */
function freshPolicyConfig(s: PolicySamples, stats: ActionStats, o: PolicyTrainOptions, train: number[]): ActionPolicyConfig {
  const norm = Array.from({ length: STATE_DIM }, (_, k) => meanStd(s.states, STATE_DIM, k, train));
  return {
    ...DEFAULT_ACTION_POLICY,
    ...o.net,
    imageHeight: s.height,
    imageWidth: s.width,
    chunk: s.chunk,
    actionNames: stats.names,
    languageDim: s.embeddings[0]!.length,
    stateMean: norm.map((m) => m[0]),
    stateStd: norm.map((m) => m[1]),
    fullOpening: o.fullOpening,
    ...actionNormalisation(stats),
  };
}

/** The statistics a policy's actions are normalised by, recorded with it (the model it was trained for). */
function actionNormalisation(stats: ActionStats): Pick<ActionPolicyConfig, 'actionMean' | 'actionStd'> {
  return { actionMean: [...stats.mean], actionStd: [...stats.std] };
}

export async function trainActionPolicy(
  s: PolicySamples,
  stats: ActionStats,
  o: PolicyTrainOptions,
): Promise<{ cfg: ActionPolicyConfig; tensors: TensorMap; errors: PolicyErrors }> {
  const { train, held } = trainAndHeld(s.val);
  if (!train.length) throw new UserError('action policy: every episode fell into the validation split; add episodes');
  if (o.init) checkInitPolicy(o.init, s, stats, o.fullOpening);
  // A fine-tuned policy learns these statistics' actions, whatever its init recorded (an older file records none).
  const cfg = o.init ? { ...o.init.cfg, ...actionNormalisation(stats) } : freshPolicyConfig(s, stats, o, train);
  const { tensors, result } = await fitSmallNet(
    o.init?.tensors ?? actionPolicyInit(cfg, o.seed),
    train,
    o,
    (rows, rng) => {
      const b = batchTensors(s, cfg, rows, o.shift > 0 ? { rng, max: o.shift } : undefined);
      return { loss: (vars) => flowLoss(vars, cfg, b, rng), inputs: Object.values(b) };
    },
    (vars) => policyErrors(vars, cfg, s, held.length ? held : train, o.seed),
  );
  return { cfg, tensors, errors: result };
}

/** Held-out figures on up to 2,000 samples spread over `rows`. */
export function policyErrors(
  params: Record<string, tf.Tensor>,
  cfg: ActionPolicyConfig,
  s: PolicySamples,
  rows: number[],
  seed: number,
): PolicyErrors {
  const every = Math.max(1, Math.ceil(rows.length / 2000));
  const picked = rows.filter((_, i) => i % every === 0);
  const a = s.actionDim;
  const first = new Array<number>(a).fill(0);
  let loss = 0;
  const rng = new Rng(seed + 1);
  for (let i = 0; i < picked.length; i += 256) {
    const part = picked.slice(i, i + 256);
    const b = batchTensors(s, cfg, part);
    const l = flowLoss(params, cfg, b, rng);
    loss += l.dataSync()[0]! * part.length;
    const sampled = tf.tidy(() =>
      sampleChunks(
        params,
        cfg,
        policyCondition(params, cfg, b.images, b.state, b.language),
        seededNormal(b.target.shape, seed + i) as tf.Tensor2D,
      ),
    );
    const got = sampled.dataSync() as Float32Array;
    const want = b.target.dataSync() as Float32Array;
    const w = a * s.chunk;
    part.forEach((_, j) => {
      for (let k = 0; k < a; k++) first[k]! += Math.abs(got[j * w + k]! - want[j * w + k]!);
    });
    tf.dispose([l, sampled, ...Object.values(b)]);
  }
  return { samples: picked.length, flowLoss: loss / picked.length, firstAction: first.map((v) => v / picked.length), chunk: s.chunk };
}
