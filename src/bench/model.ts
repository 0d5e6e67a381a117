/**
 * Model benchmark: each backend's own matmul peak, then world-model forward and forward+backward
 * throughput for the tiny and small configs on every backend that loads.
 */
import * as tf from '@tensorflow/tfjs';
import { AUTO_ORDER, initBackend, type ConcreteBackend } from '../backend/backends.js';
import type { BenchOptions } from './options.js';
import { matmulGflops } from './matmul.js';
import { timeMs, type BenchTable } from './table.js';
import { availableParallelism } from 'node:os';
import { DEFAULT_ADAMW } from '../train/adamw.js';
import { startStepRunner } from '../train/data-parallel.js';
import type { WindowLike } from '../train/training-window.js';
import { DEFAULT_OBJECTIVE, drawNoise, type SequenceBatch } from '../train/objective.js';
import { Trainer } from '../train/trainer.js';
import { Rng } from '../util/rng.js';
import { worldModelConfig, type ConfigName } from '../core/model-config.js';
import { worldModelForwardFlops } from '../model/flops.js';
import { toTf, worldModelInit } from '../model/params.js';
import { patchGrid, worldModelForward } from '../model/world-model.js';

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

function sequenceBatch(cfg: ReturnType<typeof worldModelConfig>, b: number, f: number): SequenceBatch {
  const rng = new Rng(1);
  const px = cfg.imageHeight * cfg.imageWidth * 3;
  return {
    frames: tf.tensor5d(
      Float32Array.from({ length: b * f * px }, () => rng.uniform(-1, 1)),
      [b, f, cfg.imageHeight, cfg.imageWidth, 3],
    ),
    actions: tf.tensor3d(
      Float32Array.from({ length: b * (f - 1) * cfg.actionDim }, () => rng.uniform(-1, 1)),
      [b, f - 1, cfg.actionDim],
    ),
    language: tf.tensor2d(
      Float32Array.from({ length: b * cfg.languageDim }, () => rng.normal()),
      [b, cfg.languageDim],
    ),
    contextFrames: 2,
  };
}

/** The OpenBLAS settings the environment gives (they change its kernel choice and thread count). */
function openblasSettings(): string {
  const vars = ['OPENBLAS_NUM_THREADS', 'OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'].map((v) => `${v}=${process.env[v] ?? '(unset)'}`);
  return `Environment: ${vars.join(', ')}.`;
}

export async function benchModel(opts: BenchOptions): Promise<BenchTable[]> {
  const backends = await loadableBackends(opts.backends);
  const peak: BenchTable = {
    title: 'Backend matmul peak (float32, square matrices)',
    columns: ['backend', 'library', 'n', 'GFLOP/s'],
    rows: [],
    notes: [openblasSettings()],
  };
  const model: BenchTable = {
    title: 'World-model throughput, 1 worker (4 frames: 2 context + 2 future, as `finetune` defaults; tiny batch 4, small batch 1)',
    columns: ['config', 'backend', 'tokens/seq', 'pass', 'ms/batch', 'samples/s', 'tokens/s', 'GFLOP/s', '% of matmul peak'],
    rows: [],
    notes: [
      'forward+backward = one full training step (teacher forward, student forward+backward, AdamW, EMA); its FLOPs are counted as 4x forward (teacher 1x + student 3x). FLOPs count the products that run: the adaLN linears once per distinct conditioning row (src/model/condition-groups.ts).',
      'One worker: this process, one backend instance. Training over all cores: the next table.',
    ],
  };
  const cores = availableParallelism();
  const parallel: BenchTable = {
    title: `Data-parallel training step (\`finetune --workers\`; tiny, batch ${PARALLEL_BATCH}, 2 context + 2 future frames)`,
    columns: ['backend', 'workers', 'ms/step', 'samples/s', 'speed-up over 1 worker'],
    rows: [],
    notes: [
      `Each worker is a thread with its own backend computing its share of the batch; the main thread sums the gradients and runs AdamW and the EMA once. ${cores} cores here.`,
    ],
  };
  for (const backend of backends) {
    const choice = await initBackend(backend);
    const slow = backend === 'cpu';
    const n = slow || opts.quick ? 256 : 1024;
    const gf = await matmulGflops(n, slow ? 2 : 5);
    peak.rows.push([backend, choice.detail ?? '-', n, gf]);
    const configs: ConfigName[] = slow || opts.quick ? ['tiny'] : ['tiny', 'small'];
    for (const name of configs) {
      const cfg = worldModelConfig(name, { maxFrames: 4 });
      // small at batch > 1 exhausts the 4 GB wasm heap in the backward pass.
      const b = name === 'tiny' ? 4 : 1;
      const f = 4;
      const tokens = f * patchGrid(cfg).n + f - 1;
      const batch = sequenceBatch(cfg, b, f);
      const params = toTf(worldModelInit(cfg, 0));
      // An odd count, so the median is a measured run rather than the slower of two.
      const reps = slow || name !== 'tiny' ? 3 : 5;
      const fwdMs = await timeMs(
        () =>
          tf.tidy(() => {
            const t = tf.zeros([b, f]);
            worldModelForward(
              params,
              cfg,
              { frames: batch.frames, frameT: t, actions: batch.actions, actionT: tf.zeros([b, f - 1]) },
              { language: batch.language },
            ).frameVelocity.dataSync();
          }),
        reps,
      );
      const flops = worldModelForwardFlops(cfg, b, f);
      model.rows.push([
        name,
        backend,
        tokens,
        'forward',
        fwdMs,
        b / (fwdMs / 1000),
        (b * tokens) / (fwdMs / 1000),
        flops / (fwdMs / 1000) / 1e9,
        `${((100 * flops) / (fwdMs / 1000) / 1e9 / gf).toFixed(0)} %`,
      ]);
      tf.dispose(Object.values(params));
      const trainer = new Trainer(cfg, DEFAULT_OBJECTIVE, worldModelInit(cfg, 0), undefined, DEFAULT_ADAMW, 0.999);
      const rng = new Rng(2);
      const stepMs = await timeMs(() => trainer.step(batch, drawNoise(rng, cfg, b, f, 2, DEFAULT_OBJECTIVE), 1e-4), reps);
      const stepFlops = 4 * flops;
      model.rows.push([
        name,
        backend,
        tokens,
        'forward+backward',
        stepMs,
        b / (stepMs / 1000),
        (b * tokens) / (stepMs / 1000),
        stepFlops / (stepMs / 1000) / 1e9,
        `${((100 * stepFlops) / (stepMs / 1000) / 1e9 / gf).toFixed(0)} %`,
      ]);
      trainer.dispose();
      tf.dispose([batch.frames, batch.actions, batch.language!]);
    }
    for (const workers of cores > 1 ? [1, cores] : [1]) {
      const ms = await dataParallelStepMs(backend, workers, opts.quick ? 2 : 4);
      const one = parallel.rows.find((r) => r[0] === backend && r[1] === '1')?.[2] as number | undefined;
      parallel.rows.push([backend, String(workers), ms, PARALLEL_BATCH / (ms / 1000), one ? `${(one / ms).toFixed(2)}x` : '1.00x']);
    }
  }
  return [peak, model, parallel];
}

const PARALLEL_BATCH = 8;

/** Median ms of a tiny training step on random windows through finetune's step runner with `workers` threads. */
async function dataParallelStepMs(backend: string, workers: number, reps: number): Promise<number> {
  const cfg = worldModelConfig('tiny', { maxFrames: 4 });
  const [k, h] = [2, 2];
  const rng = new Rng(3);
  const px = cfg.imageHeight * cfg.imageWidth * 3;
  const windows: WindowLike[] = Array.from({ length: PARALLEL_BATCH }, () => ({
    frames: Float32Array.from({ length: (k + h) * px }, () => rng.uniform(-1, 1)),
    actions: Float32Array.from({ length: h * cfg.actionDim }, () => rng.uniform(-1, 1)),
    language: Float32Array.from({ length: cfg.languageDim }, () => rng.normal()),
  }));
  const trainer = new Trainer(cfg, DEFAULT_OBJECTIVE, worldModelInit(cfg, 0), undefined, DEFAULT_ADAMW, 0.999);
  const runner = await startStepRunner(trainer, { workers, cfg, contextFrames: k, futureFrames: h, backend });
  try {
    const draws = new Rng(4);
    return await timeMs(() => runner.step(windows, drawNoise(draws, cfg, PARALLEL_BATCH, k + h, k, DEFAULT_OBJECTIVE), 1e-4, 0.999), reps);
  } finally {
    await runner.close();
    trainer.dispose();
  }
}
