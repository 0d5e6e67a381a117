/**
 * The world-model planner: every plan encodes the latest K camera frames once (context cache),
 * optimises action sequences with CEM/MPPI whose candidates are imagined by the model and scored
 * against the goal image (src/planner/cost.ts), mixes in the model's own policy-query proposals,
 * and returns the best sequence as RT-1 actions with the imagined frames of the chosen plan.
 */
import * as tf from '@tensorflow/tfjs';
import { from, type Observable } from 'rxjs';
import { initBackend } from '../backend/backends.js';
import type { ActionStats } from '../core/action-stats.js';
import { rt1ToModelAction } from '../data/action-mapping.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { toTf } from '../model/params.js';
import { loadInferenceWeights } from '../train/run-files.js';
import type { Rng } from '../util/rng.js';
import { UserError } from '../core/errors.js';
import { modelCost } from './cost.js';
import { observationToTensor, tensorToImages } from './frames.js';
import { gripperPosition } from './gripper-position.js';
import { differingFraction } from './image-distance.js';
import { makePlanner } from './loop.js';
import { presetPlanStep, type OptimizingPlanStep } from './optimizing-planner.js';
import { checkPins } from './pinned-actions.js';
import { ScorePool, scoreWorkerScript, splitModelCost, type ShareableModel, type ShareableRollout } from './parallel-scorer.js';
import { loadGoalStateReading, type GoalStateReading } from './goal-state-reading.js';
import { loadPlannerPreset, type PlannerPreset } from './presets.js';
import { loadPolicyProposals, type PolicyProposals } from './policy-proposals.js';
import { graspingPlanStep } from './policy-grasp.js';
import type { Rt1Action } from '../core/action.js';
import type { Goal, Observation, Plan, Planner } from '../core/types.js';
import { instructionLanguage, worldModelFutures, WorldModelRollout } from './world-model-rollout.js';

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
  /**
   * Threads that score one plan's candidates (loadWorldModelPlanning): this one plus
   * planWorkers - 1 scoring workers, each with its own copy of the model. Default 1.
   */
  planWorkers?: number;
  /** Where the planner says how many threads it plans on, or why fewer (default: nowhere). */
  log?: (line: string) => void;
  /** Rollout settings that replace the preset's (`model probe --flow-steps`, `--action-guidance`). */
  rollout?: Partial<PlannerPreset['rollout']>;
}

/**
 * The world model as a PlanModel: the latest K camera frames (and the instruction) are encoded
 * once per plan into a context cache; candidates' futures are imagined from it, with the
 * kinematic gripper positions of their moves; the goal's representation features are kept while
 * the goal stays the same.
 */
export class WorldModelPlanModel implements ShareableModel {
  private readonly history: { stamp: number; frame: tf.Tensor3D }[] = [];
  private goalRef?: Goal;
  /** Counts the goals (and instructions) whose features were encoded; scoring workers re-encode theirs when it changes. */
  private goalKey = 0;
  private instruction?: string;
  readonly net: WorldModelRollout;

  constructor(
    readonly params: Params,
    readonly cfg: WorldModelConfig,
    readonly stats: ActionStats,
    readonly contextFrames: number,
    readonly preset: PlannerPreset,
    seed: number,
    private readonly imagine: boolean,
    /** The action policy for presets with proposer "policy" (the planner owns it); the joint query proposes otherwise. */
    private readonly policy?: PolicyProposals,
  ) {
    this.net = new WorldModelRollout(params, cfg, { ...preset.rollout, seed }, preset.cost.representation > 0);
  }

  get imageHeight(): number {
    return this.cfg.imageHeight;
  }

  get imageWidth(): number {
    return this.cfg.imageWidth;
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

  private setInstruction(instruction: string | undefined): void {
    if (instruction === this.instruction) return;
    // Language conditions every token, the context included, so it is set before the context is encoded.
    this.instruction = instruction;
    this.net.setLanguage(instructionLanguage(this.cfg, instruction));
    this.goalRef = undefined;
  }

  rollout(obs: Observation, goal: Goal, horizon: number, rng: Rng): ShareableRollout {
    if (!goal.images.length) throw new Error('goal has no image');
    this.setInstruction(goal.instruction);
    const ctx = tf.stack(this.pushFrame(obs)) as tf.Tensor4D;
    // The context is encoded when the plan first imagines or queries the model: a plan whose actions
    // come from the action policy alone (kind "policy", proposer "policy") never runs the world model.
    const net = this.net;
    let encoded = false;
    const encodeContext = () => {
      if (encoded) return;
      encoded = true;
      net.setContext(ctx);
      ctx.dispose();
    };
    if (goal !== this.goalRef) {
      const g = observationToTensor(goal.images[goal.images.length - 1]!, this.cfg.imageHeight, this.cfg.imageWidth);
      this.net.setGoal(g);
      g.dispose();
      this.goalRef = goal;
      this.goalKey++;
    }
    // One flow-noise seed per plan: candidate i of every iteration is imagined from row i of the same noise.
    const seed = rng.int(1 << 30);
    const frames = ctx.dataSync() as Float32Array;
    const futures = worldModelFutures(net, this.stats, horizon, seed, gripperPosition(obs));
    let proposed: { n: number; values: Float32Array } | undefined;
    const shared = {
      frames,
      contextFrames: this.contextFrames,
      instruction: this.instruction,
      goalKey: this.goalKey,
      obs,
      seed,
      horizon,
    };
    return {
      predict: (c, n, share) => {
        encodeContext();
        return futures(c, n, share);
      },
      shared: () => shared,
      // One proposal seed per plan too, so a plan's proposals are the same in every iteration: drawn once, handed out again.
      proposals: this.policy
        ? this.policy.source(obs, this.instruction, horizon, seed + 1)
        : async (n) => {
            encodeContext();
            if (proposed?.n !== n) proposed = { n, values: net.propose(n, horizon, seed + 1) };
            return proposed.values.slice();
          },
      imagine: this.imagine
        ? (best) => {
            encodeContext();
            const frames = net.imagineFrames(best, 1, horizon, seed);
            const images = tensorToImages(frames);
            frames.dispose();
            return images;
          }
        : undefined,
      // The context cache stays until the next plan or imagineSequences replaces it; an unencoded context is freed.
      dispose() {
        if (!encoded) ctx.dispose();
      },
    };
  }

  /** See WorldModelPlanning.imagineSequences. */
  imagineSequences(context: Observation[], instruction: string, sequences: Rt1Action[][], seed: number): tf.Tensor5D {
    const h = sequences[0]?.length ?? 0;
    if (!h || sequences.some((s) => s.length !== h)) throw new Error('imagineSequences: sequences must be non-empty and equally long');
    if (!context.length) throw new Error('imagineSequences: no context observation');
    this.setInstruction(instruction);
    const frames = context.slice(-this.contextFrames).map((o) => observationToTensor(o, this.cfg.imageHeight, this.cfg.imageWidth));
    while (frames.length < this.contextFrames) frames.unshift(frames[0]!.clone());
    const ctx = tf.stack(frames) as tf.Tensor4D;
    this.net.setContext(ctx);
    tf.dispose([ctx, ...frames]);
    const a = this.cfg.actionDim;
    const flat = new Float32Array(sequences.length * h * a);
    sequences.forEach((seq, i) => seq.forEach((act, t) => flat.set(rt1ToModelAction(this.stats, act), (i * h + t) * a)));
    return this.net.imagineFrames(flat, sequences.length, h, seed);
  }

  /** Forget the context, goal and instruction (new episode). */
  reset(): void {
    this.history.splice(0).forEach((h) => h.frame.dispose());
    this.goalRef = undefined;
    this.instruction = undefined;
  }

  dispose(): void {
    this.reset();
    this.net.dispose();
  }
}

/**
 * The world-model planner: the optimising plan step (src/planner/optimizing-planner.ts) with the
 * world model as its model and the preset's cost; for `plan`, `eval`, `probe` and `serve`.
 */
export class WorldModelPlanning {
  readonly model: WorldModelPlanModel;
  private readonly step: OptimizingPlanStep;
  /** Threads scoring each plan's candidates: this one and the pool's live workers. */
  get planWorkers(): number {
    return 1 + (this.pool?.size ?? 0);
  }

  constructor(
    readonly params: Params,
    readonly cfg: WorldModelConfig,
    readonly stats: ActionStats,
    readonly contextFrames: number,
    readonly preset: PlannerPreset,
    opts: WorldModelPlannerOptions = {},
    /** Scoring workers that take shares of every batch (see loadWorldModelPlanning); disposed with this planner. */
    private readonly pool?: ScorePool,
    /** The goal pictures' gripper states for presets with goalState "read"; disposed with this planner. */
    readonly goalReading?: GoalStateReading,
    /** The action policy for presets with proposer "policy" or a policyGrasp section; disposed with this planner. */
    private readonly policy?: PolicyProposals,
  ) {
    if (stats.names.length !== cfg.actionDim)
      throw new UserError(`action statistics have ${stats.names.length} dimensions but the model takes ${cfg.actionDim}`);
    checkPins(preset, stats);
    const seed = opts.seed ?? 0;
    const proposer = preset.proposer === 'policy' ? policy : undefined;
    this.model = new WorldModelPlanModel(params, cfg, stats, contextFrames, preset, seed, opts.imagine ?? false, proposer);
    const costOf = (settings: PlannerPreset) =>
      pool ? splitModelCost(this.model, pool, settings, cfg.actionDim) : modelCost(this.model, settings, cfg.actionDim);
    // Imagining is synchronous: without a macrotask break an abort (e.g. from the service's worker host) waits for the whole plan.
    const stepOpts = { seed, lockstep: opts.lockstep, yieldBetween: true };
    this.step = graspingPlanStep(preset, stats, costOf, policy, stepOpts) ?? presetPlanStep(preset, stats, costOf(preset), stepOpts);
  }

  /** The picture size the preset's action policy reads, if it has one. */
  get policyInput(): { imageHeight: number; imageWidth: number } | undefined {
    return this.policy?.cfg;
  }

  /** One plan from the latest observation and goal: within the preset's time budget, or (lockstep) its iteration cap. */
  plan(obs: Observation, goal: Goal, signal?: AbortSignal): Promise<Plan> {
    return this.step.plan(obs, this.goalReading ? this.goalReading.read(goal, obs) : goal, signal);
  }

  /**
   * Imagined frames [N, H, h, w, 3] of RT-1 action sequences (N sequences of H actions) from context
   * observations (oldest first), for probes and tools; caller disposes. The next plan() re-encodes its own context;
   * not to be called while a plan() is running (it swaps the model's context).
   */
  imagineSequences(context: Observation[], instruction: string, sequences: Rt1Action[][], seed = 0): tf.Tensor5D {
    return this.model.imagineSequences(context, instruction, sequences, seed);
  }

  /** How much two camera images differ at the model's resolution (goal sequencing; see differingFraction). */
  imageDistance(a: Observation, b: Observation): number {
    return tf.tidy(() =>
      differingFraction(
        observationToTensor(a, this.cfg.imageHeight, this.cfg.imageWidth),
        observationToTensor(b, this.cfg.imageHeight, this.cfg.imageWidth),
      ),
    );
  }

  /** Forget the context and warm start (new episode); a seed makes the episode reproducible on its own. */
  reset(seed?: number): void {
    this.step.reset(seed);
    this.model.reset();
    this.goalReading?.reset();
  }

  dispose(): void {
    this.reset();
    this.model.dispose();
    this.pool?.dispose();
    this.goalReading?.dispose();
    this.policy?.dispose();
  }

  planner(): Planner {
    return makePlanner((obs, goal, signal): Observable<Plan> => from(this.plan(obs, goal, signal)), {
      budgetMs: this.preset.budgetMs,
      graceMs: this.preset.graceMs,
    });
  }
}

/**
 * Loads a run (or weight file + statistics) and a preset; used by `plan`, `eval` and `serve`.
 * With `planWorkers` above 1, planWorkers - 1 scoring workers load the run too (in parallel with
 * this thread) and score shares of every candidate batch; without a compiled scoring worker
 * (running from sources without a build) planning stays on this thread and `log` says why.
 */
export async function loadWorldModelPlanning(
  presetNameOrPath: string,
  checkpoint: string,
  opts: WorldModelPlannerOptions = {},
): Promise<WorldModelPlanning> {
  await initBackend(opts.backend);
  const loaded = loadPlannerPreset(presetNameOrPath);
  const preset = opts.rollout ? { ...loaded, rollout: { ...loaded.rollout, ...opts.rollout } } : loaded;
  const pool = startScorePool(preset, checkpoint, opts);
  // Settled here so that a failure while this thread still loads is not an unhandled rejection.
  pool?.catch(() => {});
  let planning: WorldModelPlanning;
  try {
    const w = loadInferenceWeights(checkpoint);
    if (!w.manifest) throw new UserError(`${checkpoint}: planning needs a run directory (its run.json holds the action statistics)`);
    const reading = loadGoalStateReading(preset, checkpoint);
    let policy: PolicyProposals | undefined;
    try {
      policy = loadPolicyProposals(preset, checkpoint, w.manifest.actionStats);
    } catch (e) {
      reading?.dispose();
      throw e;
    }
    planning = new WorldModelPlanning(
      toTf(w.tensors),
      w.cfg,
      w.manifest.actionStats,
      w.manifest.contextFrames,
      preset,
      opts,
      await pool,
      reading,
      policy,
    );
  } catch (e) {
    void pool?.then(
      (p) => p.dispose(),
      () => {},
    );
    throw e;
  }
  if ((opts.planWorkers ?? 1) > 1) opts.log?.(`planning on ${planning.planWorkers} thread(s)`);
  return planning;
}

function startScorePool(preset: PlannerPreset, checkpoint: string, opts: WorldModelPlannerOptions): Promise<ScorePool> | undefined {
  const threads = opts.planWorkers ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`--plan-workers must be an integer >= 1, got ${threads}`);
  if (threads === 1 || preset.optimizer.kind === 'policy') return undefined;
  if (!scoreWorkerScript()) {
    opts.log?.('no compiled scoring worker (running from sources without `npm run build`): planning on one thread');
    return undefined;
  }
  return ScorePool.start({
    workers: threads - 1,
    data: {
      checkpoint,
      backend: opts.backend,
      flowSteps: preset.rollout.flowSteps,
      integrator: preset.rollout.integrator,
      actionGuidance: preset.rollout.actionGuidance,
      representation: preset.cost.representation > 0,
    },
    log: opts.log,
  });
}

export async function createWorldModelPlanner(
  presetNameOrPath: string,
  checkpointDir: string,
  opts: WorldModelPlannerOptions = {},
): Promise<Planner> {
  return (await loadWorldModelPlanning(presetNameOrPath, checkpointDir, opts)).planner();
}
