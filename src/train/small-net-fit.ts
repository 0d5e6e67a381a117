/**
 * The training loop of the small networks that sit next to the world model (the state reader and
 * the action policy): AdamW with warm-up and cosine decay over mini-batches of training rows drawn
 * with replacement from a seeded stream, then an evaluation with the trained weights.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { toHost, toTf } from '../model/params.js';
import { Rng } from '../util/rng.js';
import { AdamW, DEFAULT_ADAMW, learningRate } from './adamw.js';

/** Sample indices split by their episodes' validation flags: trained on, and held out. */
export function trainAndHeld(val: boolean[]): { train: number[]; held: number[] } {
  return { train: val.flatMap((v, i) => (v ? [] : [i])), held: val.flatMap((v, i) => (v ? [i] : [])) };
}

export interface SmallNetFitOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  onProgress?: (step: number, loss: number) => void;
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
    for (let step = 0; step < o.steps; step++) {
      const rows = Array.from({ length: o.batchSize }, () => train[Math.floor(rng.uniform(0, train.length))]!);
      const b = batchLoss(rows, rng);
      const { value, grads } = tf.variableGrads(() => b.loss(vars), Object.values(vars));
      const byName: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(vars)) byName[name] = grads[v.name]!;
      adam.apply(vars, byName, learningRate(step, o.lr, Math.min(100, o.steps / 10), o.steps));
      const loss = value.dataSync()[0]!;
      tf.dispose([value, ...b.inputs, ...Object.values(byName)]);
      o.onProgress?.(step + 1, loss);
    }
    const result = evaluate(vars);
    return { tensors: await toHost(vars), result };
  } finally {
    adam.dispose();
    tf.dispose(Object.values(vars));
  }
}
