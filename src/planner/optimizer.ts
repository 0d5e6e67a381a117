/**
 * The optimiser a preset names: CEM (elite refitting, src/planner/cem.ts) or MPPI (cost-weighted
 * averaging, src/planner/mppi.ts) over action sequences of horizon H x action dim A in the
 * normalised action space [-1, 1]. Both run under the same anytime driver (src/planner/anytime.ts):
 * candidates mix the current mean, proposals from an external source (the world model's policy
 * query) and Gaussian samples; iteration stops at the cap, the time budget or an abort, keeping
 * the best sequence seen.
 */
import type { AnytimeOptions, OptimizeResult } from './anytime.js';
import { optimizeCem } from './cem.js';
import { optimizeMppi } from './mppi.js';
import { optimizePolicy } from './policy-only.js';
import type { SequenceCost, WarmStartPad } from './sequence.js';

export type { AnytimeOptions as OptimizeOptions, OptimizeResult, StopReason } from './anytime.js';
export { shiftPlan, type ProposalSource, type SequenceCost, type WarmStartPad } from './sequence.js';

/** `policy`: no search, the model's policy query alone (the baseline; see policy-only.ts). */
export type OptimizerKind = 'cem' | 'mppi' | 'policy';
export const OPTIMIZER_KINDS: readonly OptimizerKind[] = ['cem', 'mppi', 'policy'];

export interface OptimizerSettings {
  kind: OptimizerKind;
  horizon: number;
  actionDim: number;
  /** Candidates evaluated per iteration (the mean, proposals and Gaussian samples). */
  candidates: number;
  /** Upper bound on iterations (the time budget usually ends earlier). */
  iterations: number;
  /** CEM: elites refitted per iteration. */
  elites: number;
  /** MPPI: temperature of the cost weighting, in cost units. */
  temperature: number;
  initStd: number;
  minStd: number;
  /** Fraction of candidates drawn from the proposal source (0 = none). */
  proposalFraction: number;
  /** How the shifted warm start is padded: repeat the last action or pad with zeros. */
  warmStartPad: WarmStartPad;
}

export async function optimize(s: OptimizerSettings, cost: SequenceCost, o: AnytimeOptions): Promise<OptimizeResult> {
  switch (s.kind) {
    case 'cem':
      return optimizeCem(s, cost, o);
    case 'mppi':
      return optimizeMppi(s, cost, o);
    case 'policy':
      return optimizePolicy(s, o);
    default:
      throw new Error(`unknown optimiser kind ${JSON.stringify((s as { kind: unknown }).kind)} (${OPTIMIZER_KINDS.join(', ')})`);
  }
}
