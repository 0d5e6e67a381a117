/**
 * The world-model planner: every plan encodes the latest K camera frames once (context cache),
 * optimises action sequences with CEM/MPPI whose candidates are imagined by the model and scored
 * against the goal image, mixes in the model's own policy-query proposals, and returns the best
 * sequence as RT-1 actions with the imagined frames of the chosen plan.
 */
import * as tf from '@tensorflow/tfjs';
import { from, type Observable } from 'rxjs';
import { initBackend } from '../backend/backends.js';
import type { ActionStats } from '../data/action-stats.js';
import { modelActionToRt1, rt1ToModelAction } from '../data/action-mapping.js';
import { embedInstruction } from '../data/language-embedding.js';
import type { WorldModelConfig } from '../model/config.js';
import type { Params } from '../model/layers.js';
import { toTf } from '../model/params.js';
import { loadInferenceWeights } from '../train/run-files.js';
import { UserError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { observationToTensor, tensorToImages } from './frames.js';
import { differingFraction } from './image-distance.js';
import { makePlanner } from './loop.js';
import { optimize, shiftPlan } from './optimizer.js';
import { checkPins, moveCap, pinnedDims } from './pinned-actions.js';
import { loadPlannerPreset, type PlannerPreset } from './presets.js';
import type { Rt1Action } from '../robot/action.js';
import type { Goal, Observation, Plan, Planner } from './types.js';
import { stepWeights, WorldModelScorer } from './wm-scorer.js';
import { goalGripperPosition, gripperPosition, predictedPoseCosts, straightMove } from './gripper-position.js';

export interface WorldModelPlannerOptions {
  backend?: string;
  seed?: number;
  /** Keep imagined frames of the chosen plan on every Plan (for GIFs and dashboards). */
  imagine?: boolean;
  /**
   * The robot waits for every plan (a simulated episode): no wall-clock deadline, the preset's
   * iteration cap alone ends a plan, so a seed gives the same episode however loaded the machine is.
   * Off for real robots, where the preset's budgetMs holds.
   */
  lockstep?: boolean;
}

export class WorldModelPlanning {
  private readonly history: { stamp: number; frame: tf.Tensor3D }[] = [];
  private goalRef?: Goal;
  private instruction?: string;
  private previous?: Float32Array;
  private rng: Rng;
  readonly scorer: WorldModelScorer;

  constructor(
    readonly params: Params,
    readonly cfg: WorldModelConfig,
    readonly stats: ActionStats,
    readonly contextFrames: number,
    readonly preset: PlannerPreset,
    private readonly opts: WorldModelPlannerOptions = {},
  ) {
    this.rng = new Rng(opts.seed ?? 0);
    this.scorer = new WorldModelScorer(params, cfg, preset.cost, { ...preset.rollout, seed: opts.seed ?? 0 });
    if (stats.names.length !== cfg.actionDim) throw new UserError(`action statistics have ${stats.names.length} dimensions but the model takes ${cfg.actionDim}`);
    checkPins(preset, stats);
  }

  private pushFrame(obs: Observation): tf.Tensor3D[] {
    if (!this.history.length || this.history[this.history.length - 1]!.stamp !== obs.stamp) {
      this.history.push({ stamp: obs.stamp, frame: observationToTensor(obs, this.cfg.imageHeight, this.cfg.imageWidth) });
      while (this.history.length > this.contextFrames) this.history.shift()!.frame.dispose();
    }
    const frames = this.history.map((h) => h.frame);
    while (frames.length < this.contextFrames) frames.unshift(frames[0]!);
    return frames;
  }

  /** One plan from the latest observation and goal: within the preset's time budget, or (lockstep) its iteration cap. */
  async plan(obs: Observation, goal: Goal, signal?: AbortSignal): Promise<Plan> {
    const t0 = performance.now();
    const p = this.preset;
    const h = p.optimizer.horizon;
    const a = this.cfg.actionDim;
    if (!goal.images.length) throw new Error('goal has no image');
    if (goal.instruction !== this.instruction) {
      // Language conditions every token, the context included, so it is set before the context is encoded.
      this.instruction = goal.instruction;
      this.scorer.setLanguage(goal.instruction && this.cfg.languageDim > 0 ? tf.tensor2d(embedInstruction(goal.instruction), [1, this.cfg.languageDim]) : undefined);
      this.goalRef = undefined;
    }
    const frames = this.pushFrame(obs);
    const ctx = tf.stack(frames) as tf.Tensor4D;
    this.scorer.setContext(ctx);
    ctx.dispose();
    if (goal !== this.goalRef) {
      const g = observationToTensor(goal.images[goal.images.length - 1]!, this.cfg.imageHeight, this.cfg.imageWidth);
      this.scorer.setGoal(g);
      g.dispose();
      this.goalRef = goal;
    }
    const warm = this.previous ? shiftPlan(this.previous, p.executeSteps, h, a, p.optimizer.warmStartPad) : undefined;
    const seed = this.rng.int(1 << 30);
    const start = gripperPosition(obs);
    const target = goalGripperPosition(goal);
    const poseW = p.cost.pose > 0 && start && target ? stepWeights(h, p.cost.terminal).map((x) => x * p.cost.pose) : undefined;
    const cost = (c: Float32Array, n: number): Float32Array => {
      const costs = this.scorer.score(c, n, h, false, seed).costs;
      if (poseW) predictedPoseCosts(c, n, h, this.stats, start!, target!, poseW).forEach((x, i) => (costs[i]! += x));
      return costs;
    };
    const result = await optimize({ ...p.optimizer, actionDim: a }, async (c, n) => cost(c, n), {
      rng: this.rng,
      warmStart: warm,
      proposals: p.optimizer.proposalFraction > 0 || p.optimizer.kind === 'policy' ? async (n) => this.scorer.propose(n, h, seed + 1) : undefined,
      deadline: this.opts.lockstep ? Infinity : t0 + p.budgetMs,
      signal,
      pinned: pinnedDims(p.actions, this.stats, goal),
      constrain: moveCap(p.actions, this.stats, goal, obs),
      include: p.poseProposal && start && target ? straightMove(this.stats, start, target, h) : undefined,
      // Scoring is synchronous: without a macrotask break an abort (e.g. from the service's worker host) waits for the whole plan.
      between: () => new Promise((resolve) => setImmediate(resolve)),
    });
    this.previous = result.best;
    let imagined: Uint8Array[] | undefined;
    if (this.opts.imagine) {
      const r = this.scorer.score(result.best, 1, h, true, seed);
      imagined = tensorToImages(r.frames!);
      r.frames!.dispose();
    }
    const actions = Array.from({ length: h }, (_, t) => modelActionToRt1(this.stats, result.best.subarray(t * a, (t + 1) * a)));
    return {
      actions,
      cost: result.bestCost,
      iterations: result.iterations,
      candidatesEvaluated: result.candidatesEvaluated,
      latencyMs: performance.now() - t0,
      observationStamp: obs.stamp,
      safe: false,
      imagined,
    };
  }

  /**
   * Imagined frames [N, H, h, w, 3] of RT-1 action sequences (N sequences of H actions) from context
   * observations (oldest first), for probes and tools; caller disposes. The next plan() re-encodes its own context;
   * not to be called while a plan() is running (it swaps the scorer's context).
   */
  imagineSequences(context: Observation[], instruction: string, sequences: Rt1Action[][], seed = 0): tf.Tensor5D {
    const h = sequences[0]?.length ?? 0;
    if (!h || sequences.some((s) => s.length !== h)) throw new Error('imagineSequences: sequences must be non-empty and equally long');
    if (!context.length) throw new Error('imagineSequences: no context observation');
    if (instruction !== this.instruction) {
      this.instruction = instruction;
      this.goalRef = undefined;
      this.scorer.setLanguage(instruction && this.cfg.languageDim > 0 ? tf.tensor2d(embedInstruction(instruction), [1, this.cfg.languageDim]) : undefined);
    }
    const frames = context.slice(-this.contextFrames).map((o) => observationToTensor(o, this.cfg.imageHeight, this.cfg.imageWidth));
    while (frames.length < this.contextFrames) frames.unshift(frames[0]!.clone());
    const ctx = tf.stack(frames) as tf.Tensor4D;
    this.scorer.setContext(ctx);
    tf.dispose([ctx, ...frames]);
    const a = this.cfg.actionDim;
    const flat = new Float32Array(sequences.length * h * a);
    sequences.forEach((seq, i) => seq.forEach((act, t) => flat.set(rt1ToModelAction(this.stats, act), (i * h + t) * a)));
    return this.scorer.imagineFrames(flat, sequences.length, h, seed);
  }

  /** How much two camera images differ at the model's resolution (goal sequencing; see differingFraction). */
  imageDistance(a: Observation, b: Observation): number {
    return tf.tidy(() => differingFraction(observationToTensor(a, this.cfg.imageHeight, this.cfg.imageWidth), observationToTensor(b, this.cfg.imageHeight, this.cfg.imageWidth)));
  }

  /** Forget the context and warm start (new episode); a seed makes the episode reproducible on its own. */
  reset(seed?: number): void {
    if (seed !== undefined) this.rng = new Rng(seed);
    this.history.splice(0).forEach((h) => h.frame.dispose());
    this.previous = undefined;
    this.goalRef = undefined;
    this.instruction = undefined;
  }

  dispose(): void {
    this.reset();
    this.scorer.dispose();
  }

  planner(): Planner {
    return makePlanner((obs, goal, signal): Observable<Plan> => from(this.plan(obs, goal, signal)), { budgetMs: this.preset.budgetMs, graceMs: this.preset.graceMs });
  }
}

/** Loads a run (or weight file + statistics) and a preset; used by `plan`, `eval` and `serve`. */
export async function loadWorldModelPlanning(presetNameOrPath: string, checkpoint: string, opts: WorldModelPlannerOptions = {}): Promise<WorldModelPlanning> {
  await initBackend(opts.backend);
  const preset = loadPlannerPreset(presetNameOrPath);
  const w = loadInferenceWeights(checkpoint);
  if (!w.manifest) throw new UserError(`${checkpoint}: planning needs a run directory (its run.json holds the action statistics)`);
  return new WorldModelPlanning(toTf(w.tensors), w.cfg, w.manifest.actionStats as ActionStats, w.manifest.contextFrames, preset, opts);
}

export async function createWorldModelPlanner(presetNameOrPath: string, checkpointDir: string, opts: WorldModelPlannerOptions = {}): Promise<Planner> {
  return (await loadWorldModelPlanning(presetNameOrPath, checkpointDir, opts)).planner();
}
