/**
 * The small networks next to the world model (state reader, action policy) are one safetensors file
 * each: the weights, a `format` tag and the config as JSON in the metadata. Reading checks all three
 * and names the file and the field that is wrong.
 */
import { existsSync } from 'node:fs';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { UserError } from '../core/errors.js';
import { checkAgainstLayout, type Layout } from './params.js';

export interface WeightFileKind<C> {
  format: string;
  /** What the file holds, for errors ("a selfflow-wm state reader"). */
  what: string;
  /** Throws a UserError naming `where` and the field when the config is unusable. */
  check(cfg: C, where: string): void;
  layout(cfg: C): Layout;
}

export function writeWeightFile<C>(
  path: string,
  kind: WeightFileKind<C>,
  cfg: C,
  tensors: TensorMap,
  extra: Record<string, string> = {},
): void {
  writeSafetensors(path, tensors, { format: kind.format, config: JSON.stringify(cfg), ...extra });
}

export function readWeightFile<C>(path: string, kind: WeightFileKind<C>): { cfg: C; tensors: TensorMap; metadata: Record<string, string> } {
  if (!existsSync(path)) throw new UserError(`${path}: no such file (expected ${kind.what})`);
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== kind.format)
    throw new UserError(`${path}: not ${kind.what} (metadata.format is '${metadata.format ?? 'absent'}')`);
  let cfg: C;
  try {
    cfg = JSON.parse(metadata.config ?? 'null') as C;
  } catch {
    throw new UserError(`${path}: metadata.config is not JSON`);
  }
  kind.check(cfg, `${path} (metadata.config)`);
  const problems = checkAgainstLayout(tensors, kind.layout(cfg));
  if (problems.length) throw new UserError(`${path}: weights do not match their config:\n  ${problems.slice(0, 10).join('\n  ')}`);
  return { cfg, tensors, metadata };
}
