/**
 * Data-parallel training steps: each worker thread runs its own tfjs backend on its share of the
 * batch and computes the share's contribution to the whole batch's loss and gradients (the noise,
 * timesteps and masks are drawn here for the whole batch, then sliced, so the shares see exactly
 * the draws one thread would). This thread sums the contributions, runs AdamW and the EMA update
 * once on its own Trainer (the one that is checkpointed and validated), and publishes the new
 * weights. Gradients and weights travel through SharedArrayBuffers as float32; a message only
 * says that a step or its gradients are ready, and an Atomics store/load pair orders the writes
 * before the reads.
 *
 * Shared memory:
 * - weights: student then teacher, every trainable parameter at a fixed offset (WeightLayout);
 * - frozen: the fixed buffers, written once;
 * - grads: one region of the trainable size per worker;
 * - control (Int32): [0] the weights' version, [1 + i] the last step worker i finished.
 */
import { compiledWorkerScript } from '../util/worker-script.js';
import { splitShares } from '../util/shares.js';
import { shareBlasThreads } from '../backend/backends.js';
import { blasKernelsActive } from '../backend/blas-kernels.js';
import * as tf from '@tensorflow/tfjs';
import { Worker } from 'node:worker_threads';
import { UserError } from '../core/errors.js';
import type { WorldModelConfig } from '../core/model-config.js';
import { disposeBatch, toBatch } from './batch.js';
import { sliceDraw, wholeBatchOf, type NoiseDraw, type ObjectiveOptions, type WholeBatch } from './objective.js';
import type { StepStats, Trainer } from './trainer.js';
import type { WindowLike } from './training-window.js';

/** One parameter's place in a shared float32 buffer. */
export interface Slot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface WeightLayout {
  trainable: Slot[];
  frozen: Slot[];
  trainableSize: number;
  frozenSize: number;
}

function slots(params: Record<string, tf.Tensor>): { slots: Slot[]; size: number } {
  let offset = 0;
  const out = Object.entries(params).map(([name, t]) => {
    const slot = { name, shape: [...t.shape], offset, size: t.size };
    offset += t.size;
    return slot;
  });
  return { slots: out, size: offset };
}

export function weightLayout(trainer: Trainer): WeightLayout {
  const trainable = slots(trainer.student);
  const frozen = slots(trainer.frozen);
  return { trainable: trainable.slots, frozen: frozen.slots, trainableSize: trainable.size, frozenSize: frozen.size };
}

/** A float32 view of `slot` inside `buffer`, starting `base` floats in. */
export function slotView(buffer: SharedArrayBuffer, slot: Slot, base = 0): Float32Array {
  return new Float32Array(buffer, (base + slot.offset) * 4, slot.size);
}

/** What the worker threads start from (workerData). */
export interface TrainWorkerData {
  backend: string;
  cfg: WorldModelConfig;
  objective: ObjectiveOptions;
  contextFrames: number;
  futureFrames: number;
  layout: WeightLayout;
  weights: SharedArrayBuffer;
  frozen: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  control: SharedArrayBuffer;
  index: number;
}

export type ToTrainWorker = { type: 'step'; id: number; version: number; windows: WindowLike[]; draw: NoiseDraw; whole: WholeBatch };

export type FromTrainWorker =
  | { type: 'ready' }
  | { type: 'done'; id: number; parts: Omit<StepStats, 'gradNorm'>; missing: string[] }
  | { type: 'error'; message: string; user: boolean };

/** Runs training steps on whole batches of windows, in this thread or across worker threads. */
export interface StepRunner {
  readonly workers: number;
  step(windows: WindowLike[], draw: NoiseDraw, lr: number, emaDecay: number): Promise<StepStats>;
  close(): Promise<void>;
}

export interface StepRunnerOptions {
  workers: number;
  cfg: WorldModelConfig;
  contextFrames: number;
  futureFrames: number;
  /** The backend each worker initialises (src/backend/backends.ts names); default: the one this thread runs. */
  backend?: string;
  log?: (line: string) => void;
}

/**
 * The compiled worker entry, or undefined when running from TypeScript sources without a build
 * (a worker cannot load .ts): then dist/ is used if it has been built.
 */
export function trainWorkerScript(): string | undefined {
  return compiledWorkerScript(import.meta.url, 'train-worker.js');
}

/** Our backend name for the tfjs backend this thread runs, so the workers run the same one. */
function currentBackend(): string {
  const name = tf.getBackend();
  if (name === 'tensorflow') return 'tfjs-node';
  if (name === 'wasm') return blasKernelsActive() ? 'wasm+blas' : 'wasm';
  return name;
}

/** Sample ranges [start, end) of `b` samples over at most `workers` shares, sizes differing by at most one. */
export function shares(b: number, workers: number): [number, number][] {
  return splitShares(b, workers).map(({ offset, count }) => [offset, offset + count]);
}

/** `a`, or a copy of it where it is a view into a larger buffer (posting a view clones its whole buffer). */
function compact(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice();
}

function shareWindows(windows: WindowLike[]): WindowLike[] {
  return windows.map((w) => ({
    frames: compact(w.frames),
    actions: compact(w.actions),
    ...(w.language ? { language: compact(w.language) } : {}),
  }));
}

function localRunner(trainer: Trainer, o: StepRunnerOptions): StepRunner {
  return {
    workers: 1,
    async step(windows, draw, lr, emaDecay) {
      const batch = toBatch(windows, o.cfg, o.contextFrames, o.futureFrames);
      try {
        return trainer.step(batch, draw, lr, emaDecay);
      } finally {
        disposeBatch(batch);
      }
    },
    async close() {},
  };
}

/**
 * A step runner over `o.workers` threads (one: this thread, as before). Workers start from the
 * trainer's current weights; the trainer stays the authority (checkpoint, validation).
 */
export async function startStepRunner(trainer: Trainer, o: StepRunnerOptions): Promise<StepRunner> {
  if (o.workers <= 1) return localRunner(trainer, o);
  const script = trainWorkerScript();
  if (!script) {
    o.log?.(
      'warning: training in this thread: worker threads need the compiled code (dist/src/train/train-worker.js); run `npm run build`',
    );
    return localRunner(trainer, o);
  }
  const shared = shareBlasThreads(o.workers);
  if (shared) o.log?.(shared);
  return DataParallelRunner.start(trainer, script, o);
}

class DataParallelRunner implements StepRunner {
  private readonly threads: Worker[] = [];
  private readonly weights: SharedArrayBuffer;
  private readonly grads: SharedArrayBuffer;
  private readonly control: Int32Array;
  /** Per worker: the reply it owes, if any. */
  private readonly pending: ({ resolve: (m: FromTrainWorker) => void; reject: (e: Error) => void } | undefined)[] = [];
  private failure: Error | undefined;
  private closing = false;
  private version = 0;
  private nextId = 0;

  private constructor(
    private readonly trainer: Trainer,
    private readonly layout: WeightLayout,
    private readonly o: StepRunnerOptions,
    readonly workers: number,
  ) {
    this.weights = new SharedArrayBuffer(layout.trainableSize * 2 * 4);
    this.grads = new SharedArrayBuffer(layout.trainableSize * workers * 4);
    this.control = new Int32Array(new SharedArrayBuffer((1 + workers) * 4));
  }

  static async start(trainer: Trainer, script: string, o: StepRunnerOptions): Promise<DataParallelRunner> {
    const layout = weightLayout(trainer);
    const r = new DataParallelRunner(trainer, layout, o, o.workers);
    const frozen = new SharedArrayBuffer(layout.frozenSize * 4);
    for (const slot of layout.frozen) slotView(frozen, slot).set(trainer.frozen[slot.name]!.dataSync());
    r.publishWeights();
    const ready: Promise<FromTrainWorker>[] = [];
    for (let index = 0; index < r.workers; index++) {
      const workerData: TrainWorkerData = {
        backend: o.backend ?? currentBackend(),
        cfg: o.cfg,
        objective: trainer.objective,
        contextFrames: o.contextFrames,
        futureFrames: o.futureFrames,
        layout,
        weights: r.weights,
        frozen,
        grads: r.grads,
        control: r.control.buffer as SharedArrayBuffer,
        index,
      };
      const worker = new Worker(script, { workerData });
      r.threads.push(worker);
      ready.push(r.reply(index));
      worker.on('message', (m: FromTrainWorker) => r.settle(index, m));
      worker.on('error', (e) => r.fail(new Error(`training worker ${index} failed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!r.closing) r.fail(new Error(`training worker ${index} exited (code ${code})`));
      });
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await r.close();
      throw e;
    }
    return r;
  }

  private reply(index: number): Promise<FromTrainWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.pending[index] = { resolve, reject }));
  }

  private settle(index: number, m: FromTrainWorker): void {
    const p = this.pending[index];
    this.pending[index] = undefined;
    if (m.type === 'error') {
      const e = m.user ? new UserError(m.message) : new Error(`training worker ${index}: ${m.message}`);
      if (p) p.reject(e);
      else this.fail(e);
      return;
    }
    p?.resolve(m);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.pending.forEach((p, i) => {
      this.pending[i] = undefined;
      p?.reject(e);
    });
  }

  /** Copies the trainer's student and teacher into the shared weights and bumps their version. */
  private publishWeights(): void {
    const p = this.layout.trainableSize;
    for (const slot of this.layout.trainable) {
      slotView(this.weights, slot).set(this.trainer.student[slot.name]!.dataSync());
      slotView(this.weights, slot, p).set(this.trainer.teacher[slot.name]!.dataSync());
    }
    // Atomics are sequentially consistent: the weights written above are visible to a worker that loads this version.
    Atomics.store(this.control, 0, ++this.version);
  }

  async step(windows: WindowLike[], draw: NoiseDraw, lr: number, emaDecay: number): Promise<StepStats> {
    if (this.failure) throw this.failure;
    const b = windows.length;
    const batch = toBatch(windows, this.o.cfg, this.o.contextFrames, this.o.futureFrames);
    let whole: WholeBatch;
    try {
      whole = wholeBatchOf(batch, draw, this.trainer.objective.motionWeight);
    } finally {
      disposeBatch(batch);
    }
    const id = ++this.nextId;
    const ranges = shares(b, this.workers);
    const replies = ranges.map(([start, end], i) => {
      const reply = this.reply(i);
      const msg: ToTrainWorker = {
        type: 'step',
        id,
        version: this.version,
        windows: shareWindows(windows.slice(start, end)),
        draw: sliceDraw(draw, b, start, end),
        whole,
      };
      this.threads[i]!.postMessage(msg);
      return reply;
    });
    const done = (await Promise.all(replies)) as Extract<FromTrainWorker, { type: 'done' }>[];
    const p = this.layout.trainableSize;
    const sum = new Float32Array(p);
    ranges.forEach((_, i) => {
      if (Atomics.load(this.control, 1 + i) !== id) throw new Error(`training worker ${i} answered step ${id} without its gradients`);
      const g = new Float32Array(this.grads, i * p * 4, p);
      for (let j = 0; j < p; j++) sum[j]! += g[j]!;
    });
    // Every share runs the same graph, so a parameter the loss does not reach has no gradient in any of them.
    const missing = new Set(done[0]!.missing);
    const grads: Record<string, tf.Tensor> = {};
    for (const slot of this.layout.trainable)
      if (!missing.has(slot.name)) grads[slot.name] = tf.tensor(sum.subarray(slot.offset, slot.offset + slot.size), slot.shape);
    const gradNorm = this.trainer.applyGradients(grads, lr, emaDecay);
    this.publishWeights();
    const parts = { loss: 0, frame: 0, action: 0, ssl: 0 };
    for (const d of done) for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k] += d.parts[k];
    return { ...parts, gradNorm };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}
