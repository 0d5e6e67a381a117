/**
 * One factory for what plans a simulated episode: `oracle` / `oracle:PRESET` is the planner with
 * the simulator as its model (src/planner/sim-oracle.ts); any other name is a world-model planner
 * preset (`wm` = wm-cem-fast). Used by `plan` and by the evaluation.
 */
import type { ActionStats } from '../data/action-stats.js';
import { readManifest } from '../train/run-files.js';
import type { EpisodePlanning } from './episode.js';
import { loadPlannerPreset } from './presets.js';
import { SimOraclePlanning } from './sim-oracle.js';
import { loadWorldModelPlanning, type WorldModelPlannerOptions } from './world-model-planner.js';

export function isOraclePolicy(name: string): boolean {
  return name === 'oracle' || name.startsWith('oracle:');
}

/** The planner preset a policy name plans with. */
export function presetName(name: string): string {
  if (name === 'oracle' || name === 'wm') return 'wm-cem-fast';
  return name.startsWith('oracle:') ? presetName(name.slice('oracle:'.length)) : name;
}

export async function loadEpisodePlanning(name: string, checkpoint: string, opts: WorldModelPlannerOptions = {}): Promise<EpisodePlanning> {
  if (!isOraclePolicy(name)) return loadWorldModelPlanning(presetName(name), checkpoint, opts);
  // The oracle uses the run's action scaling and image size, so only the model differs from the world-model planner.
  const run = readManifest(checkpoint);
  return new SimOraclePlanning(loadPlannerPreset(presetName(name)), run.model, run.actionStats as ActionStats, opts.seed ?? 0);
}
