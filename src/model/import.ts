/**
 * Imports an official Self-Flow checkpoint (or any official-layout state dict) into a
 * world-model config: tensors whose name and shape match are copied, the rest initialised. From a
 * world model with a smaller patch (a whole fraction of this one's), the patch tensors are resampled.
 */
import type { TensorMap } from '../checkpoint/tensor-map.js';
import type { WorldModelConfig } from '../core/model-config.js';
import { worldModelInit, worldModelLayout } from './params.js';
import { resamplePatchTensor } from './patch-resample.js';

export interface ImportReport {
  copied: string[];
  /** Patch tensors carried to a patch k times larger (src/model/patch-resample.ts). */
  resampled: string[];
  /** Initialised because the source lacks them or has another shape. */
  initialised: { name: string; reason: string }[];
  /** Source tensors the world model has no use for. */
  unused: string[];
}

export function importIntoWorldModel(source: TensorMap, cfg: WorldModelConfig, seed: number): { tensors: TensorMap; report: ImportReport } {
  const tensors = worldModelInit(cfg, seed);
  const layout = worldModelLayout(cfg);
  const report: ImportReport = { copied: [], resampled: [], initialised: [], unused: [] };
  for (const [name, shape] of layout) {
    const src = source.get(name);
    if (name === 'pos_embed') {
      // A fixed sin-cos buffer for the patch grid: regenerate it, since another grid with the same token count would match by shape.
      report.initialised.push({ name, reason: 'fixed sin-cos buffer, regenerated for this patch grid' });
    } else if (!src) {
      report.initialised.push({ name, reason: 'not in the source (world-model part)' });
    } else if (JSON.stringify(src.shape) !== JSON.stringify(shape)) {
      const resampled = resamplePatchTensor(name, src, shape, cfg.dit.in_channels);
      if (typeof resampled === 'string') report.initialised.push({ name, reason: resampled });
      else {
        tensors.set(name, { dtype: 'float32', shape, data: resampled });
        report.resampled.push(name);
      }
    } else {
      tensors.set(name, { dtype: 'float32', shape, data: Float32Array.from(src.data as ArrayLike<number>, Number) });
      report.copied.push(name);
    }
  }
  for (const name of source.keys()) if (!layout.has(name)) report.unused.push(name);
  return { tensors, report };
}

export function summariseImport(r: ImportReport, source: TensorMap): string {
  const count = (names: string[]) => names.reduce((n, k) => n + (source.get(k)?.data.length ?? 0), 0);
  const lines = [
    `copied ${r.copied.length} tensors (${count(r.copied).toLocaleString('en-US')} values) whose name and shape match`,
    ...(r.resampled.length ? [`resampled ${r.resampled.length} patch tensors to the larger patch: ${r.resampled.join(', ')}`] : []),
    `initialised ${r.initialised.length} tensors:`,
    ...r.initialised.map((i) => `  ${i.name}: ${i.reason}`),
  ];
  if (r.unused.length)
    lines.push(
      `ignored ${r.unused.length} source tensors the world model does not have: ${r.unused.slice(0, 8).join(', ')}${r.unused.length > 8 ? ', ...' : ''}`,
    );
  return lines.join('\n');
}
