/**
 * One factory for what plans a simulated episode: `oracle` / `oracle:PRESET` is the planner with
 * the simulator as its model (src/planner/sim-oracle.ts); any other name is a world-model planner
 * preset (`wm` = wm-cem-read). Used by `plan` and by the evaluation.
 */
import { readRunManifest } from '../core/run-manifest.js';
import type { EpisodePlanning } from './episode.js';
import { loadGoalStateReading } from './goal-state-reading.js';
import { plannerPolicy, type PlannerPolicy } from './policy-name.js';
import { loadPolicyProposals } from './policy-proposals.js';
import { loadPlannerPreset } from './presets.js';
import { SimOraclePlanning } from './sim-oracle.js';
import { loadWorldModelPlanning, type WorldModelPlannerOptions } from './world-model-planner.js';

/** `policy`: a planner policy name (src/planner/policy-name.ts) or its resolved form. */
export async function loadEpisodePlanning(
  policy: string | PlannerPolicy,
  checkpoint: string,
  opts: WorldModelPlannerOptions = {},
): Promise<EpisodePlanning> {
  const p = typeof policy === 'string' ? plannerPolicy(policy) : policy;
  if (p.kind === 'world-model') return loadWorldModelPlanning(p.preset, checkpoint, opts);
  // The oracle uses the run's action scaling and image size, so only the model differs from the world-model planner.
  const run = readRunManifest(checkpoint);
  const preset = loadPlannerPreset(p.preset);
  const reading = loadGoalStateReading(preset, checkpoint);
  const proposals = loadPolicyProposals(preset, checkpoint, run.actionStats);
  return new SimOraclePlanning(preset, run.model, run.actionStats, opts.seed ?? 0, reading, proposals);
}
