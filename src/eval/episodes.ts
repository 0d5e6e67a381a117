/**
 * Runs one evaluation episode for a policy: a scripted one (expert, random), the world-model
 * planner (`wm`, a preset name), or the same planner with the simulator as its model (`oracle`,
 * `oracle:PRESET`: the upper bound of the planner design with a perfect world model).
 */
import type { RgbImage } from '../image/decode.js';
import { cameraSettings, runPlannedEpisode, type EpisodePlanning, type EpisodeSetup } from '../planner/episode.js';
import { loadEpisodePlanning } from '../planner/episode-planning.js';
import { resolvePolicy, type ScriptedPolicyName } from '../planner/policy-name.js';
import { SimEnv } from '../sim/env.js';
import { makeScriptedPolicy } from '../sim/expert.js';
import { UserError } from '../core/errors.js';
import type { EpisodeOutcome } from './metrics.js';

export class EpisodeRunner {
  private readonly planners = new Map<string, EpisodePlanning>();

  constructor(
    private readonly checkpoint?: string,
    private readonly backend?: string,
    private readonly setup: EpisodeSetup = {},
  ) {}

  async run(policy: string, task: string, seed: number, recordGif = false): Promise<EpisodeOutcome & { frames: RgbImage[] }> {
    const spec = resolvePolicy(policy);
    if (spec.kind === 'scripted') return this.scripted(spec.policy, task, seed, recordGif);
    let planning = this.planners.get(policy);
    if (!planning) {
      // One load per policy (weights and run.json read once); every later episode reuses it.
      const checkpoint = spec.checkpoint ?? this.checkpoint;
      if (!checkpoint) throw new UserError(`policy '${policy}' plans with a world model: give --checkpoint RUN or PRESET@RUN`);
      planning = await loadEpisodePlanning(spec, checkpoint, { backend: this.backend, seed, imagine: true, lockstep: true });
      this.planners.set(policy, planning);
    }
    const r = await runPlannedEpisode(planning, task, seed, { recordGif, ...this.setup });
    return {
      policy,
      task,
      seed,
      success: r.success,
      stagesDone: r.stagesDone,
      stageCount: r.stageCount,
      steps: r.steps,
      latenciesMs: r.latenciesMs,
      safeActions: r.safeActions,
      ...(r.excluded ? { excluded: r.excluded } : {}),
      frames: r.frames,
    };
  }

  private async scripted(
    policy: ScriptedPolicyName,
    task: string,
    seed: number,
    recordGif: boolean,
  ): Promise<EpisodeOutcome & { frames: RgbImage[] }> {
    const [h, w] = recordGif ? [128, 160] : [8, 10];
    const env = await SimEnv.create({ task, seed, imageHeight: h, imageWidth: w, ...cameraSettings(this.setup) });
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
      return {
        policy,
        task,
        seed,
        success: r.success,
        stagesDone: r.stagesDone,
        stageCount: r.stageCount,
        steps: r.step,
        latenciesMs: latencies,
        safeActions: 0,
        frames,
      };
    } finally {
      env.close();
    }
  }

  dispose(): void {
    for (const p of this.planners.values()) p.dispose();
    this.planners.clear();
  }
}
