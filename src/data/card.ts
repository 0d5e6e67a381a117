/**
 * Dataset cards (datasets/NAME.json): which RLDS features a dataset has, their per-step dtype
 * and shape, the camera to train on, and which action parts form the model's action vector.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';

export type FeatureDType = 'float32' | 'int32' | 'bool' | 'string' | 'image';

export interface FeatureSpec {
  dtype: FeatureDType;
  /** Per-step (or per-episode) shape; [] for scalars. Images: nominal [H, W, C] (frames are resized anyway). */
  shape: number[];
  /** 'episode' for episode-level features (not under steps/). */
  per?: 'step' | 'episode';
  optional?: boolean;
  encoding?: 'jpeg' | 'png';
}

export interface ActionPart {
  feature: string;
  names: string[];
}

export interface DatasetCard {
  name: string;
  dataset: string;
  description?: string;
  /** Regular expression a shard file name must match. */
  file_pattern: string;
  /** A per-step feature present in every episode: its element count is the step count. */
  steps_feature: string;
  image: string;
  instruction?: string;
  language_embedding?: string;
  features: Record<string, FeatureSpec>;
  action: ActionPart[];
  /** Where the card was read from. */
  source?: string;
}

const DTYPES: FeatureDType[] = ['float32', 'int32', 'bool', 'string', 'image'];

/** Stored elements per step: one byte string for an image or a string, else the product of the shape. */
export function perStepSize(spec: FeatureSpec): number {
  if (spec.dtype === 'image' || spec.dtype === 'string') return 1;
  return spec.shape.reduce((a, b) => a * b, 1);
}

/** Length of the model's action vector: the card's action parts, concatenated in order. */
export function actionDim(card: DatasetCard): number {
  return card.action.reduce((n, p) => n + p.names.length, 0);
}

export function actionNames(card: DatasetCard): string[] {
  return card.action.flatMap((p) => p.names);
}

/** `--data NAME` -> datasets/NAME.json; anything with a slash or .json suffix is a path. */
export function loadCard(nameOrPath: string): DatasetCard {
  const isPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  const path = isPath ? nameOrPath : join(packageRoot(), 'datasets', `${nameOrPath}.json`);
  if (!existsSync(path)) {
    throw new UserError(
      isPath
        ? `${path}: dataset card not found`
        : `unknown dataset '${nameOrPath}': no card ${path} (give a card file path with --data PATH)`,
    );
  }
  let raw: DatasetCard;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as DatasetCard;
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  validateCard(raw, path);
  return { ...raw, source: path };
}

export function validateCard(c: DatasetCard, source: string): void {
  const need = (cond: unknown, msg: string) => {
    if (!cond) throw new UserError(`${source}: ${msg}`);
  };
  need(typeof c.name === 'string' && c.name, "'name' must be a non-empty string");
  need(c.features && typeof c.features === 'object', "'features' must be an object");
  for (const [name, f] of Object.entries(c.features)) {
    need(DTYPES.includes(f.dtype), `feature '${name}': dtype must be one of ${DTYPES.join(', ')}, got '${f.dtype}'`);
    need(
      Array.isArray(f.shape) && f.shape.every((d) => Number.isInteger(d) && d > 0),
      `feature '${name}': shape must be a list of positive integers`,
    );
    if (f.dtype === 'image') need(f.shape.length === 3, `feature '${name}': image shape must be [H, W, C]`);
  }
  for (const key of ['steps_feature', 'image'] as const) need(c.features[c[key]], `'${key}' names '${c[key]}', which is not in 'features'`);
  need(c.features[c.image]!.dtype === 'image', `'image' names '${c.image}', which is not an image feature`);
  if (c.instruction) need(c.features[c.instruction]?.dtype === 'string', `'instruction' must name a string feature`);
  if (c.language_embedding) need(c.features[c.language_embedding]?.dtype === 'float32', `'language_embedding' must name a float32 feature`);
  need(Array.isArray(c.action) && c.action.length > 0, "'action' must list at least one action part");
  for (const part of c.action) {
    const f = c.features[part.feature];
    need(f, `action part '${part.feature}' is not in 'features'`);
    need(f!.dtype === 'float32' || f!.dtype === 'int32', `action part '${part.feature}' must be numeric`);
    need(
      Array.isArray(part.names) && part.names.length === perStepSize(f!),
      `action part '${part.feature}' has ${part.names?.length} names for ${perStepSize(f!)} values`,
    );
  }
  try {
    new RegExp(c.file_pattern);
  } catch {
    throw new UserError(`${source}: 'file_pattern' is not a valid regular expression`);
  }
}
