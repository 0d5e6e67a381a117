/**
 * The "policy" optimiser kind: no search at all, the world model's own policy query (actions and
 * frames denoised jointly) picks the sequence. It is the baseline a planner must beat: whatever
 * CEM/MPPI add on top of it comes from scoring imagined futures against the goal.
 */
import type { AnytimeOptions, OptimizeResult } from './anytime.js';
import { applyPins } from './pinned-actions.js';
import { checkBatch, clipUnit, type SequenceShape } from './sequence.js';

export async function optimizePolicy(s: SequenceShape, o: AnytimeOptions): Promise<OptimizeResult> {
  if (!o.proposals) throw new Error("optimiser kind 'policy' needs a proposal source (the world model's policy query)");
  const now = o.now ?? (() => performance.now());
  const t0 = now();
  const len = s.horizon * s.actionDim;
  const p = await o.proposals(1);
  checkBatch('the proposal source', p, len);
  const best = Float32Array.from(p.subarray(0, len), (v) => (Number.isFinite(v) ? clipUnit(v) : 0));
  applyPins(best, s.actionDim, o.pinned ?? []);
  o.constrain?.(best);
  const elapsed = now() - t0;
  return {
    best,
    bestCost: NaN,
    mean: best,
    iterations: 1,
    candidatesEvaluated: 0,
    proposalsEvaluated: 1,
    costHistory: [],
    stopReason: 'iterations',
    elapsedMs: elapsed,
    externalMs: elapsed,
  };
}
