/**
 * Model benchmark: each backend's own matmul peak, then world-model forward and forward+backward
 * throughput for the tiny and small configs on every backend that loads.
 */
import * as tf from '@tensorflow/tfjs';
import { AUTO_ORDER, initBackend, type ConcreteBackend } from '../backend/backends.js';
import type { BenchOptions } from '../bench/suites.js';
import { timeMs, type BenchTable } from '../bench/table.js';
import { DEFAULT_ADAMW } from '../train/adamw.js';
import { DEFAULT_OBJECTIVE, drawNoise, type SequenceBatch } from '../train/objective.js';
import { Trainer } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import { worldModelConfig, type ActionConditioning, type ConfigName } from './config.js';
import { learnMovingSquare } from './action-toy.js';
import { worldModelForwardFlops } from './flops.js';
import { toTf, worldModelInit } from './params.js';
import { patchGrid, worldModelForward } from './world-model.js';

export async function loadableBackends(requested?: string[]): Promise<ConcreteBackend[]> {
  const out: ConcreteBackend[] = [];
  for (const b of (requested as ConcreteBackend[] | undefined) ?? AUTO_ORDER) {
    try {
      await initBackend(b);
      out.push(b);
    } catch {
      /* not available here: not measured */
    }
  }
  return out;
}

export async function matmulGflops(n: number, reps: number): Promise<number> {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  // Not returned from tidy: tidy would walk a returned typed array element by element.
  const ms = await timeMs(() => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }, reps);
  tf.dispose([a, b]);
  return (2 * n ** 3) / (ms / 1000) / 1e9;
}

function sequenceBatch(cfg: ReturnType<typeof worldModelConfig>, b: number, f: number): SequenceBatch {
  const rng = new Rng(1);
  const px = cfg.imageHeight * cfg.imageWidth * 3;
  return {
    frames: tf.tensor5d(Float32Array.from({ length: b * f * px }, () => rng.uniform(-1, 1)), [b, f, cfg.imageHeight, cfg.imageWidth, 3]),
    actions: tf.tensor3d(Float32Array.from({ length: b * (f - 1) * cfg.actionDim }, () => rng.uniform(-1, 1)), [b, f - 1, cfg.actionDim]),
    language: tf.tensor2d(Float32Array.from({ length: b * cfg.languageDim }, () => rng.normal()), [b, cfg.languageDim]),
    contextFrames: 2,
  };
}

export async function benchModel(opts: BenchOptions): Promise<BenchTable[]> {
  const backends = await loadableBackends(opts.backends);
  const peak: BenchTable = { title: 'Backend matmul peak (float32, square matrices)', columns: ['backend', 'n', 'GFLOP/s'], rows: [] };
  const model: BenchTable = {
    title: 'World-model throughput (4 frames: 2 context + 2 future, as `finetune` defaults; tiny batch 4, small batch 1)',
    columns: ['config', 'backend', 'tokens/seq', 'pass', 'ms/batch', 'samples/s', 'tokens/s', 'GFLOP/s', '% of matmul peak'],
    rows: [],
    notes: ['forward+backward = one full training step (teacher forward, student forward+backward, AdamW, EMA); its FLOPs are counted as 4x forward (teacher 1x + student 3x).'],
  };
  for (const backend of backends) {
    await initBackend(backend);
    const slow = backend === 'cpu';
    const n = slow || opts.quick ? 256 : 1024;
    const gf = await matmulGflops(n, slow ? 2 : 5);
    peak.rows.push([backend, n, gf]);
    const configs: ConfigName[] = slow || opts.quick ? ['tiny'] : ['tiny', 'small'];
    for (const name of configs) {
      const cfg = worldModelConfig(name, { maxFrames: 4 });
      // small at batch > 1 exhausts the 4 GB wasm heap in the backward pass.
      const b = name === 'tiny' ? 4 : 1;
      const f = 4;
      const tokens = f * patchGrid(cfg).n + f - 1;
      const batch = sequenceBatch(cfg, b, f);
      const params = toTf(worldModelInit(cfg, 0));
      const reps = slow || name !== 'tiny' ? 2 : 5;
      const fwdMs = await timeMs(
        () =>
          tf.tidy(() => {
            const t = tf.zeros([b, f]);
            worldModelForward(params, cfg, { frames: batch.frames, frameT: t, actions: batch.actions, actionT: tf.zeros([b, f - 1]) }, { language: batch.language }).frameVelocity.dataSync();
          }),
        reps,
      );
      const flops = worldModelForwardFlops(cfg, b, f);
      model.rows.push([name, backend, tokens, 'forward', fwdMs, b / (fwdMs / 1000), (b * tokens) / (fwdMs / 1000), flops / (fwdMs / 1000) / 1e9, `${((100 * flops) / (fwdMs / 1000) / 1e9 / gf).toFixed(0)} %`]);
      tf.dispose(Object.values(params));
      const trainer = new Trainer(cfg, DEFAULT_OBJECTIVE, worldModelInit(cfg, 0), undefined, DEFAULT_ADAMW, 0.999);
      const rng = new Rng(2);
      const stepMs = await timeMs(() => trainer.step(batch, drawNoise(rng, cfg, b, f, 2, DEFAULT_OBJECTIVE), 1e-4), reps);
      const stepFlops = 4 * flops;
      model.rows.push([name, backend, tokens, 'forward+backward', stepMs, b / (stepMs / 1000), (b * tokens) / (stepMs / 1000), stepFlops / (stepMs / 1000) / 1e9, `${((100 * stepFlops) / (stepMs / 1000) / 1e9 / gf).toFixed(0)} %`]);
      trainer.dispose();
      tf.dispose([batch.frames, batch.actions, batch.language!]);
    }
  }
  return [peak, model];
}

/** How fast each action-conditioning mode learns action-driven motion (src/model/action-toy.ts). */
export async function benchActionToy(opts: BenchOptions): Promise<BenchTable[]> {
  await initBackend('wasm');
  const steps = opts.quick ? 100 : 200;
  const window = 50;
  const modes: ActionConditioning[] = opts.quick ? ['adaln', 'shift'] : ['token', 'adaln', 'shift'];
  const rows: (string | number)[][] = [];
  for (const mode of modes) {
    const t0 = performance.now();
    const means = learnMovingSquare(mode, steps, window);
    rows.push([mode, ...means, (performance.now() - t0) / 1000 / steps]);
  }
  return [
    {
      title: `Action conditioning on a moving square (tiny, 16x20, batch 16, lr 1e-3, vanilla objective, wasm)`,
      columns: ['--action-conditioning', ...Array.from({ length: steps / window }, (_, i) => `frame loss, steps ${i * window + 1}-${(i + 1) * window}`), 's/step'],
      rows,
      notes: ['relative frame loss: 1 = "nothing moves"; only the action says where the square goes'],
    },
  ];
}
