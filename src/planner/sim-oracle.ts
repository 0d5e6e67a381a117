/**
 * The planner with the simulator itself as its world model: every candidate action sequence is
 * played out on a snapshot of the true physics, rendered, and scored against the goal picture
 * with the preset's pixel costs. Same optimiser, preset, action scaling and goal pictures as the
 * world-model planner, but a perfect model: what the learned model is measured against (an
 * upper bound of the planner design, not a deployable policy — a robot has no such snapshot).
 */
import * as tf from '@tensorflow/tfjs';
import type { ActionStats } from '../data/action-stats.js';
import { modelActionToRt1 } from '../data/action-mapping.js';
import type { SimEnv } from '../sim/env.js';
import { Rng } from '../util/rng.js';
import { observationToTensor } from './frames.js';
import { distance, goalGripperPosition, gripperPosition, straightMove } from './gripper-position.js';
import { changeDistance, differingFraction, pyramidDistance, reachDistance } from './image-distance.js';
import { optimize, shiftPlan } from './optimizer.js';
import { checkPins, moveCap, pinnedDims } from './pinned-actions.js';
import type { PlannerPreset } from './presets.js';
import type { Goal, Observation, Plan } from './types.js';
import { stepWeights } from './wm-scorer.js';

export class SimOraclePlanning {
  private env?: SimEnv;
  private previous?: Float32Array;
  private rng: Rng;

  constructor(
    readonly preset: PlannerPreset,
    /** Resolution the costs are computed at (the world model's, so both planners see the same pixels). */
    readonly cfg: { imageHeight: number; imageWidth: number },
    readonly stats: ActionStats,
    seed = 0,
  ) {
    this.rng = new Rng(seed);
    checkPins(preset, stats);
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

  async plan(obs: Observation, goal: Goal): Promise<Plan> {
    const env = this.env;
    if (!env) throw new Error('SimOraclePlanning: attach() the episode environment first');
    const t0 = performance.now();
    const p = this.preset;
    const h = p.optimizer.horizon;
    const a = this.stats.names.length;
    const snap = env.snapshot();
    const goalFrame = this.frame(goal.images[goal.images.length - 1]!);
    const nowFrame = this.frame(obs);
    const w = stepWeights(h, p.cost.terminal);
    const goalPos = goalGripperPosition(goal);
    const start = gripperPosition(obs);
    const cost = async (cands: Float32Array, n: number): Promise<Float32Array> => {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        env.restore(snap);
        let c = 0;
        let m = 0;
        for (let t = 0; t < h; t++) {
          const seq = cands.subarray((i * h + t) * a, (i * h + t + 1) * a);
          const r = env.step(modelActionToRt1(this.stats, seq));
          c += w[t]! * tf.tidy(() => {
            const f = this.frame(r.observation);
            let d = 0;
            if (p.cost.pixel > 0) d += p.cost.pixel * tf.mean(tf.square(tf.sub(f, goalFrame))).dataSync()[0]!;
            if (p.cost.pyramid > 0) d += p.cost.pyramid * pyramidDistance(f.expandDims(0) as tf.Tensor4D, goalFrame).dataSync()[0]!;
            if (p.cost.change > 0) d += p.cost.change * changeDistance(f.expandDims(0) as tf.Tensor4D, nowFrame, goalFrame).dataSync()[0]!;
            if (p.cost.reach > 0) d += p.cost.reach * reachDistance(f.expandDims(0) as tf.Tensor4D, nowFrame, goalFrame).dataSync()[0]!;
            const at = gripperPosition(r.observation);
            if (p.cost.pose > 0 && goalPos && at) d += p.cost.pose * distance(at, goalPos);
            return d;
          });
          for (const v of seq) m += v * v;
        }
        out[i] = c + (p.cost.actionMagnitude * m) / (h * a);
      }
      env.restore(snap);
      return out;
    };
    try {
      const warm = this.previous ? shiftPlan(this.previous, p.executeSteps, h, a, p.optimizer.warmStartPad) : undefined;
      const result = await optimize({ ...p.optimizer, kind: p.optimizer.kind === 'policy' ? 'cem' : p.optimizer.kind, proposalFraction: 0, actionDim: a }, cost, { rng: this.rng, warmStart: warm, deadline: Infinity, pinned: pinnedDims(p.actions, this.stats, goal), constrain: moveCap(p.actions, this.stats, goal, obs), include: p.poseProposal && goalPos && start ? straightMove(this.stats, start, goalPos, h) : undefined });
      this.previous = result.best;
      const actions = Array.from({ length: h }, (_, t) => modelActionToRt1(this.stats, result.best.subarray(t * a, (t + 1) * a)));
      return { actions, cost: result.bestCost, iterations: result.iterations, candidatesEvaluated: result.candidatesEvaluated, latencyMs: performance.now() - t0, observationStamp: obs.stamp, safe: false };
    } finally {
      env.restore(snap);
      tf.dispose([goalFrame, nowFrame]);
    }
  }

  reset(seed?: number): void {
    if (seed !== undefined) this.rng = new Rng(seed);
    this.previous = undefined;
  }

  dispose(): void {
    this.env = undefined;
  }
}
