/**
 * Data collection: scripted (optionally noisy) experts in the simulator, written through the RLDS
 * writer in RT-1's fractal20220817_data layout so `--data rt1 --data-dir DIR` reads it unchanged.
 * Observation fields the simulator has no counterpart for are written as constants (listed in
 * docs/sim.md); each episode records its task, the stage reached and success.
 */
import { COLLECT_JPEG_QUALITY, encodeJpeg } from '../image/jpeg.js';
import { loadCard } from '../data/card.js';
import { embedInstruction } from '../data/language-embedding.js';
import { RldsWriter, type EpisodeRecord, type StepRecord } from '../data/rlds-writer.js';
import type { Rt1Action } from '../core/action.js';
import { Progress } from '../util/progress.js';
import { SimEnv, type StepResult } from './env.js';
import { makeScriptedPolicy } from './expert.js';

export interface CollectOptions {
  tasks: string[];
  episodes: number;
  outDir: string;
  seed: number;
  noise: number;
  explore: number;
  imageHeight: number;
  imageWidth: number;
  /** Render shadows (see SimEnvOptions.shadows). */
  shadows?: boolean;
  episodesPerShard?: number;
  signal?: AbortSignal;
}

const Z3 = [0, 0, 0];

/** The fingers' widest opening (m): two slide joints of 0-5 cm each (sim/scenes/tabletop.xml). */
export const FULL_OPENING = 0.1;

/**
 * RT-1's measured `gripper_closed` as a closedness in [0, 1] (0 fully open, 1 shut), so a learned
 * reader of goal pictures (src/model/state-reader.ts) can recover the finger opening from it.
 */
export function gripperClosedness(opening: number): number {
  return Math.min(1, Math.max(0, 1 - opening / FULL_OPENING));
}

/** One RLDS step: what the robot saw and its state at `r`, and the action `a` recorded for it. */
export function stepRecord(
  r: StepResult,
  a: Rt1Action,
  language: Float32Array,
  instruction: string,
  first: boolean,
  last: boolean,
): StepRecord {
  const p = r.observation.proprio!;
  return {
    'observation/image': encodeJpeg(r.observation.image, r.observation.width, r.observation.height, COLLECT_JPEG_QUALITY),
    'observation/natural_language_instruction': instruction,
    'observation/natural_language_embedding': language,
    'observation/base_pose_tool_reached': [p[0]!, p[1]!, p[2]!, Math.cos(p[3]! / 2), 0, 0, Math.sin(p[3]! / 2)],
    'observation/gripper_closed': [gripperClosedness(p[4]!)],
    'observation/gripper_closedness_commanded': [a.gripperClosedness],
    'observation/height_to_bottom': [p[2]!],
    'observation/orientation_box': [0, 0, 0, 0, 0, 0],
    'observation/orientation_start': [1, 0, 0, 0],
    'observation/robot_orientation_positions_box': [0, 0, 0, 0, 0, 0, 0, 0, 0],
    'observation/rotation_delta_to_go': Z3,
    'observation/src_rotation': [1, 0, 0, 0],
    'observation/vector_to_go': Z3,
    'observation/workspace_bounds': [0.2, -0.42, 0.02, 0.92, 0.42, 0.42, 0, 0, 0],
    'action/world_vector': a.worldVector,
    'action/rotation_delta': a.rotationDelta,
    'action/gripper_closedness_action': [a.gripperClosedness],
    'action/base_displacement_vector': [0, 0],
    'action/base_displacement_vertical_rotation': [0],
    'action/terminate_episode': a.terminateEpisode,
    is_first: first,
    is_last: last,
    is_terminal: last && r.success,
    reward: last && r.success ? 1 : 0,
  };
}

/** One collected episode: its RLDS record and outcome. */
export interface CollectedEpisode {
  record: EpisodeRecord;
  success: boolean;
  stages: number;
}

/** The record of an episode that ended at `r`: its steps so far, a final step, and the outcome as metadata. */
export function finishEpisode(
  steps: StepRecord[],
  r: StepResult,
  task: string,
  language: Float32Array,
  instruction: string,
): CollectedEpisode {
  const final: Rt1Action = { worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [1, 0, 0] };
  steps.push(stepRecord(r, final, language, instruction, steps.length === 0, true));
  return {
    record: {
      steps,
      metadata: {
        'aspects/success': r.success,
        'aspects/feasible': true,
        'episode_metadata/stage_reached': r.stagesDone,
        'episode_metadata/task': task,
      },
    },
    success: r.success,
    stages: r.stagesDone,
  };
}

/** Runs one expert episode and returns it as an RLDS record plus its outcome. */
export async function collectEpisode(
  task: string,
  seed: number,
  o: Pick<CollectOptions, 'noise' | 'explore' | 'imageHeight' | 'imageWidth' | 'shadows'>,
): Promise<CollectedEpisode> {
  const env = await SimEnv.create({ task, seed, imageHeight: o.imageHeight, imageWidth: o.imageWidth, shadows: o.shadows });
  try {
    const policy = makeScriptedPolicy('expert', task, seed, { noise: o.noise, explore: o.explore });
    let r = env.reset(seed);
    policy.reset(env);
    const language = embedInstruction(env.task.instruction);
    const steps: StepRecord[] = [];
    while (!r.done) {
      const a = policy.act(r);
      steps.push(stepRecord(r, a, language, env.task.instruction, steps.length === 0, false));
      r = env.step(a);
    }
    return finishEpisode(steps, r, task, language, env.task.instruction);
  } finally {
    env.close();
  }
}

export interface CollectResult {
  episodes: number;
  /** Steps in the complete shards. */
  steps: number;
  successes: number;
  shards: string[];
  interrupted: boolean;
  perTask: Record<string, { episodes: number; successes: number }>;
  /** Layouts `episode` had nothing to record for (a goal-driven DAgger driver whose storyboard replay failed), as "task seed". */
  skipped: string[];
}

/**
 * Collects `o.episodes` episodes into RLDS shards, task i % tasks.length with seed o.seed + i.
 * `episode` makes one (default: the scripted expert; src/eval/dagger.ts passes a policy labelled by it),
 * or none for a layout it cannot record, which is skipped and named in the result.
 */
export async function collect(
  o: CollectOptions,
  episode: (task: string, seed: number) => Promise<CollectedEpisode | undefined> = (task, seed) => collectEpisode(task, seed, o),
): Promise<CollectResult> {
  const writer = new RldsWriter(o.outDir, loadCard('rt1'), {
    episodesPerShard: o.episodesPerShard ?? 50,
    imageShape: [o.imageHeight, o.imageWidth, 3],
  });
  const progress = new Progress('collect', o.episodes);
  // Outcomes in order of writing: after an interrupt only the first `kept` (those in complete shards) are reported.
  const outcomes: { task: string; success: boolean; steps: number }[] = [];
  const skipped: string[] = [];
  const summary = (kept: number, shards: string[], interrupted: boolean): CollectResult => {
    const ks = outcomes.slice(0, kept);
    const perTask: CollectResult['perTask'] = {};
    for (const e of ks) {
      const t = (perTask[e.task] ??= { episodes: 0, successes: 0 });
      t.episodes++;
      t.successes += e.success ? 1 : 0;
    }
    return {
      episodes: kept,
      steps: ks.reduce((a, e) => a + e.steps, 0),
      successes: ks.filter((e) => e.success).length,
      shards,
      interrupted,
      perTask,
      skipped,
    };
  };
  let successes = 0;
  for (let i = 0; i < o.episodes; i++) {
    if (o.signal?.aborted) {
      const r = await writer.abort();
      progress.finish(`interrupted: ${r.episodes} episodes in complete shards kept`);
      return summary(r.episodes, r.shards, true);
    }
    const task = o.tasks[i % o.tasks.length]!;
    const ep = await episode(task, o.seed + i);
    if (!ep) {
      skipped.push(`${task} ${o.seed + i}`);
      progress.update(i + 1, `${task} seed ${o.seed + i} skipped (nothing to record)`);
      continue;
    }
    await writer.add(ep.record);
    outcomes.push({ task, success: ep.success, steps: ep.record.steps.length });
    successes += ep.success ? 1 : 0;
    progress.update(i + 1, `${task} ${ep.success ? 'success' : `stage ${ep.stages}`}, ${successes}/${i + 1} successful`);
  }
  const r = await writer.close();
  progress.finish(`${successes}/${outcomes.length} successful`);
  return summary(r.episodes, r.shards, false);
}
