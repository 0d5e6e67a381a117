/**
 * One closed-loop simulated episode driven by the world-model planner: observe, plan towards the
 * current goal picture, execute the first actions of the plan, repeat. Goal pictures come from an
 * expert replay of the same seed: one per stage (`stage`), or the storyboard of the expert's
 * phases (`phase`), handed over one at a time by a GoalSequence (src/planner/goal-sequence.ts).
 * Records a GIF: real camera | imagined future of the chosen plan | goal, with a per-step line.
 */
import { Canvas } from '../image/canvas.js';
import { drawText } from '../image/font.js';
import { COLLECT_JPEG_QUALITY } from '../image/jpeg.js';
import type { RgbImage } from '../image/decode.js';
import { HEAD_CAMERA, rayError } from '../sim/camera.js';
import { SimEnv, type CameraSettings, type StepResult } from '../sim/env.js';
import { shiftAlongRay } from '../sim/goal-noise.js';
import { ExpertReplayFailed, subgoals, subgoalsFrom, type GoalGranularity, type Subgoal } from '../sim/goals.js';
import { taskByName } from '../sim/tasks.js';
import { DEFAULT_GOAL_SEQUENCE, GoalSequence } from './goal-sequence.js';
import { recordGoalReads } from './goal-reads.js';
import type { GoalStateReading } from './goal-state-reading.js';
import { distance, fingerOpening, gripperPosition } from './gripper-position.js';
import type { PlannerPreset } from './presets.js';
import type { Goal, Observation, Plan } from '../core/types.js';
import type { Rt1Action } from '../core/action.js';

/** What an episode needs of a planner: the world-model planner, or the simulator oracle (src/planner/sim-oracle.ts). */
export interface EpisodePlanning {
  readonly preset: PlannerPreset;
  readonly cfg: { imageHeight: number; imageWidth: number };
  plan(obs: Observation, goal: Goal): Promise<Plan>;
  reset(seed?: number): void;
  imageDistance(a: Observation, b: Observation): number;
  /** Planners that play candidates out on the episode's own simulator get it here. */
  attach?(env: SimEnv): void;
  /** Presets with goalState "read": the goal pictures' gripper states as the model's state reader sees them (the handover uses them too). */
  readonly goalReading?: GoalStateReading;
  /** Presets with an action policy: the picture size it reads (the episode's camera renders at least that). */
  readonly policyInput?: { imageHeight: number; imageWidth: number };
  dispose(): void;
}

/** What an episode achieved; the evaluation adds the policy name to it. */
export interface EpisodeStats {
  task: string;
  seed: number;
  success: boolean;
  stagesDone: number;
  stageCount: number;
  steps: number;
  /** Per-step decision latency (planning time for the world model; act() time for scripted policies). */
  latenciesMs: number[];
  safeActions: number;
  /**
   * Why the episode was not run: the expert replay that makes its goal pictures failed on this
   * layout. Such an episode counts in no success rate; the report lists it.
   */
  excluded?: string;
}

export interface EpisodeResult extends EpisodeStats {
  frames: RgbImage[];
}

const VIEW = { h: 64, w: 80, scale: 2 };

/** The larger (in pixels) of the camera's VIEW and a network's input size, if any. */
function atLeastView(input?: { imageHeight: number; imageWidth: number }): { h: number; w: number } {
  const larger = input && input.imageHeight * input.imageWidth > VIEW.h * VIEW.w;
  return larger ? { h: input.imageHeight, w: input.imageWidth } : { h: VIEW.h, w: VIEW.w };
}

/**
 * The camera frames of a planned episode: what its planner sees and DAgger records. The camera's
 * VIEW, or the action policy's input (`policy`, its config; none for presets without one) where it
 * reads more pixels, so that a policy trained on larger pictures sees them in the closed loop too
 * instead of an upscaled small frame. The world model resizes them to its own size.
 */
export function episodeFrameSize(policy?: { imageHeight: number; imageWidth: number }): { height: number; width: number } {
  const { h, w } = atLeastView(policy);
  return { height: h, width: w };
}

/**
 * The size the goal pictures are taken at: the camera's (VIEW), or that of the state reader
 * (`reader`, its config; none for presets that read no goal states) where it reads more pixels.
 * A goal picture is a photograph taken once, so it can have more pixels than the closed loop's
 * small frames; a reader trained at 128x160 sees the gripper's size and the object's footing on
 * the table, which place it along the camera's ray, in four times the pixels. Everything else
 * resizes goal pictures to its own size.
 */
export function goalPictureSize(reader?: { imageHeight: number; imageWidth: number }): { h: number; w: number } {
  return atLeastView(reader);
}

function panel(real: Observation, imagined: Uint8Array | undefined, goal: Observation, imgH: number, imgW: number, line: string): RgbImage {
  const s = VIEW.scale;
  const c = new Canvas(3 * VIEW.w * s + 4 * 4, VIEW.h * s + 8 + 16, 20);
  const put = (data: Uint8Array | undefined, h: number, w: number, i: number) => {
    if (data) c.draw({ data, width: w, height: h }, 4 + i * (VIEW.w * s + 4), 4, Math.max(1, Math.round((VIEW.w * s) / w)));
  };
  put(real.image, real.height, real.width, 0);
  put(imagined, imgH, imgW, 1);
  put(goal.image, goal.height, goal.width, 2);
  drawText(c, line, 4, VIEW.h * s + 8, 2);
  return c;
}

/** How a simulated episode shows the planner its goals (the same for every episode of an evaluation). */
export interface EpisodeSetup {
  /** Goal pictures per stage, per expert phase (default) or dense. */
  goals?: GoalGranularity;
  /** Render the episode and its goal pictures with shadows. */
  shadows?: boolean;
  /**
   * JPEG quality (1-100) through which the camera delivers the episode's frames and goal pictures;
   * 0: raw renders. Undefined: COLLECT_JPEG_QUALITY, the pictures `sim collect` stored for the
   * shipped models and their state reader, and what a compressed camera stream delivers.
   */
  cameraJpeg?: number;
  /** After each completed stage, redo the later pictures from the scene as it now is (src/sim/goals.ts, subgoalsFrom). */
  restage?: boolean;
  /**
   * Standard deviation (m) by which the goal pictures' recorded gripper positions move along the
   * camera ray (src/sim/goal-noise.ts): a diagnostic for presets that read recorded positions; 0 for none.
   */
  goalNoise?: number;
}

/** The JPEG quality an episode setup's camera delivers through (0: raw renders); the collection quality unless set. */
export const cameraJpegOf = (setup: EpisodeSetup): number => setup.cameraJpeg ?? COLLECT_JPEG_QUALITY;

/** The simulated camera of an episode setup. */
export const cameraSettings = (setup: EpisodeSetup): CameraSettings => ({
  shadows: setup.shadows,
  jpegQuality: cameraJpegOf(setup) || undefined,
});

/** Decides, step by step, what an episode executes of its planner's actions (DAgger's labelling: src/eval/dagger.ts). */
export interface EpisodeActor {
  /** The episode's simulator, reset to its seed, before the first step. */
  start(env: SimEnv): void;
  /** The action executed at `r`, where the planner chose `planned`. */
  act(r: StepResult, planned: Rt1Action): Rt1Action;
  /** The episode ended at `r`. */
  end(r: StepResult): void;
}

export interface PlannedEpisodeOptions extends EpisodeSetup {
  recordGif?: boolean;
  /** Executes something other than the planner's actions where it says so (absent: the planner's). */
  actor?: EpisodeActor;
  log?: (l: string) => void;
  /** When given, collects every property the planner reads of its goals (src/planner/goal-reads.ts). */
  goalReads?: Set<string>;
}

/**
 * The gripper's closest approach to where it was in the current goal picture (the expert's pose;
 * privileged simulator state, for the log only): tells a planner that never gets there from one
 * that gets there at the wrong depth along the camera ray.
 */
class ClosestApproach {
  private best?: ReturnType<typeof rayError>;
  /** Finger opening minus the picture's, at the last step (a grasp that missed leaves it far off). */
  private fingers?: number;
  /** How far the state reader placed the picture's gripper from where it was (goalState "read" presets). */
  private misread?: number;

  /** `read`: the picture as the state reader sees it, when the planner aims at that. */
  update(obs: Observation, goal: Observation, read?: Observation): void {
    const p = gripperPosition(obs);
    const q = gripperPosition(goal);
    if (!p || !q) return;
    const r = gripperPosition(read);
    this.misread = r && distance(r, q);
    const e = rayError(HEAD_CAMERA, p, q);
    if (!this.best || e.distance < this.best.distance) this.best = e;
    const f = fingerOpening(obs);
    const g = fingerOpening(goal);
    this.fingers = f !== undefined && g !== undefined ? f - g : undefined;
  }

  /** The log text for the goal just left, and a fresh start for the next one. */
  take(): string {
    const b = this.best;
    const f = this.fingers;
    const m = this.misread;
    this.best = this.fingers = this.misread = undefined;
    const cm = (x: number) => (100 * x).toFixed(1);
    const fingers = f === undefined ? '' : `, fingers ${Math.round(1000 * f) + 0} mm from its opening`;
    const misread = m === undefined ? '' : `; the state reader put it ${cm(m)} cm from there`;
    return b
      ? `; closest ${cm(b.distance)} cm to the goal's gripper position (${cm(b.along)} along the camera ray, ${cm(b.across)} across)${fingers}${misread}`
      : '';
  }
}

/** Restaged pictures after stage k draw their goal noise from seed + k x this, apart from the first storyboard's. */
const RESTAGE_NOISE_STRIDE = 1_000_003;

/**
 * After a stage done: the expert demonstrates what is left from the scene as it is now, resuming
 * in the phase in which it completed that stage itself; if it cannot, the old pictures stay.
 */
async function restage(
  size: { h: number; w: number },
  sequence: GoalSequence,
  env: SimEnv,
  task: string,
  seed: number,
  stage: number,
  opts: PlannedEpisodeOptions,
): Promise<void> {
  const done = sequence.subgoals.filter((g) => g.stage === stage - 1 && g.phase !== undefined).at(-1);
  if (!done) return; // stage or dense pictures: no phase to resume from
  try {
    const redone = await subgoalsFrom(
      env.snapshot(),
      Math.ceil(done.phase!),
      task,
      seed,
      size.h,
      size.w,
      opts.goals ?? 'phase',
      cameraSettings(opts),
    );
    const later = shiftAlongRay(
      redone.filter((g) => g.stage >= stage),
      opts.goalNoise ?? 0,
      seed + stage * RESTAGE_NOISE_STRIDE,
    );
    sequence.restage(stage, later);
    opts.log?.(`  restaged: ${later.length} pictures from the scene as it is now`);
  } catch (e) {
    opts.log?.(`  restaging failed, the first storyboard stays: ${(e as Error).message}`);
  }
}

export async function runPlannedEpisode(
  planning: EpisodePlanning,
  task: string,
  seed: number,
  opts: PlannedEpisodeOptions = {},
): Promise<EpisodeResult> {
  let board: Subgoal[];
  const goalSize = goalPictureSize(planning.goalReading?.reader.cfg);
  try {
    board = shiftAlongRay(
      await subgoals(task, seed, goalSize.h, goalSize.w, opts.goals ?? 'phase', cameraSettings(opts)),
      opts.goalNoise ?? 0,
      seed,
    );
  } catch (e) {
    if (!(e instanceof ExpertReplayFailed)) throw e;
    const stageCount = taskByName(task).stages.length;
    return {
      task,
      seed,
      success: false,
      stagesDone: 0,
      stageCount,
      steps: 0,
      latenciesMs: [],
      safeActions: 0,
      frames: [],
      excluded: e.message,
    };
  }
  const frame = episodeFrameSize(planning.policyInput);
  const env = await SimEnv.create({ task, seed, imageHeight: frame.height, imageWidth: frame.width, ...cameraSettings(opts) });
  planning.reset(seed);
  let r = env.reset(seed);
  planning.attach?.(env);
  opts.actor?.start(env);
  const latencies: number[] = [];
  const frames: RgbImage[] = [];
  let safe = 0;
  const sequence = new GoalSequence(board, (a, b) => planning.imageDistance(a, b), r.observation, {
    ...DEFAULT_GOAL_SEQUENCE,
    pose: planning.preset.handover,
    readPicture: planning.goalReading && ((o) => planning.goalReading!.readPicture(o)),
  });
  const goalOf = (): Goal => ({
    images: [sequence.current.observation],
    instruction: env.task.instruction,
    gripper: sequence.current.gripper,
  });
  let goal: Goal = goalOf();
  // The goal as the planner gets it: recorded (goalReads) once per goal, so the planner still sees one goal object until the next.
  let handed: { goal: Goal; as: Goal } | undefined;
  const forPlanner = (g: Goal): Goal => {
    if (!opts.goalReads) return g;
    if (handed?.goal !== g) handed = { goal: g, as: recordGoalReads(g, opts.goalReads) };
    return handed.as;
  };
  let stagesDone = 0;
  const approach = new ClosestApproach();
  try {
    while (!r.done) {
      const plan = await planning.plan(r.observation, forPlanner(goal));
      latencies.push(plan.latencyMs);
      if (plan.safe) safe++;
      const line = `step ${r.step} ${plan.latencyMs.toFixed(0)} ms stage ${r.stagesDone}/${r.stageCount} goal ${sequence.index + 1}/${sequence.subgoals.length}`;
      if (opts.recordGif)
        frames.push(panel(r.observation, plan.imagined?.[0], goal.images[0]!, planning.cfg.imageHeight, planning.cfg.imageWidth, line));
      for (const a of plan.actions.slice(0, planning.preset.executeSteps)) {
        r = env.stepAction(opts.actor ? opts.actor.act(r, a) : a);
        if (r.done) break;
      }
      if (r.stagesDone > stagesDone) {
        stagesDone = r.stagesDone;
        opts.log?.(`  stage ${stagesDone}/${r.stageCount} reached at step ${r.step}: ${env.task.stages[stagesDone - 1]}`);
        if (opts.restage && !r.done) await restage(goalSize, sequence, env, task, seed, stagesDone, opts);
      }
      approach.update(r.observation, goal.images[0]!, planning.goalReading?.readPicture(goal.images[0]!));
      const event = r.done ? undefined : sequence.update(r.observation, r.stagesDone);
      if (event) {
        goal = goalOf();
        opts.log?.(
          `  step ${r.step}: goal ${event.from + 1} ${event.kind}${approach.take()}, now ${event.to + 1}/${sequence.subgoals.length} (${sequence.current.name})`,
        );
      }
    }
    opts.actor?.end(r);
    if (opts.recordGif)
      frames.push(
        panel(
          r.observation,
          undefined,
          sequence.subgoals[sequence.subgoals.length - 1]!.observation,
          planning.cfg.imageHeight,
          planning.cfg.imageWidth,
          `${r.success ? 'success' : 'failure'} stage ${r.stagesDone}/${r.stageCount}`,
        ),
      );
    return {
      task,
      seed,
      success: r.success,
      stagesDone: r.stagesDone,
      stageCount: r.stageCount,
      steps: r.step,
      latenciesMs: latencies,
      safeActions: safe,
      frames,
    };
  } finally {
    env.close();
  }
}
