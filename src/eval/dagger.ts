/**
 * DAgger data: a planner policy (by default the model's policy alone, `wm-policy`) drives the
 * simulated robot, and at every step the scripted expert, in labelling mode, names the move it
 * would make from that state. The episode is recorded with the expert's moves as its actions, so a
 * policy trained on it learns to recover from the states its own mistakes lead to, which expert
 * demonstrations never show. With `beta` > 0 the expert's move is executed instead of the
 * policy's on that share of steps (DAgger's mixing), which keeps the episode nearer to success.
 */
import { embedInstruction } from '../data/language-embedding.js';
import type { StepRecord } from '../data/rlds-writer.js';
import type { EpisodePlanning } from '../planner/episode.js';
import { collect, finishEpisode, stepRecord, type CollectedEpisode, type CollectOptions, type CollectResult } from '../sim/collect.js';
import { SimEnv } from '../sim/env.js';
import { expertLabeller } from '../sim/expert.js';
import { Rng } from '../util/rng.js';

export interface DaggerOptions extends Omit<CollectOptions, 'noise' | 'explore'> {
  /** What drives the robot (loaded once, reused for every episode). */
  planning: EpisodePlanning;
  /** Share of steps on which the expert's move is executed instead of the policy's (0: the policy alone). */
  beta: number;
}

/** One episode driven by `planning`, every step labelled by the expert. */
export async function daggerEpisode(
  planning: EpisodePlanning,
  task: string,
  seed: number,
  o: Pick<DaggerOptions, 'beta' | 'imageHeight' | 'imageWidth' | 'shadows'>,
): Promise<CollectedEpisode> {
  const env = await SimEnv.create({ task, seed, imageHeight: o.imageHeight, imageWidth: o.imageWidth, shadows: o.shadows });
  try {
    planning.reset(seed);
    let r = env.reset(seed);
    planning.attach?.(env);
    const expert = expertLabeller(task, seed);
    expert.reset(env);
    const mix = new Rng(seed ^ 0xda66e5);
    const instruction = env.task.instruction;
    const language = embedInstruction(instruction);
    const steps: StepRecord[] = [];
    while (!r.done) {
      // The policy reads the instruction, the picture and the robot state; the goal picture it is handed is the current one, which it ignores.
      const plan = await planning.plan(r.observation, { images: [r.observation], instruction });
      for (const a of plan.actions.slice(0, planning.preset.executeSteps)) {
        const label = expert.act(r);
        steps.push(stepRecord(r, label, language, instruction, steps.length === 0, false));
        r = env.step(mix.next() < o.beta ? label : a);
        if (r.done) break;
      }
    }
    return finishEpisode(steps, r, task, language, instruction);
  } finally {
    env.close();
  }
}

/** Collects DAgger episodes into RLDS shards, as `sim collect` does (same layout, same interrupt handling). */
export function collectDagger(o: DaggerOptions): Promise<CollectResult> {
  return collect({ ...o, noise: 0, explore: 0 }, (task, seed) => daggerEpisode(o.planning, task, seed, o));
}
