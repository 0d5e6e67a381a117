/**
 * Our own world-model weight files: safetensors with the config in the metadata, so a file
 * alone is enough to rebuild the model.
 */
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { UserError } from '../core/errors.js';
import { validateWorldModelConfig, type WorldModelConfig } from '../core/model-config.js';
import { checkAgainstLayout, worldModelLayout } from './params.js';

export const FORMAT = 'selfflow-wm/world-model@1';

export function writeWorldModel(path: string, cfg: WorldModelConfig, tensors: TensorMap, extra: Record<string, string> = {}): void {
  writeSafetensors(path, tensors, { format: FORMAT, config: JSON.stringify(cfg), ...extra });
}

export function isWorldModelFile(metadata: Record<string, string>): boolean {
  return metadata.format === FORMAT;
}

export function readWorldModel(path: string): { cfg: WorldModelConfig; tensors: TensorMap; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(path);
  if (!isWorldModelFile(metadata))
    throw new UserError(`${path}: not a selfflow-wm world-model file (metadata.format is '${metadata.format ?? 'absent'}')`);
  const cfg = JSON.parse(metadata.config ?? 'null') as WorldModelConfig;
  validateWorldModelConfig(cfg, `${path} (metadata.config)`);
  const problems = checkAgainstLayout(tensors, worldModelLayout(cfg));
  if (problems.length) throw new UserError(`${path}: weights do not match their config:\n  ${problems.slice(0, 10).join('\n  ')}`);
  return { cfg, tensors, metadata };
}
