/**
 * Runs one evaluation episode for a policy: a scripted one (expert, random), the world-model
 * planner (`wm`, a preset name), or the same planner with the simulator as its model (`oracle`,
 * `oracle:PRESET`: the upper bound of the planner design with a perfect world model).
 */
import type { RgbImage } from '../image/decode.js';
import { runPlannedEpisode, type EpisodePlanning, type EpisodeSetup } from '../planner/episode.js';
import { loadEpisodePlanning, presetName } from '../planner/episode-planning.js';
import { SimEnv } from '../sim/env.js';
import { makeScriptedPolicy } from '../sim/expert.js';
import { UserError } from '../util/errors.js';
import type { EpisodeOutcome } from './metrics.js';

export const SCRIPTED = ['expert', 'random'] as const;

/** `wm` is the default planner preset; any other non-scripted name is a preset in policies/ (`oracle:P` plans with preset P). */
export function presetOf(policy: string): string {
  return presetName(splitPolicy(policy).name);
}

/**
 * `PRESET@RUN` plans with that preset and that checkpoint, so two models (an ablation) can be
 * evaluated side by side in one report; without `@` the evaluation's --checkpoint is used.
 */
export function splitPolicy(policy: string): { name: string; checkpoint?: string } {
  const at = policy.indexOf('@');
  if (at < 0) return { name: policy };
  const name = policy.slice(0, at);
  const checkpoint = policy.slice(at + 1);
  if (!name || !checkpoint) throw new UserError(`policy '${policy}': expected PRESET@RUN_DIRECTORY`);
  if ((SCRIPTED as readonly string[]).includes(name)) throw new UserError(`policy '${policy}': scripted policies take no checkpoint`);
  return { name, checkpoint };
}

export class EpisodeRunner {
  private readonly planners = new Map<string, EpisodePlanning>();

  constructor(
    private readonly checkpoint?: string,
    private readonly backend?: string,
    private readonly setup: EpisodeSetup = {},
  ) {}

  async run(policy: string, task: string, seed: number, recordGif = false): Promise<EpisodeOutcome & { frames: RgbImage[] }> {
    if ((SCRIPTED as readonly string[]).includes(policy)) return this.scripted(policy as 'expert' | 'random', task, seed, recordGif);
    let planning = this.planners.get(policy);
    if (!planning) {
      const checkpoint = splitPolicy(policy).checkpoint ?? this.checkpoint;
      if (!checkpoint) throw new UserError(`policy '${policy}' plans with a world model: give --checkpoint RUN or PRESET@RUN`);
      planning = await loadEpisodePlanning(splitPolicy(policy).name, checkpoint, { backend: this.backend, seed, imagine: true, lockstep: true });
      this.planners.set(policy, planning);
    }
    const r = await runPlannedEpisode(planning, task, seed, { recordGif, ...this.setup });
    return { policy, task, seed, success: r.success, stagesDone: r.stagesDone, stageCount: r.stageCount, steps: r.steps, latenciesMs: r.latenciesMs, safeActions: r.safeActions, frames: r.frames };
  }

  private async scripted(policy: 'expert' | 'random', task: string, seed: number, recordGif: boolean): Promise<EpisodeOutcome & { frames: RgbImage[] }> {
    const [h, w] = recordGif ? [128, 160] : [8, 10];
    const env = await SimEnv.create({ task, seed, imageHeight: h, imageWidth: w, shadows: this.setup.shadows });
    try {
      const p = makeScriptedPolicy(policy, task, seed);
      let r = env.reset(seed);
      p.reset(env);
      const latencies: number[] = [];
      const frames: RgbImage[] = recordGif ? [{ data: r.observation.image, width: w, height: h }] : [];
      while (!r.done) {
        const t0 = performance.now();
        const a = p.act(r);
        latencies.push(performance.now() - t0);
        r = env.stepAction(a);
        if (recordGif) frames.push({ data: r.observation.image, width: w, height: h });
      }
      return { policy, task, seed, success: r.success, stagesDone: r.stagesDone, stageCount: r.stageCount, steps: r.step, latenciesMs: latencies, safeActions: 0, frames };
    } finally {
      env.close();
    }
  }

  dispose(): void {
    for (const p of this.planners.values()) p.dispose();
    this.planners.clear();
  }
}
