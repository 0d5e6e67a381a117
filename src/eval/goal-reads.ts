/**
 * How well a state reader reads goal pictures: on the storyboards the evaluation hands the
 * planner, where the reader puts the gripper against where the simulator recorded it, and how
 * often the reader's open/closed differs from the expert's gripper command in that picture.
 * `wm` aims its searches at these readings (src/planner/goal-state-reading.ts), so their errors
 * bound where it can go; `selfflow-wm model read-goals` prints them for any seeds.
 */
import type { Observation } from '../core/types.js';
import type { ReadState } from '../model/state-reader.js';
import { CLOSED_ABOVE } from '../planner/goal-state-reading.js';
import { HEAD_CAMERA, rayError } from '../sim/camera.js';
import { ExpertReplayFailed, subgoals, type GoalGranularity } from '../sim/goals.js';
import type { CameraSettings } from '../sim/env.js';

/** One goal picture's reading against its recorded state. */
export interface GoalPictureRead {
  task: string;
  seed: number;
  /** The picture's subgoal name (the expert phase it ends). */
  name: string;
  /** Distance (m) from the recorded gripper position to the read one. */
  error: number;
  /**
   * The error's parts along the head camera's ray through the recorded position (signed:
   * positive = read further from the camera), which the picture shows only by the gripper's size
   * and what it stands in front of, and across it, which moves the gripper in the picture.
   */
  along: number;
  across: number;
  /** The expert's gripper command in this picture, where known. */
  commanded?: 'open' | 'closed';
  readClosed: boolean;
}

export interface GoalReadSummary {
  pictures: number;
  /** Position error (m). */
  mean: number;
  /** Means of the error's size along and across the camera ray (m). */
  alongMean: number;
  acrossMean: number;
  median: number;
  p90: number;
  max: number;
  /** Pictures with a known gripper command, and those the reader sees the other way. */
  stateChecked: number;
  stateMisreads: number;
}

/** A reader of RGB pictures: the planner's state reader, or a stand-in in tests. */
export type PictureReader = (pictures: Pick<Observation, 'image' | 'width' | 'height'>[]) => ReadState[];

/**
 * Reads every goal picture of each task's storyboard on each seed (`granularity` as `eval --goals`).
 * The reader gets the pixels only; the recorded state is used to score it. A layout whose expert
 * replay fails has no storyboard (eval excludes such episodes too); `onExcluded` hears of it.
 */
export async function readGoalPictures(
  read: PictureReader,
  tasks: string[],
  seeds: number[],
  o: { height: number; width: number; granularity: GoalGranularity; camera?: CameraSettings },
  onStoryboard?: (done: number) => void,
  onExcluded?: (task: string, seed: number, why: string) => void,
): Promise<GoalPictureRead[]> {
  const out: GoalPictureRead[] = [];
  let done = 0;
  for (const task of tasks) {
    for (const seed of seeds) {
      let board;
      try {
        board = await subgoals(task, seed, o.height, o.width, o.granularity, o.camera);
      } catch (e) {
        if (!(e instanceof ExpertReplayFailed)) throw e;
        onExcluded?.(task, seed, e.message);
        onStoryboard?.(++done);
        continue;
      }
      const reads = read(board.map((g) => ({ image: g.observation.image, width: g.observation.width, height: g.observation.height })));
      board.forEach((g, i) => {
        const p = g.observation.proprio!;
        const r = reads[i]!;
        const e = rayError(HEAD_CAMERA, r.position, [p[0]!, p[1]!, p[2]!]);
        out.push({
          task,
          seed,
          name: g.name,
          error: e.distance,
          along: e.along,
          across: e.across,
          commanded: g.gripper,
          readClosed: r.closedness > CLOSED_ABOVE,
        });
      });
      onStoryboard?.(++done);
    }
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function summarizeGoalReads(reads: GoalPictureRead[]): GoalReadSummary {
  const e = reads.map((r) => r.error).sort((a, b) => a - b);
  const checked = reads.filter((r) => r.commanded !== undefined);
  return {
    pictures: reads.length,
    mean: e.length ? e.reduce((a, b) => a + b, 0) / e.length : NaN,
    alongMean: e.length ? reads.reduce((a, r) => a + Math.abs(r.along), 0) / e.length : NaN,
    acrossMean: e.length ? reads.reduce((a, r) => a + r.across, 0) / e.length : NaN,
    median: e.length ? quantile(e, 0.5) : NaN,
    p90: e.length ? quantile(e, 0.9) : NaN,
    max: e.length ? e[e.length - 1]! : NaN,
    stateChecked: checked.length,
    stateMisreads: checked.filter((r) => (r.commanded === 'closed') !== r.readClosed).length,
  };
}

/** The `n` readings farthest off, worst first. */
export function worstGoalReads(reads: GoalPictureRead[], n: number): GoalPictureRead[] {
  return [...reads].sort((a, b) => b.error - a.error).slice(0, n);
}
