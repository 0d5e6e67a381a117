/**
 * Goal images for planning: the planner is given pictures, not instructions. For a task and seed
 * we replay the scripted expert and keep the frame at which each stage was first completed
 * (`stage` goals) or at which each phase of the expert's script ended (`phase` goals: a storyboard
 * of the demonstration, "above the can", "around the can", "can lifted", ...).
 */
import type { Observation } from '../core/types.js';
import { gripperCommand } from '../core/action.js';
import { SimEnv, type CameraSettings, type SimSnapshot, type StepResult } from './env.js';
import { DEFAULT_WAYPOINT_TOLERANCE, makeScriptedPolicy, ScriptedExpert } from './expert.js';
import { taskByName } from './tasks.js';

/**
 * `stage`: one picture per task stage (the stage completed); `phase`: the end of every phase of
 * the expert's script; `dense`: every DENSE_EVERY-th frame of the expert's demonstration (and
 * every stage completion), so each picture is a move or two from the previous one.
 */
export type GoalGranularity = 'stage' | 'phase' | 'dense';
export const GOAL_GRANULARITIES: readonly GoalGranularity[] = ['stage', 'phase', 'dense'];
export const DENSE_EVERY = 2;

export interface Subgoal {
  observation: Observation;
  /** The task stage this picture works towards (its last subgoal shows the stage completed). */
  stage: number;
  /** Control steps the expert took from the previous subgoal to this one. */
  expertSteps: number;
  name: string;
  /** The expert's gripper command in force in this picture (absent when not known). */
  gripper?: 'open' | 'closed';
  /** The expert phase this picture ends (phase goals; a stage's completion picture sits half-way into the phase that completed it). */
  phase?: number;
  /** How near (m) the expert had to bring the gripper to its waypoint to end that phase (phase goals): how precise this picture is. */
  tolerance?: number;
}

export async function goalObservations(task: string, seed: number, height: number, width: number): Promise<Observation[]> {
  return (await subgoals(task, seed, height, width, 'stage')).map((g) => g.observation);
}

export async function subgoals(
  task: string,
  seed: number,
  height: number,
  width: number,
  granularity: GoalGranularity,
  camera: CameraSettings = {},
): Promise<Subgoal[]> {
  const env = await SimEnv.create({ task, seed, imageHeight: height, imageWidth: width, ...camera });
  try {
    return recordStoryboard(env, env.reset(seed), seed, 0, granularity);
  } finally {
    env.close();
  }
}

/**
 * The storyboard of what is still to do, demonstrated by the expert from a snapshot of an episode
 * (restaging): after the robot completes a stage its own way (a drawer pulled 12 cm, not the
 * expert's 19), the later pictures show the scene as it now is. The expert resumes its script at
 * `fromPhase`, the phase in which it completed that stage itself, so it also finishes that
 * phase's moves (release the knob, back off) before the next stage.
 */
export async function subgoalsFrom(
  snapshot: SimSnapshot,
  fromPhase: number,
  task: string,
  seed: number,
  height: number,
  width: number,
  granularity: GoalGranularity,
  camera: CameraSettings = {},
): Promise<Subgoal[]> {
  // The expert gets a full time limit of its own from the snapshot's step on.
  const env = await SimEnv.create({
    task,
    seed,
    imageHeight: height,
    imageWidth: width,
    ...camera,
    maxSteps: snapshot.stepCount + taskByName(task).timeLimitSteps,
  });
  try {
    env.restore(snapshot);
    return recordStoryboard(env, env.result(), seed, fromPhase, granularity);
  } finally {
    env.close();
  }
}

/** The scripted expert's replay, which makes the goal pictures, did not finish the task: this layout has no storyboard. */
export class ExpertReplayFailed extends Error {
  override name = 'ExpertReplayFailed';
}

function recordStoryboard(env: SimEnv, first: StepResult, seed: number, fromPhase: number, granularity: GoalGranularity): Subgoal[] {
  const task = env.task.name;
  const policy = makeScriptedPolicy('expert', task, seed) as ScriptedExpert;
  let r = first;
  policy.reset(env, fromPhase);
  const stageGoals: Subgoal[] = [];
  const denseGoals: Subgoal[] = [];
  let sinceDense = 0;
  let phaseGoals: (Subgoal & { phase: number })[] = [];
  let since = 0;
  let sinceStage = 0;
  // Episodes start with the gripper open; a restaged storyboard starts with the gripper as commanded now.
  let gripper: 'open' | 'closed' = env.gripperClosedCommanded ? 'closed' : 'open';
  while (!r.done) {
    const phase = policy.phaseIndex;
    const before = r.stagesDone;
    const action = policy.act(r);
    // The expert moves on from a phase when the observation it just saw shows that phase done.
    if (policy.phaseIndex > phase) {
      const ended = policy.script.phases[phase]!;
      phaseGoals.push({
        observation: r.observation,
        stage: r.stagesDone,
        expertSteps: since,
        name: ended.name,
        gripper,
        phase,
        tolerance: ended.tolerance ?? DEFAULT_WAYPOINT_TOLERANCE,
      });
      since = 0;
    } else if (policy.phaseIndex < phase) {
      // A retry: the storyboard keeps only the attempt that worked.
      phaseGoals = phaseGoals.filter((g) => g.phase < policy.phaseIndex);
    }
    r = env.step(action);
    const grip = gripperCommand(action);
    if (grip !== 'keep') gripper = grip === 'close' ? 'closed' : 'open';
    since++;
    sinceStage++;
    sinceDense++;
    if (sinceDense >= DENSE_EVERY || r.stagesDone > before) {
      denseGoals.push({
        observation: r.observation,
        stage: before,
        expertSteps: sinceDense,
        name: `expert step ${r.step}${r.stagesDone > before ? ` (${env.task.stages[before]} done)` : ''}`,
        gripper,
      });
      sinceDense = 0;
    }
    if (r.stagesDone > before) {
      stageGoals.push({ observation: r.observation, stage: before, expertSteps: sinceStage, name: env.task.stages[before]!, gripper });
      sinceStage = 0;
      // The stage's completion picture ends its part of the storyboard.
      phaseGoals.push({
        observation: r.observation,
        stage: before,
        expertSteps: since,
        name: `${env.task.stages[before]} (done)`,
        gripper,
        phase: policy.phaseIndex - 0.5,
      });
      since = 0;
    }
  }
  if (!r.success)
    throw new ExpertReplayFailed(
      `expert did not complete ${task} on seed ${seed} (stage ${r.stagesDone}/${r.stageCount}${fromPhase ? `, starting at phase ${fromPhase}` : ''}); no goal images`,
    );
  if (granularity === 'stage') return stageGoals;
  if (granularity === 'dense') return denseGoals.filter((g) => g.stage < r.stageCount);
  // Phases after the last stage completes (release, retreat) are not needed to succeed.
  return phaseGoals.filter((g) => g.stage < r.stageCount);
}
