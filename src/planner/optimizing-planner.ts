/**
 * The plan step, written once for every model: per (observation, goal), make the plan's cost
 * (a model's futures scored by the cost, src/planner/cost.ts), optimise it with CEM/MPPI anytime
 * (src/planner/optimizer.ts) warm-started from the previous plan shifted by what was executed,
 * within the time budget (or, lockstep, the iteration cap alone), with the preset's pins and
 * constraints; the best sequence becomes RT-1 actions.
 *
 * Plans never overlap: a plan whose predecessor was aborted (deadline) waits until that one has
 * really stopped and disposed its cost, since both would share the model; the wait counts against
 * the new plan's own deadline. The random stream runs on from plan to plan; reset() restarts it.
 */
import { modelActionToRt1 } from '../data/action-mapping.js';
import type { ActionStats } from '../core/action-stats.js';
import type { Rt1Action } from '../core/action.js';
import { Rng } from '../util/rng.js';
import { optimize, type OptimizerSettings } from './optimizer.js';
import { presetConstraints } from './pinned-actions.js';
import type { CostFactory, PlanConstraints } from './plan-model.js';
import type { PlannerPreset } from './presets.js';
import { shiftPlan } from './sequence.js';
import type { Goal, Observation, Plan } from '../core/types.js';

export interface OptimizingPlanStepOptions {
  optimizer: OptimizerSettings;
  makeCost: CostFactory;
  /** One step of the normalised sequence (actionDim values in [-1, 1]) to an RT-1 action. */
  toAction: (normalised: Float32Array) => Rt1Action;
  /** Time budget per plan (ms, by `now`). */
  budgetMs: number;
  /**
   * The robot waits for every plan (a simulated episode): no wall-clock deadline, the iteration
   * cap alone ends a plan, so a seed gives the same episode however loaded the machine is.
   */
  lockstep?: boolean;
  seed: number;
  /** Actions of the previous plan executed before the next plan starts (warm-start shift); default 1. */
  executeSteps?: number;
  /** Overrides executeSteps with what the executor really did (see ExecutionProgress in loop.ts). */
  executed?: (previous: Plan) => number;
  /** Pins, constraints and an included sequence for this (observation, goal). */
  constraints?: (obs: Observation, goal: Goal) => PlanConstraints;
  /**
   * Yield to the event loop between iterations. A cost that reads its tensors back synchronously
   * never lets the event loop run, so without this an abort would wait for the whole plan.
   */
  yieldBetween?: boolean;
  /** Clock of the budget and latencies; default performance.now. */
  now?: () => number;
}

export interface OptimizingPlanStep {
  plan(obs: Observation, goal: Goal, signal?: AbortSignal): Promise<Plan>;
  /** Forget the warm start (a new episode); a seed restarts the random stream. */
  reset(seed?: number): void;
}

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The optimising plan step. Options are read at every plan, so settings edited in place take effect. */
export function createOptimizingPlanStep(o: OptimizingPlanStepOptions): OptimizingPlanStep {
  const now = o.now ?? (() => performance.now());
  let rng = new Rng(o.seed);
  let previous: { plan: Plan; sequence: Float32Array } | undefined;
  let settled: Promise<void> = Promise.resolve();

  async function plan(obs: Observation, goal: Goal, signal?: AbortSignal): Promise<Plan> {
    const t0 = now();
    const before = settled;
    let release!: () => void;
    settled = new Promise<void>((r) => (release = r));
    try {
      await before;
      signal?.throwIfAborted();
      const s = o.optimizer;
      const { horizon, actionDim } = s;
      const cost = await o.makeCost(obs, goal, rng);
      try {
        const prev = previous;
        const warmStart = prev
          ? shiftPlan(prev.sequence, o.executed?.(prev.plan) ?? o.executeSteps ?? 1, horizon, actionDim, s.warmStartPad)
          : undefined;
        const r = await optimize(s, cost.cost, {
          rng,
          warmStart,
          proposals: cost.proposals,
          deadline: o.lockstep ? Infinity : t0 + o.budgetMs,
          now,
          signal,
          ...o.constraints?.(obs, goal),
          between: o.yieldBetween ? nextMacrotask : undefined,
        });
        signal?.throwIfAborted();
        if (!Number.isFinite(r.bestCost) && s.kind !== 'policy')
          throw new Error(`no candidate got a finite cost (${r.candidatesEvaluated} evaluated)`);
        const imagined = cost.imagine ? await cost.imagine(r.best) : undefined;
        signal?.throwIfAborted();
        const actions = Array.from({ length: horizon }, (_, t) => o.toAction(r.best.slice(t * actionDim, (t + 1) * actionDim)));
        const p: Plan = {
          actions,
          cost: r.bestCost,
          iterations: r.iterations,
          candidatesEvaluated: r.candidatesEvaluated,
          latencyMs: now() - t0,
          observationStamp: obs.stamp,
          safe: false,
          sequence: r.best,
          imagined,
        };
        // Its own copy: a plan's sequence may be transferred to another thread.
        previous = { plan: p, sequence: Float32Array.from(r.best) };
        return p;
      } finally {
        cost.dispose();
      }
    } finally {
      release();
    }
  }

  return {
    plan,
    reset(seed?: number) {
      previous = undefined;
      if (seed !== undefined) rng = new Rng(seed);
    },
  };
}

export interface PresetPlanStepOptions {
  seed: number;
  lockstep?: boolean;
  yieldBetween?: boolean;
  /** The optimiser settings to search with; default the preset's own. */
  optimizer?: (preset: PlannerPreset) => PlannerPreset['optimizer'];
}

/**
 * The plan step of a preset for a model with these action statistics: its optimiser, budget,
 * executed steps and constraints, read from the preset at every plan; actions mapped to RT-1 by
 * the statistics.
 */
export function presetPlanStep(
  preset: PlannerPreset,
  stats: ActionStats,
  makeCost: CostFactory,
  opts: PresetPlanStepOptions,
): OptimizingPlanStep {
  const actionDim = stats.names.length;
  const pick = opts.optimizer ?? ((p: PlannerPreset) => p.optimizer);
  return createOptimizingPlanStep({
    get optimizer() {
      return { ...pick(preset), actionDim };
    },
    get budgetMs() {
      return preset.budgetMs;
    },
    get executeSteps() {
      return preset.executeSteps;
    },
    makeCost,
    toAction: (v) => modelActionToRt1(stats, v),
    constraints: (obs, goal) => presetConstraints(preset, stats, preset.optimizer.horizon)(obs, goal),
    seed: opts.seed,
    lockstep: opts.lockstep,
    yieldBetween: opts.yieldBetween,
  });
}
