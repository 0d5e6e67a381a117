/**
 * One closed-loop simulated episode driven by the world-model planner: observe, plan towards the
 * current stage's goal image (stage goals come from an expert replay and advance when the
 * simulator reports the stage done, as an operator would hand over the next goal picture),
 * execute the first actions of the plan, repeat. Records a GIF: real camera | imagined future of
 * the chosen plan | goal, with a per-step latency line.
 */
import { Canvas } from '../image/canvas.js';
import { drawText } from '../image/font.js';
import type { RgbImage } from '../image/decode.js';
import { SimEnv } from '../sim/env.js';
import { goalObservations } from '../sim/goals.js';
import type { Goal } from './types.js';
import type { WorldModelPlanning } from './world-model-planner.js';

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
}

export interface EpisodeResult extends EpisodeStats {
  frames: RgbImage[];
}

const VIEW = { h: 64, w: 80, scale: 2 };

function panel(real: Uint8Array, imagined: Uint8Array | undefined, goal: Uint8Array, imgH: number, imgW: number, line: string): RgbImage {
  const s = VIEW.scale;
  const c = new Canvas(3 * VIEW.w * s + 4 * 4, VIEW.h * s + 8 + 16, 20);
  const put = (data: Uint8Array | undefined, h: number, w: number, i: number) => {
    if (data) c.draw({ data, width: w, height: h }, 4 + i * (VIEW.w * s + 4), 4, Math.max(1, Math.round((VIEW.w * s) / w)));
  };
  put(real, VIEW.h, VIEW.w, 0);
  put(imagined, imgH, imgW, 1);
  put(goal, VIEW.h, VIEW.w, 2);
  drawText(c, line, 4, VIEW.h * s + 8, 2);
  return c;
}

export async function runPlannedEpisode(planning: WorldModelPlanning, task: string, seed: number, opts: { recordGif?: boolean; log?: (l: string) => void } = {}): Promise<EpisodeResult> {
  const env = await SimEnv.create({ task, seed, imageHeight: VIEW.h, imageWidth: VIEW.w });
  const goals = await goalObservations(task, seed, VIEW.h, VIEW.w);
  planning.reset(seed);
  let r = env.reset(seed);
  const latencies: number[] = [];
  const frames: RgbImage[] = [];
  let safe = 0;
  let goal: Goal = { images: [goals[0]!], instruction: env.task.instruction };
  let goalStage = 0;
  try {
    while (!r.done) {
      if (r.stagesDone !== goalStage && r.stagesDone < goals.length) {
        goalStage = r.stagesDone;
        goal = { images: [goals[goalStage]!], instruction: env.task.instruction };
        opts.log?.(`  stage ${goalStage}/${r.stageCount} reached at step ${r.step}: ${env.task.stages[goalStage - 1]}`);
      }
      const plan = await planning.plan(r.observation, goal);
      latencies.push(plan.latencyMs);
      if (plan.safe) safe++;
      const line = `step ${r.step} ${plan.latencyMs.toFixed(0)} ms stage ${r.stagesDone}/${r.stageCount}`;
      if (opts.recordGif) frames.push(panel(r.observation.image, plan.imagined?.[0], goal.images[0]!.image, planning.cfg.imageHeight, planning.cfg.imageWidth, line));
      for (const a of plan.actions.slice(0, planning.preset.executeSteps)) {
        r = env.stepAction(a);
        if (r.done) break;
      }
    }
    if (r.stagesDone > goalStage) opts.log?.(`  stage ${r.stagesDone}/${r.stageCount} reached at step ${r.step}`);
    if (opts.recordGif) frames.push(panel(r.observation.image, undefined, goals[goals.length - 1]!.image, planning.cfg.imageHeight, planning.cfg.imageWidth, `${r.success ? 'success' : 'failure'} stage ${r.stagesDone}/${r.stageCount}`));
    return { task, seed, success: r.success, stagesDone: r.stagesDone, stageCount: r.stageCount, steps: r.step, latenciesMs: latencies, safeActions: safe, frames };
  } finally {
    env.close();
  }
}
