/**
 * The training loop of the small networks that sit next to the world model (the state reader and
 * the action policy): AdamW with warm-up and cosine decay over mini-batches of training rows drawn
 * with replacement from a seeded stream, then an evaluation with the trained weights.
 *
 * A run can keep a resume file: every `every` steps the weights, the AdamW moments, the step and
 * the random stream's state are written (atomically) to one safetensors file. A later call with the
 * same fingerprint (the run's flags and data) continues from it and ends with the same weights as
 * an uninterrupted run.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import { toFloat32, type TensorMap } from '../checkpoint/tensor-map.js';
import { UserError } from '../core/errors.js';
import { toHost, toTf } from '../model/params.js';
import { Rng } from '../util/rng.js';
import { AdamW, DEFAULT_ADAMW, learningRate } from './adamw.js';

/** Sample indices split by their episodes' validation flags: trained on, and held out. */
export function trainAndHeld(val: boolean[]): { train: number[]; held: number[] } {
  return { train: val.flatMap((v, i) => (v ? [] : [i])), held: val.flatMap((v, i) => (v ? [i] : [])) };
}

export interface SmallNetResume {
  /** The resume file (written every `every` steps; read at the start when it exists). */
  path: string;
  every: number;
  /** What must be equal for the file to be continued from: the run's flags and data, as a string. */
  fingerprint: string;
  /** Called with the step a run continues from. */
  onResume?: (step: number) => void;
}

export interface SmallNetFitOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  resume?: SmallNetResume;
  onProgress?: (step: number, loss: number) => void;
}

const RESUME_FORMAT = 'selfflow-wm/small-net-resume@1';

/** The resume file next to a network file: `x.safetensors` -> `x.resume.safetensors`. */
export const resumeFileFor = (out: string) => `${out.replace(/\.safetensors$/, '')}.resume.safetensors`;

async function writeResume(r: SmallNetResume, vars: Record<string, tf.Variable>, adam: AdamW, step: number, rng: Rng): Promise<void> {
  const tensors: TensorMap = new Map();
  for (const [name, t] of await toHost(vars)) tensors.set(`w/${name}`, t);
  for (const [name, t] of await adam.stateTensors()) tensors.set(name, t);
  writeSafetensors(r.path, tensors, {
    format: RESUME_FORMAT,
    fingerprint: r.fingerprint,
    step: String(step),
    rng: String(rng.getState()),
  });
}

/** Restores weights, moments and the random stream from `r.path`; returns the step to continue from. */
function readResume(r: SmallNetResume, vars: Record<string, tf.Variable>, adam: AdamW, rng: Rng, steps: number): number {
  const { tensors, metadata } = readSafetensors(r.path);
  if (metadata.format !== RESUME_FORMAT) throw new UserError(`${r.path}: not a selfflow-wm resume file (format '${metadata.format}')`);
  if (metadata.fingerprint !== r.fingerprint)
    throw new UserError(
      `${r.path}: the resume file of a run with other flags or data; rerun with the same flags, or delete it to start over`,
    );
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0 || step > steps)
    throw new UserError(`${r.path}: metadata field 'step' (${metadata.step}) is not in 0..${steps}`);
  for (const [name, v] of Object.entries(vars)) {
    const t = tensors.get(`w/${name}`);
    if (!t || t.shape.join('x') !== v.shape.join('x'))
      throw new UserError(`${r.path}: tensor 'w/${name}' is missing or not ${v.shape.join('x')}`);
    tf.tidy(() => v.assign(tf.tensor(toFloat32(t), t.shape, 'float32')));
  }
  // One optimizer update per step, so the step is also AdamW's bias-correction count.
  adam.loadState(new Map([...tensors].filter(([key]) => !key.startsWith('w/'))), step);
  rng.setState(Number(metadata.rng));
  return step;
}

/** One batch's loss: built from its rows (the stream may add its own draws), and the tensors to free after the step. */
export type BatchLoss = (rows: number[], rng: Rng) => { loss: (vars: Record<string, tf.Variable>) => tf.Scalar; inputs: tf.Tensor[] };

export async function fitSmallNet<E>(
  init: TensorMap,
  train: number[],
  o: SmallNetFitOptions,
  batchLoss: BatchLoss,
  evaluate: (vars: Record<string, tf.Variable>) => E,
): Promise<{ tensors: TensorMap; result: E }> {
  const start = toTf(init);
  const vars: Record<string, tf.Variable> = {};
  for (const [name, t] of Object.entries(start)) vars[name] = tf.variable(t, true);
  tf.dispose(Object.values(start));
  const adam = new AdamW({ ...DEFAULT_ADAMW, weightDecay: 1e-4 });
  const rng = new Rng(o.seed);
  try {
    let first = 0;
    if (o.resume && existsSync(o.resume.path)) {
      first = readResume(o.resume, vars, adam, rng, o.steps);
      o.resume.onResume?.(first);
    }
    for (let step = first; step < o.steps; step++) {
      const rows = Array.from({ length: o.batchSize }, () => train[Math.floor(rng.uniform(0, train.length))]!);
      const b = batchLoss(rows, rng);
      const { value, grads } = tf.variableGrads(() => b.loss(vars), Object.values(vars));
      const byName: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(vars)) byName[name] = grads[v.name]!;
      adam.apply(vars, byName, learningRate(step, o.lr, Math.min(100, o.steps / 10), o.steps));
      const loss = value.dataSync()[0]!;
      tf.dispose([value, ...b.inputs, ...Object.values(byName)]);
      o.onProgress?.(step + 1, loss);
      if (o.resume && (step + 1) % o.resume.every === 0 && step + 1 < o.steps) await writeResume(o.resume, vars, adam, step + 1, rng);
    }
    const result = evaluate(vars);
    return { tensors: await toHost(vars), result };
  } finally {
    adam.dispose();
    tf.dispose(Object.values(vars));
  }
}
