/**
 * Action sequences as the optimisers see them: H steps x A dimensions, row-major, in the
 * normalised action space [-1, 1] (dataset q01/q99 map to -1/+1). Populations of N candidates
 * are laid out N x H x A in one Float32Array so a batched cost can hand them to a model as-is.
 */

/** Costs of `n` candidates laid out n x H x A (row-major); lower is better. */
export type SequenceCost = (candidates: Float32Array, n: number) => Promise<Float32Array>;

/** `n` proposals laid out n x H x A (the world model's policy query plugs in here). */
export type ProposalSource = (n: number) => Promise<Float32Array>;

/** How a shifted warm start fills the steps past the previous plan's end. */
export type WarmStartPad = 'repeat' | 'zero';

export interface SequenceShape {
  horizon: number;
  actionDim: number;
}

export const clipUnit = (v: number): number => (v < -1 ? -1 : v > 1 ? 1 : v);

/**
 * Drops the `executed` first actions of a plan and pads the end, so the previous plan starts a
 * new optimisation where the robot now is. The plan may have a different horizon than the new
 * one (a changed preset): it is cut or padded. Nothing left (all executed) pads from scratch,
 * which for 'repeat' means repeating the plan's last action.
 */
export function shiftPlan(plan: Float32Array, executed: number, horizon: number, actionDim: number, pad: WarmStartPad): Float32Array {
  if (plan.length % actionDim !== 0)
    throw new Error(`warm start has ${plan.length} values, not a multiple of the action dimension ${actionDim}`);
  const steps = plan.length / actionDim;
  const skip = Math.max(0, Math.floor(executed));
  const out = new Float32Array(horizon * actionDim);
  const have = Math.max(0, Math.min(horizon, steps - skip));
  out.set(plan.subarray(skip * actionDim, (skip + have) * actionDim));
  if (pad === 'repeat' && steps > 0) {
    // The last action the robot would still have been doing: the plan's last one.
    const last = plan.subarray((steps - 1) * actionDim, steps * actionDim);
    for (let t = have; t < horizon; t++) out.set(last, t * actionDim);
  }
  return out;
}

/** Checks a batch returned by a cost or proposal function before the optimiser trusts it. */
export function checkBatch(what: string, values: Float32Array, expected: number): void {
  if (!(values instanceof Float32Array))
    throw new Error(`${what} returned ${Object.prototype.toString.call(values)}, expected a Float32Array`);
  if (values.length < expected) throw new Error(`${what} returned ${values.length} values, expected ${expected}`);
}
