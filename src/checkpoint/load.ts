/**
 * Load a model state dict from `.safetensors` or a torch `.pt`, accepting the layouts
 * training scripts produce: nested under `model` / `ema` / `state_dict`, `module.` prefixes.
 */
import { existsSync } from 'node:fs';
import { UserError, errorMessage } from '../core/errors.js';
import type { ZipLimits } from './zip.js';
import { readSafetensors } from './safetensors.js';
import type { TensorMap } from './tensor-map.js';
import { collectTensors, readTorchPickle } from './torch-pt.js';

export const NESTED_KEYS = ['model', 'ema', 'state_dict'] as const;

export interface LoadedStateDict {
  tensors: TensorMap;
  /** Which nested entry was used, if any. */
  nestedKey?: string;
  metadata: Record<string, string>;
}

function stripModulePrefix(name: string): string {
  return name.startsWith('module.') ? name.slice('module.'.length) : name;
}

/**
 * @param prefer nested entry to take when several exist (default: model, then ema, then state_dict,
 *   as the official sample.py does).
 * @param limits caps on inflated zip entries (a zip bomb is refused, not inflated).
 */
export function loadStateDict(path: string, prefer?: string, limits: ZipLimits = {}): LoadedStateDict {
  if (!existsSync(path)) throw new UserError(`${path}: checkpoint file not found`);
  if (path.endsWith('.safetensors')) {
    const { tensors, metadata } = readSafetensors(path);
    const renamed: TensorMap = new Map();
    for (const [k, v] of tensors) renamed.set(stripModulePrefix(k), v);
    return { tensors: renamed, metadata };
  }
  const root = readTorchPickle(path, limits);
  if (!(root instanceof Map)) throw new UserError(`${path}: top-level object is not a dict (got ${typeof root})`);
  const order = prefer ? [prefer] : [...NESTED_KEYS];
  let nestedKey: string | undefined;
  let node: unknown = root;
  for (const key of order) {
    if (root.get(key) instanceof Map) {
      nestedKey = key;
      node = root.get(key);
      break;
    }
  }
  if (prefer && !nestedKey) throw new UserError(`${path}: has no nested state dict '${prefer}' (keys: ${[...root.keys()].join(', ')})`);
  const refs = collectTensors(node, '', undefined, path);
  if (refs.size === 0) throw new UserError(`${path}: no tensors found${nestedKey ? ` under '${nestedKey}'` : ''}`);
  const tensors: TensorMap = new Map();
  for (const [k, ref] of refs) {
    try {
      tensors.set(stripModulePrefix(k), ref.decode());
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`${path}: tensor '${k}': ${errorMessage(e)}`, { cause: e });
    }
  }
  return { tensors, nestedKey, metadata: {} };
}
