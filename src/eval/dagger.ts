/**
 * DAgger data: a planner policy (by default the model's policy alone, `wm-policy`) drives the
 * simulated robot, and at every step the scripted expert, in labelling mode, names the move it
 * would make from that state. The episode is recorded with the expert's moves as its actions, so a
 * policy trained on it learns to recover from the states its own mistakes lead to, which expert
 * demonstrations never show. With `beta` > 0 the expert's move is executed instead of the
 * policy's on that share of steps (DAgger's mixing), which keeps the episode nearer to success.
 *
 * A preset that plans towards goal pictures (every optimiser kind but `policy`, e.g. `wm`) drives
 * as in `eval`: towards the expert replay's storyboard of the same seed, handing the grasps to the
 * policy where its preset says so. Its episodes then hold the states the planner hands over, which
 * the policy alone seldom reaches; a layout whose replay fails is skipped, as `eval` excludes it.
 */
import { embedInstruction } from '../data/language-embedding.js';
import type { StepRecord } from '../data/rlds-writer.js';
import { episodeFrameSize, runPlannedEpisode, type EpisodePlanning } from '../planner/episode.js';
import { collect, finishEpisode, stepRecord, type CollectedEpisode, type CollectOptions, type CollectResult } from '../sim/collect.js';
import { SimEnv, type StepResult } from '../sim/env.js';
import { expertLabeller, type ScriptedExpert } from '../sim/expert.js';
import type { Rt1Action } from '../core/action.js';
import { taskByName } from '../sim/tasks.js';
import { UserError } from '../core/errors.js';
import { Rng } from '../util/rng.js';

export interface DaggerOptions extends Omit<CollectOptions, 'noise' | 'explore'> {
  /** What drives the robot (loaded once, reused for every episode). */
  planning: EpisodePlanning;
  /** Share of steps on which the expert's move is executed instead of the policy's (0: the policy alone). */
  beta: number;
}

/** Whether `planning` plans towards goal pictures (and so needs the storyboard) rather than acting from the picture alone. */
function plansTowardsGoals(planning: EpisodePlanning): boolean {
  return planning.preset.optimizer.kind !== 'policy';
}

/** A goal-driven preset's episodes are planned episodes, whose frames have one size. */
function checkFrameSize(planning: EpisodePlanning, o: Pick<DaggerOptions, 'imageHeight' | 'imageWidth'>): void {
  const frame = episodeFrameSize(planning.policyInput);
  if (plansTowardsGoals(planning) && (o.imageHeight !== frame.height || o.imageWidth !== frame.width))
    throw new UserError(
      `DAgger with the goal-driven preset '${planning.preset.name}' records planned episodes, whose frames are ${frame.height}x${frame.width}, not ${o.imageHeight}x${o.imageWidth}`,
    );
}

/** The expert's label at every executed step, and on a `beta` share of them its move instead of the planner's. */
class ExpertLabels {
  private readonly steps: StepRecord[] = [];
  private readonly instruction: string;
  private readonly language: Float32Array;
  private readonly expert: ScriptedExpert;
  private readonly mix: Rng;
  private last?: StepResult;

  constructor(
    private readonly task: string,
    seed: number,
    private readonly beta: number,
  ) {
    this.instruction = taskByName(task).instruction;
    this.expert = expertLabeller(task, seed);
    this.mix = new Rng(seed ^ 0xda66e5);
    this.language = embedInstruction(this.instruction);
  }

  start(env: SimEnv): void {
    this.expert.reset(env);
  }

  act(r: StepResult, planned: Rt1Action): Rt1Action {
    const label = this.expert.act(r);
    this.steps.push(stepRecord(r, label, this.language, this.instruction, this.steps.length === 0, false));
    return this.mix.next() < this.beta ? label : planned;
  }

  end(r: StepResult): void {
    this.last = r;
  }

  episode(): CollectedEpisode {
    return finishEpisode(this.steps, this.last!, this.task, this.language, this.instruction);
  }
}

/**
 * One episode driven by `planning`, every step labelled by the expert; undefined where a goal-driven
 * preset has no storyboard for the layout (the expert's replay failed).
 */
export async function daggerEpisode(
  planning: EpisodePlanning,
  task: string,
  seed: number,
  o: Pick<DaggerOptions, 'beta' | 'imageHeight' | 'imageWidth' | 'shadows'>,
): Promise<CollectedEpisode | undefined> {
  if (plansTowardsGoals(planning)) {
    checkFrameSize(planning, o);
    const labels = new ExpertLabels(task, seed, o.beta);
    // Raw renders, as in the goal-free branch below and in the DAgger rounds that docs/results.md reports.
    const result = await runPlannedEpisode(planning, task, seed, { shadows: o.shadows, cameraJpeg: 0, actor: labels });
    return result.excluded ? undefined : labels.episode();
  }
  const env = await SimEnv.create({ task, seed, imageHeight: o.imageHeight, imageWidth: o.imageWidth, shadows: o.shadows });
  try {
    planning.reset(seed);
    let r = env.reset(seed);
    planning.attach?.(env);
    const labels = new ExpertLabels(task, seed, o.beta);
    labels.start(env);
    while (!r.done) {
      // The policy reads the instruction, the picture and the robot state; the goal picture it is handed is the current one, which it ignores.
      const plan = await planning.plan(r.observation, { images: [r.observation], instruction: env.task.instruction });
      for (const a of plan.actions.slice(0, planning.preset.executeSteps)) {
        r = env.step(labels.act(r, a));
        if (r.done) break;
      }
    }
    labels.end(r);
    return labels.episode();
  } finally {
    env.close();
  }
}

/** Collects DAgger episodes into RLDS shards, as `sim collect` does (same layout, same interrupt handling). */
export function collectDagger(o: DaggerOptions): Promise<CollectResult> {
  checkFrameSize(o.planning, o);
  return collect({ ...o, noise: 0, explore: 0 }, (task, seed) => daggerEpisode(o.planning, task, seed, o));
}
