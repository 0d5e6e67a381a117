/**
 * The planner with the simulator itself as its world model: every candidate action sequence is
 * played out on a snapshot of the true physics, rendered, and scored against the goal picture
 * with the preset's pixel costs. Same optimiser, preset, action scaling and goal pictures as the
 * world-model planner, but a perfect model: what the learned model is measured against (an
 * upper bound of the planner design, not a deployable policy — a robot has no such snapshot).
 */
import type { GoalStateReading } from './goal-state-reading.js';
import type { PolicyProposals } from './policy-proposals.js';
import type { Rng } from '../util/rng.js';
import * as tf from '@tensorflow/tfjs';
import type { ActionStats } from '../core/action-stats.js';
import { modelActionToRt1 } from '../data/action-mapping.js';
import type { SimEnv } from '../sim/env.js';
import { modelCost } from './cost.js';
import { observationToTensor } from './frames.js';
import { gripperPosition } from './gripper-position.js';
import { differingFraction } from './image-distance.js';
import { presetPlanStep, type OptimizingPlanStep } from './optimizing-planner.js';
import { graspingPlanStep } from './policy-grasp.js';
import { checkPins } from './pinned-actions.js';
import type { PlanModel, Rollout } from './plan-model.js';
import type { PlannerPreset } from './presets.js';
import type { Goal, Observation, Plan } from '../core/types.js';

export class SimOraclePlanning implements PlanModel {
  private env?: SimEnv;
  private readonly step: OptimizingPlanStep;

  constructor(
    readonly preset: PlannerPreset,
    /** Resolution the costs are computed at (the world model's, so both planners see the same pixels). */
    readonly cfg: { imageHeight: number; imageWidth: number },
    readonly stats: ActionStats,
    seed = 0,
    /** The goal pictures' gripper states for presets with goalState "read" (the model's reader: only the model is the simulator). */
    readonly goalReading?: GoalStateReading,
    /** The model's action policy for presets with proposer "policy" or policyGrasp: it acts here as in the world-model planner. */
    readonly policy?: PolicyProposals,
  ) {
    checkPins(preset, stats);
    // The simulator has no policy of its own: without the model's action policy, a `policy` preset searches with CEM, and nothing is proposed.
    const optimizer = (p: PlannerPreset): PlannerPreset['optimizer'] =>
      policy ? p.optimizer : { ...p.optimizer, kind: p.optimizer.kind === 'policy' ? 'cem' : p.optimizer.kind, proposalFraction: 0 };
    const costOf = (settings: PlannerPreset) => modelCost(this, settings, stats.names.length);
    const stepOpts = { seed, lockstep: true, optimizer };
    this.step = graspingPlanStep(preset, stats, costOf, policy, stepOpts) ?? presetPlanStep(preset, stats, costOf(preset), stepOpts);
  }

  /** The picture size the model's action policy reads, if the preset uses it. */
  get policyInput(): { imageHeight: number; imageWidth: number } | undefined {
    return this.policy?.cfg;
  }

  get imageHeight(): number {
    return this.cfg.imageHeight;
  }

  get imageWidth(): number {
    return this.cfg.imageWidth;
  }

  /** The episode's environment: plans are played out on snapshots of it. */
  attach(env: SimEnv): void {
    this.env = env;
  }

  private frame(obs: Observation): tf.Tensor3D {
    return observationToTensor(obs, this.cfg.imageHeight, this.cfg.imageWidth);
  }

  imageDistance(a: Observation, b: Observation): number {
    return tf.tidy(() => differingFraction(this.frame(a), this.frame(b)));
  }

  /** Every candidate played out from a snapshot of the episode's state: rendered frames and the gripper's true positions. */
  rollout(obs: Observation, goal: Goal, horizon: number, rng: Rng): Rollout {
    const env = this.env;
    if (!env) throw new Error('SimOraclePlanning: attach() the episode environment first');
    const snap = env.snapshot();
    const a = this.stats.names.length;
    return {
      predict: (cands, n) => {
        const frames: tf.Tensor3D[] = [];
        let positions: Float64Array | undefined = new Float64Array(n * horizon * 3);
        for (let i = 0; i < n; i++) {
          env.restore(snap);
          for (let t = 0; t < horizon; t++) {
            const r = env.step(modelActionToRt1(this.stats, cands.subarray((i * horizon + t) * a, (i * horizon + t + 1) * a)));
            frames.push(this.frame(r.observation));
            const at = gripperPosition(r.observation);
            if (at) positions?.set(at, (i * horizon + t) * 3);
            else positions = undefined;
          }
        }
        env.restore(snap);
        const [h, w] = [this.cfg.imageHeight, this.cfg.imageWidth];
        const p = positions;
        return { frames: tf.stack(frames).reshape([n, horizon, h, w, 3]) as tf.Tensor5D, positions: p && (() => p) };
      },
      proposals: this.preset.proposer === 'policy' ? this.policy?.source(obs, goal.instruction, horizon, rng.int(1 << 30)) : undefined,
      dispose: () => env.restore(snap),
    };
  }

  plan(obs: Observation, goal: Goal): Promise<Plan> {
    return this.step.plan(obs, this.goalReading ? this.goalReading.read(goal, obs) : goal);
  }

  reset(seed?: number): void {
    this.step.reset(seed);
    this.goalReading?.reset();
  }

  dispose(): void {
    this.env = undefined;
    this.goalReading?.dispose();
    this.policy?.dispose();
  }
}
