/**
 * The fine-tuning loop: batches of training windows -> Self-Flow (or vanilla) steps, periodic
 * validation and checkpoints, resumable to the same loss curve, Ctrl-C saves and exits.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import type { WorldModelConfig } from '../core/model-config.js';
import { toHost } from '../model/params.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { learningRate, type AdamWOptions } from './adamw.js';
import { disposeBatch, toBatch } from './batch.js';
import { startStepRunner } from './data-parallel.js';
import { drawNoise, type ObjectiveOptions } from './objective.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, type CheckpointFiles } from './run-files.js';
import { Trainer, type StepStats } from './trainer.js';
import { actionControllability, describeControllability } from './controllability.js';
import { imaginationError, predictFutures, type StripContrast } from './val-strip.js';
import type { WindowLike, WindowSource } from './training-window.js';

export interface FinetuneSettings {
  runDir: string;
  cfg: WorldModelConfig;
  objective: ObjectiveOptions;
  optimizer: AdamWOptions;
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  emaDecay: number;
  contextFrames: number;
  futureFrames: number;
  seed: number;
  checkpointEvery: number;
  valEvery: number;
  valWindows: number;
  /**
   * Writes a PNG strip (context | predicted | predicted under other actions | true) for these val windows and their
   * imagined futures, captioned with the controllability figure; returns the file written.
   */
  renderStrip?: (
    trainer: Trainer,
    windows: WindowLike[],
    predicted: Float32Array[],
    step: number,
    contrast?: StripContrast,
  ) => Promise<string | undefined>;
  init: TensorMap;
  resume: boolean;
  /** Worker threads that share each batch (data-parallel); 1 (default) trains in this thread. The checkpoint does not depend on it. */
  workers?: number;
  /** The backend the workers initialise (src/backend/backends.ts names); default: this thread's. */
  backend?: string;
  log: (line: string) => void;
}

export interface FinetuneResult {
  finalStep: number;
  interrupted: boolean;
  lastStats?: StepStats;
  valLoss?: number;
}

/** Seeds noise by (seed, step) so a resumed run redraws exactly the noise an uninterrupted one would. */
export function stepRng(seed: number, step: number): Rng {
  return new Rng(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b));
}

/** Effective EMA decay: ramps up early so the teacher is not stuck at the initial weights. */
export function emaDecayAt(step: number, decay: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

async function snapshot(trainer: Trainer, step: number, valLoss?: number): Promise<CheckpointFiles> {
  const student = await toHost(trainer.studentParams());
  const ema = await toHost(trainer.teacherParams());
  const optimizer = (await trainer.optimizer.stateTensors()) as TensorMap;
  return { student, ema, optimizer, state: { step, optimizerStep: trainer.optimizer.step, valLoss, time: new Date().toISOString() } };
}

/** Keeps metrics.jsonl consistent with a resumed checkpoint: lines after its step are dropped. */
function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && (JSON.parse(l) as { step: number }).step <= step);
  writeFileAtomic(path, kept.length ? `${kept.join('\n')}\n` : '');
}

export async function finetune(s: FinetuneSettings, data: WindowSource, signal?: AbortSignal): Promise<FinetuneResult> {
  mkdirSync(s.runDir, { recursive: true });
  const metricsPath = join(s.runDir, 'metrics.jsonl');
  let start = 0;
  let trainer: Trainer;
  const latest = s.resume ? latestCheckpoint(s.runDir) : undefined;
  if (latest) {
    const ck = loadCheckpoint(latest.dir);
    trainer = new Trainer(s.cfg, s.objective, ck.student, ck.ema, s.optimizer, s.emaDecay);
    trainer.optimizer.loadState(ck.optimizer, ck.state.optimizerStep);
    start = ck.state.step;
    truncateMetrics(metricsPath, start);
    s.log(`resumed from ${latest.dir} at step ${start}`);
  } else {
    trainer = new Trainer(s.cfg, s.objective, s.init, undefined, s.optimizer, s.emaDecay);
    writeFileAtomic(metricsPath, '');
  }
  const valWindows = s.valEvery > 0 ? await data.val(s.valWindows) : [];
  const validate = (): number | undefined => {
    if (!valWindows.length) return undefined;
    const batch = toBatch(valWindows, s.cfg, s.contextFrames, s.futureFrames);
    // Fixed, unshifted noise for validation so curves compare like with like (also across --time-shift); the EMA weights are what planning uses.
    const draw = drawNoise(new Rng(s.seed + 7919), s.cfg, valWindows.length, s.contextFrames + s.futureFrames, s.contextFrames, {
      ...s.objective,
      kind: 'vanilla',
      policyFraction: 0,
      timeShift: 1,
    });
    // Unweighted frame loss (--motion-weight 0), so validation curves compare across runs.
    const r = trainer.evaluate(batch, draw, true, { ...trainer.objective, motionWeight: 0 });
    disposeBatch(batch);
    return r.frame;
  };

  const runner = await startStepRunner(trainer, {
    workers: Math.min(s.workers ?? 1, s.batchSize),
    cfg: s.cfg,
    contextFrames: s.contextFrames,
    futureFrames: s.futureFrames,
    backend: s.backend,
    log: s.log,
  });
  if (runner.workers > 1) s.log(`data-parallel: ${runner.workers} worker threads share each batch`);
  const progress = new Progress('finetune', s.steps, { initial: start });
  const source = data.train(start * s.batchSize)[Symbol.asyncIterator]();
  let step = start;
  let last: StepStats | undefined;
  let valLoss: number | undefined;
  let interrupted = false;
  let windowsSeen = 0;
  /** The latest validation's controllability figure, for the progress line. */
  let controllability: string | undefined;
  const t0 = performance.now();
  try {
    while (step < s.steps) {
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
      const windows: WindowLike[] = [];
      while (windows.length < s.batchSize) {
        const next = await source.next();
        if (next.done) throw new Error(`training data ran out after ${windowsSeen + windows.length} windows`);
        windows.push(next.value);
      }
      windowsSeen += windows.length;
      // The whole batch's noise is drawn here, whatever the workers, so every worker count takes the same step.
      const draw = drawNoise(stepRng(s.seed, step), s.cfg, windows.length, s.contextFrames + s.futureFrames, s.contextFrames, s.objective);
      const lr = learningRate(step, s.lr, s.warmup, s.steps);
      const ts = performance.now();
      last = await runner.step(windows, draw, lr, emaDecayAt(step, s.emaDecay));
      step++;
      const samplesPerSec = windows.length / ((performance.now() - ts) / 1000);
      const record: Record<string, number | string> = {
        step,
        loss: last.loss,
        frame_loss: last.frame,
        action_loss: last.action,
        ssl_loss: last.ssl,
        grad_norm: last.gradNorm,
        lr,
        samples_per_s: samplesPerSec,
      };
      if (s.valEvery > 0 && (step % s.valEvery === 0 || step === s.steps)) {
        valLoss = validate();
        if (valLoss !== undefined) record.val_loss = valLoss;
        if (valWindows.length) {
          // What planning sees: sampled futures against the truth, next to a model that predicts no motion.
          const px = s.cfg.imageHeight * s.cfg.imageWidth * 3;
          const imagineWith = (windows: WindowLike[], actions: Float32Array[]) =>
            predictFutures(trainer.teacherParams(), s.cfg, windows, s.contextFrames, s.futureFrames, s.seed, actions);
          const predicted = imagineWith(
            valWindows,
            valWindows.map((w) => w.actions),
          );
          const err = imaginationError(predicted, valWindows, s.contextFrames, px);
          record.val_imagine_mse = err.mse;
          record.val_copy_mse = err.copyMse;
          // Does the imagined future follow the action? The same windows, same noise, under another window's actions.
          const ctrl = actionControllability(imagineWith, valWindows, s.contextFrames, px, predicted);
          if (ctrl) {
            record.val_delta_psnr = ctrl.figure.deltaPsnr;
            record.val_psnr = ctrl.figure.psnr;
            record.val_psnr_other_actions = ctrl.figure.otherPsnr;
            record.val_recorded_actions_better = ctrl.figure.recordedWins;
            controllability = describeControllability(ctrl.figure);
          }
          const png = await s.renderStrip?.(
            trainer,
            valWindows.slice(0, 4),
            predicted,
            step,
            ctrl && { other: ctrl.other.slice(0, 4), figure: ctrl.figure },
          );
          if (png) record.val_strip = png;
        }
      }
      appendFileSync(metricsPath, `${JSON.stringify(record)}\n`);
      progress.update(
        step,
        `step ${step} loss ${last.loss.toFixed(4)} ${samplesPerSec.toFixed(1)} samples/s${valLoss !== undefined ? ` val ${valLoss.toFixed(4)}` : ''}${record.val_imagine_mse !== undefined ? ` imagine mse ${(record.val_imagine_mse as number).toFixed(4)} (no-motion ${(record.val_copy_mse as number).toFixed(4)})` : ''}${controllability ? `, ${controllability}` : ''}`,
        record.val_imagine_mse !== undefined,
      );
      if (step % s.checkpointEvery === 0 || step === s.steps) saveCheckpoint(s.runDir, s.cfg, await snapshot(trainer, step, valLoss));
    }
  } finally {
    await runner.close();
  }
  // Closes the data stream's open shard files now rather than at garbage collection.
  await source.return?.();
  if (interrupted && step > start && step % s.checkpointEvery !== 0)
    saveCheckpoint(s.runDir, s.cfg, await snapshot(trainer, step, valLoss));
  progress.finish(
    last
      ? `loss ${last.loss.toFixed(4)}, ${(((step - start) * s.batchSize) / ((performance.now() - t0) / 1000)).toFixed(1)} samples/s`
      : '',
  );
  trainer.dispose();
  return { finalStep: step, interrupted, lastStats: last, valLoss };
}
