/** Evaluation arithmetic: Wilson score intervals, per-stage success, chain length, latency percentiles. */
import { percentile } from '../util/stats.js';
import type { EpisodeStats } from '../planner/episode.js';

export interface EpisodeOutcome extends EpisodeStats {
  policy: string;
}

/** Wilson score interval for k successes in n trials (z = 1.96 for 95 %). */
export function wilson(k: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1];
  const p = k / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export interface TaskSummary {
  task: string;
  episodes: number;
  successes: number;
  success_rate: number;
  ci95: [number, number];
  /** stage_success[i]: fraction of episodes that reached stage i+1. */
  stage_success: number[];
  /** CALVIN's "average length": mean number of completed stages. */
  avg_completed_stages: number;
  episode_length: { mean: number };
  latency_ms: { p50: number; p95: number };
  safe_actions: number;
  seeds: number[];
  /** Seeds not run because the expert replay that makes their goal pictures failed; in no figure above. */
  excluded_seeds: number[];
}

export function summariseTask(task: string, all: EpisodeOutcome[]): TaskSummary {
  const eps = all.filter((e) => !e.excluded);
  const n = eps.length;
  const k = eps.filter((e) => e.success).length;
  const stages = eps[0]?.stageCount ?? 0;
  const lat = eps.flatMap((e) => e.latenciesMs).sort((a, b) => a - b);
  return {
    task,
    episodes: n,
    successes: k,
    success_rate: n ? k / n : 0,
    ci95: wilson(k, n),
    stage_success: Array.from({ length: stages }, (_, i) => (n ? eps.filter((e) => e.stagesDone > i).length / n : 0)),
    avg_completed_stages: n ? eps.reduce((s, e) => s + e.stagesDone, 0) / n : 0,
    episode_length: { mean: n ? eps.reduce((s, e) => s + e.steps, 0) / n : 0 },
    latency_ms: { p50: lat.length ? percentile(lat, 50) : 0, p95: lat.length ? percentile(lat, 95) : 0 },
    safe_actions: eps.reduce((s, e) => s + e.safeActions, 0),
    seeds: eps.map((e) => e.seed).sort((a, b) => a - b),
    excluded_seeds: all
      .filter((e) => e.excluded)
      .map((e) => e.seed)
      .sort((a, b) => a - b),
  };
}

/** SIMPLER's per-task trial counts (Google robot): coke can 75, move near 60, drawer 54 split open/close, open-and-place 27. */
export const SIMPLER_EPISODES: Record<string, number> = {
  'pick-can': 75,
  'move-near': 60,
  'drawer-open': 27,
  'drawer-close': 27,
  'drawer-place': 27,
  'drawer-chain': 27,
};
