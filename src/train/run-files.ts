/**
 * A training run on disk:
 *   run.json                       everything needed to plan with the model later (configs, data card, action stats)
 *   checkpoints/step-000500/       student.safetensors, ema.safetensors, optimizer.safetensors, state.json
 *   latest.json                    {"step", "dir"}: written last, atomically, so it always names a complete checkpoint
 *   metrics.jsonl, val/*.png
 * A checkpoint directory is written under a temporary name and renamed when complete, so a
 * kill -9 at any moment leaves latest.json pointing at a readable checkpoint.
 */
import { existsSync, fsyncSync, mkdirSync, openSync, closeSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { readWorldModel, writeWorldModel } from '../model/checkpoint-io.js';
import type { WorldModelConfig } from '../core/model-config.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { UserError } from '../core/errors.js';
import { readJsonObjectFile, readRunManifest, type RunManifest } from '../core/run-manifest.js';

export interface CheckpointState {
  step: number;
  optimizerStep: number;
  /** Validation loss at this step, if measured. */
  valLoss?: number;
  time: string;
}

export interface CheckpointFiles {
  student: TensorMap;
  ema: TensorMap;
  optimizer: TensorMap;
  state: CheckpointState;
}

export const stepDirName = (step: number) => `step-${String(step).padStart(7, '0')}`;

const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

export function writeManifest(runDir: string, m: RunManifest): void {
  writeJsonAtomic(join(runDir, 'run.json'), m);
}

export function latestCheckpoint(runDir: string): { step: number; dir: string } | undefined {
  const path = join(runDir, 'latest.json');
  if (!existsSync(path)) return undefined;
  const l = readJsonObjectFile(path, 'latest-checkpoint pointer');
  if (!isCount(l.step)) throw new UserError(`${path}: field 'step' must be a non-negative integer`);
  if (typeof l.dir !== 'string' || l.dir === '') throw new UserError(`${path}: field 'dir' must be a non-empty path`);
  return { step: l.step as number, dir: join(runDir, l.dir) };
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function saveCheckpoint(runDir: string, model: WorldModelConfig, files: CheckpointFiles, keep = 2): string {
  const ckpts = join(runDir, 'checkpoints');
  mkdirSync(ckpts, { recursive: true });
  const name = stepDirName(files.state.step);
  const tmp = join(ckpts, `.${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeWorldModel(join(tmp, 'student.safetensors'), model, files.student);
  writeWorldModel(join(tmp, 'ema.safetensors'), model, files.ema);
  writeSafetensors(join(tmp, 'optimizer.safetensors'), files.optimizer, { step: String(files.state.optimizerStep) });
  writeJsonAtomic(join(tmp, 'state.json'), files.state);
  fsyncDir(tmp);
  const final = join(ckpts, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  fsyncDir(ckpts);
  writeJsonAtomic(join(runDir, 'latest.json'), { step: files.state.step, dir: `checkpoints/${name}` });
  // Prune older complete checkpoints and any temp dirs left by killed runs.
  const complete = readdirSync(ckpts)
    .filter((d) => /^step-\d+$/.test(d))
    .sort();
  for (const d of complete.slice(0, Math.max(0, complete.length - keep))) rmSync(join(ckpts, d), { recursive: true, force: true });
  for (const d of readdirSync(ckpts).filter((d) => d.endsWith('.tmp') && d !== `.${name}.${process.pid}.tmp`))
    rmSync(join(ckpts, d), { recursive: true, force: true });
  return final;
}

export function loadCheckpoint(dir: string): CheckpointFiles {
  const student = readWorldModel(join(dir, 'student.safetensors')).tensors;
  const ema = readWorldModel(join(dir, 'ema.safetensors')).tensors;
  const optimizer = readSafetensors(join(dir, 'optimizer.safetensors')).tensors;
  const statePath = join(dir, 'state.json');
  const state = readJsonObjectFile(statePath, 'checkpoint state');
  for (const k of ['step', 'optimizerStep'])
    if (!isCount(state[k])) throw new UserError(`${statePath}: field '${k}' must be a non-negative integer`);
  return { student, ema, optimizer, state: state as unknown as CheckpointState };
}

/** The EMA (teacher) weights of a run's latest checkpoint, or of a weight file given directly: what planning uses. */
export function loadInferenceWeights(runOrFile: string): {
  cfg: WorldModelConfig;
  tensors: TensorMap;
  manifest?: RunManifest;
  step?: number;
} {
  if (runOrFile.endsWith('.safetensors')) {
    const { cfg, tensors } = readWorldModel(runOrFile);
    return { cfg, tensors };
  }
  const manifest = readRunManifest(runOrFile);
  const latest = latestCheckpoint(runOrFile);
  if (!latest) throw new UserError(`${runOrFile}: run has no checkpoint yet (no latest.json)`);
  const { cfg, tensors } = readWorldModel(join(latest.dir, 'ema.safetensors'));
  return { cfg, tensors, manifest, step: latest.step };
}
