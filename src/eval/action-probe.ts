/**
 * Does the world model listen to the action? From states along expert runs, six displacements
 * (±x, ±y, ±z) are each imagined two control steps ahead and also played out in the simulator
 * from a snapshot of that state; the probe counts how often an imagined end frame is closest to
 * the true end frame of its own action (chance: 1 in 6). A model that predicts from the picture
 * alone ("what the expert would do here") scores chance however sharp its frames look, and a
 * planner that ranks actions by imagined futures cannot work with it.
 */
import * as tf from '@tensorflow/tfjs';
import { observationToTensor } from '../planner/frames.js';
import type { Observation } from '../core/types.js';
import { safeAction, type Rt1Action } from '../core/action.js';
import { SimEnv } from '../sim/env.js';
import { makeScriptedPolicy } from '../sim/expert.js';
import { UserError } from '../core/errors.js';
import type { WorldModelPlanning } from '../planner/world-model-planner.js';

/** What a probed model sees of a state. `env` sits at that state; only reference models (tests) may use it. */
export interface ProbeState {
  context: Observation[];
  instruction: string;
  env: SimEnv;
}

export interface ProbedModel {
  readonly contextFrames: number;
  readonly imageHeight: number;
  readonly imageWidth: number;
  /** End frames [N, h, w, 3] in [-1, 1] after each action, applied `repeat` times, from the state. */
  imagineEnd(state: ProbeState, actions: Rt1Action[], repeat: number): tf.Tensor4D;
}

export interface ProbeOptions {
  tasks: string[];
  seeds: number[];
  /** Expert steps taken before each probed state. */
  warmSteps: number[];
  /** Displacement per control step, metres. */
  displacement: number;
  /** Control steps each action is held (2 = the shipped presets' horizon). */
  repeat: number;
  /** Camera resolution the simulator renders at (the model resizes). */
  cameraHeight: number;
  cameraWidth: number;
  /** Render the states and their true end frames with shadows (a height cue; src/sim/render.ts). */
  shadows?: boolean;
}

/** The first layout seed probed by default; `model probe --seed S` probes layouts no one trained or tuned on. */
export const DEFAULT_PROBE_SEED = 100;

/** `count` consecutive layout seeds from `first`. */
export function consecutiveSeeds(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

export const DEFAULT_PROBE: ProbeOptions = {
  tasks: ['drawer-open', 'pick-can', 'move-near', 'drawer-place'],
  seeds: consecutiveSeeds(DEFAULT_PROBE_SEED, 3),
  warmSteps: [2, 6, 10],
  displacement: 0.05,
  repeat: 2,
  cameraHeight: 64,
  cameraWidth: 80,
};

export const PROBE_DIRECTIONS = ['+x', '-x', '+y', '-y', '+z', '-z'] as const;

export interface ProbeResult {
  /** The tasks and layout seeds probed. */
  tasks: string[];
  seeds: number[];
  states: number;
  trials: number;
  /** Hits, a tie among k indistinguishable outcomes counting 1/k. */
  correct: number;
  /** correct / trials; chance is 1 / 6. */
  accuracy: number;
  /** Per direction, in PROBE_DIRECTIONS order. */
  accuracyByDirection: number[];
  /**
   * confusion[i][j]: the share of direction i's states whose imagined end frame lay nearest direction
   * j's true end frame (ties split). Row i's diagonal is accuracyByDirection[i]; the rest says what
   * a missed direction was taken for (e.g. -x for -z, when the model cannot see depth).
   */
  confusion: number[][];
  /** Mean pixel MSE ([-1, 1] units) of each imagined end frame against its true end frame. */
  imaginedMse: number;
  /** The same for "nothing moves" (the current frame as the prediction). */
  noMotionMse: number;
  /**
   * Per direction: mean MSE between its true end frame and the nearest other direction's. An
   * imagined frame must be off by less than about half of it to be counted right, so a direction
   * whose separation is near the model's imaginedMse cannot be told apart at the model's resolution.
   */
  separationByDirection: number[];
}

function directionAction(i: number, m: number): Rt1Action {
  const v: [number, number, number] = [0, 0, 0];
  v[i >> 1] = i % 2 === 0 ? m : -m;
  return { ...safeAction(), worldVector: v };
}

/**
 * Credit per row of a square distance matrix (imagined i x true j): 1 when the row's own column is
 * the unique nearest, 1/k when it ties with k-1 others (actions whose true outcomes are identical,
 * e.g. a gripper blocked by the table, cannot be told apart), 0 otherwise.
 */
export function diagonalCredit(dist: number[][]): number[] {
  return nearestShare(dist).map((row, i) => row[i]!);
}

/** Per row of a distance matrix: 1 on its nearest column, or 1/k on each of k tied nearest columns. */
export function nearestShare(dist: number[][]): number[][] {
  return dist.map((row) => {
    const min = Math.min(...row);
    const tied = row.filter((v) => v <= min + 1e-12).length;
    return row.map((v) => (v <= min + 1e-12 ? 1 / tied : 0));
  });
}

export async function probeActions(
  model: ProbedModel,
  o: ProbeOptions = DEFAULT_PROBE,
  onState?: (done: number, total: number) => void,
): Promise<ProbeResult> {
  const actions = PROBE_DIRECTIONS.map((_, i) => directionAction(i, o.displacement));
  const confusion = actions.map(() => new Array<number>(actions.length).fill(0));
  const separation = new Array<number>(actions.length).fill(0);
  let states = 0;
  let visited = 0;
  let imaginedSq = 0;
  let noMotionSq = 0;
  const total = o.tasks.length * o.seeds.length * o.warmSteps.length;
  for (const task of o.tasks) {
    for (const seed of o.seeds) {
      for (const warm of o.warmSteps) {
        const env = await SimEnv.create({ task, seed, imageHeight: o.cameraHeight, imageWidth: o.cameraWidth, shadows: o.shadows });
        try {
          let r = env.reset(seed);
          const expert = makeScriptedPolicy('expert', task, seed);
          expert.reset(env);
          const seen = [r.observation];
          for (let i = 0; i < warm && !r.done; i++) {
            r = env.step(expert.act(r));
            seen.push(r.observation);
          }
          // An expert that finished early would repeat an earlier state: count each state once.
          if (r.done) continue;
          const context = seen.slice(-model.contextFrames);
          while (context.length < model.contextFrames) context.unshift(context[0]!);
          const snap = env.snapshot();
          const imagined = model.imagineEnd({ context, instruction: env.task.instruction, env }, actions, o.repeat);
          env.restore(snap);
          const truth = tf.stack(
            actions.map((a) => {
              env.restore(snap);
              let obs = r.observation;
              for (let k = 0; k < o.repeat; k++) obs = env.step(a).observation;
              return observationToTensor(obs, model.imageHeight, model.imageWidth);
            }),
          ) as tf.Tensor4D;
          env.restore(snap);
          const current = observationToTensor(r.observation, model.imageHeight, model.imageWidth);
          const dist = tf.tidy(
            () => tf.mean(tf.square(tf.sub(imagined.expandDims(1), truth.expandDims(0))), [2, 3, 4]).arraySync() as number[][],
          );
          nearestShare(dist).forEach((share, i) => {
            share.forEach((v, j) => (confusion[i]![j]! += v));
            imaginedSq += dist[i]![i]!;
          });
          const truthDist = tf.tidy(
            () => tf.mean(tf.square(tf.sub(truth.expandDims(1), truth.expandDims(0))), [2, 3, 4]).arraySync() as number[][],
          );
          truthDist.forEach((row, i) => (separation[i]! += Math.min(...row.filter((_, j) => j !== i))));
          noMotionSq += tf.tidy(() => tf.sum(tf.mean(tf.square(tf.sub(truth, current.expandDims(0))), [1, 2, 3])).dataSync()[0]!);
          tf.dispose([imagined, truth, current]);
          states++;
        } finally {
          env.close();
          onState?.(++visited, total);
        }
      }
    }
  }
  if (states === 0)
    throw new UserError(
      `model probe: the expert finished every task before the first warm-up step (${o.warmSteps.join(', ')}); nothing to probe`,
    );
  const trials = states * actions.length;
  // A direction's hits are its own column of the confusion counts.
  const hits = confusion.map((row, i) => row[i]!);
  const correct = hits.reduce((a, b) => a + b, 0);
  return {
    tasks: [...o.tasks],
    seeds: [...o.seeds],
    states,
    trials,
    correct,
    accuracy: correct / trials,
    accuracyByDirection: hits.map((h) => h / states),
    confusion: confusion.map((row) => row.map((v) => v / states)),
    imaginedMse: imaginedSq / trials,
    noMotionMse: noMotionSq / trials,
    separationByDirection: separation.map((s) => s / states),
  };
}

/** The world-model planner's model as a probed model (rollout settings from its preset). */
export function worldModelProbed(planning: WorldModelPlanning, seed = 0): ProbedModel {
  return {
    contextFrames: planning.contextFrames,
    imageHeight: planning.cfg.imageHeight,
    imageWidth: planning.cfg.imageWidth,
    imagineEnd(state, actions, repeat) {
      const frames = planning.imagineSequences(
        state.context,
        state.instruction,
        actions.map((a) => Array.from({ length: repeat }, () => a)),
        seed,
      );
      const end = tf.tidy(() => frames.slice([0, repeat - 1], [-1, 1]).squeeze([1]) as tf.Tensor4D);
      frames.dispose();
      return end;
    },
  };
}
