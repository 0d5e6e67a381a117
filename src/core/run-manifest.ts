/**
 * The run manifest (`run.json` of a training run): everything needed to plan with a trained model
 * later. Every reader (planner, eval, serve, model tools, finetune's resume) loads it through
 * `readRunManifest`, which checks it field by field and names the file and field in its errors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateActionStats, type ActionStats } from './action-stats.js';
import { UserError, errorMessage } from './errors.js';
import { validateWorldModelConfig, type WorldModelConfig } from './model-config.js';

export const RUN_FORMAT = 'selfflow-wm/run@1';

export interface RunManifest {
  format: typeof RUN_FORMAT;
  model: WorldModelConfig;
  configName: string;
  /** The dataset card as used (name and full contents), and the data directory trained on. */
  data: { card: unknown; cardName: string; dataDir: string };
  /** Per-dimension action statistics used to normalise actions (q01/q99 -> [-1, 1]). */
  actionStats: ActionStats;
  contextFrames: number;
  futureFrames: number;
  training: Record<string, unknown>;
}

/** Parses a file that must hold one JSON object; errors name the file and say what it should be. */
export function readJsonObjectFile(path: string, what: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code ? `${path}: cannot read ${what} (${errorMessage(e)})` : `${path}: ${what} is not valid JSON (${errorMessage(e)})`,
      { cause: e },
    );
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UserError(`${path}: ${what} must be a JSON object`);
  return raw as Record<string, unknown>;
}

const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/** Reads and checks `RUN_DIR/run.json`. */
export function readRunManifest(runDir: string): RunManifest {
  const path = join(runDir, 'run.json');
  if (!existsSync(path)) throw new UserError(`${runDir}: not a training run (no run.json)`);
  const m = readJsonObjectFile(path, 'run manifest');
  if (m.format !== RUN_FORMAT) throw new UserError(`${path}: unknown run format '${String(m.format)}'`);
  const field = (name: string, ok: boolean, want: string) => {
    if (!ok) throw new UserError(`${path}: field '${name}' must be ${want}`);
  };
  field('model', isObject(m.model), 'an object (the world-model config)');
  const model = m.model as Record<string, unknown>;
  field('model.dit', isObject(model.dit), 'an object');
  for (const k of ['imageHeight', 'imageWidth', 'actionDim', 'maxFrames'])
    field(`model.${k}`, Number.isInteger(model[k]) && (model[k] as number) > 0, 'a positive integer');
  validateWorldModelConfig(m.model as WorldModelConfig, `${path}: field 'model'`);
  field('configName', typeof m.configName === 'string', 'a string');
  field('data', isObject(m.data), 'an object');
  field('actionStats', isObject(m.actionStats), 'an object (per-dimension action statistics)');
  const actionStats = validateActionStats(m.actionStats, `${path}: field 'actionStats'`);
  if (actionStats.names.length !== model.actionDim) field('actionStats.names', false, `${String(model.actionDim)} names (model.actionDim)`);
  field('contextFrames', isCount(m.contextFrames) && (m.contextFrames as number) >= 1, 'an integer >= 1');
  field('futureFrames', isCount(m.futureFrames) && (m.futureFrames as number) >= 1, 'an integer >= 1');
  return { ...(m as unknown as RunManifest), actionStats };
}
