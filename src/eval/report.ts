/** report.json and report.md: per policy and task, every sub-task reported so any averaging convention can be recomputed. */
import { join } from 'node:path';
import type { EpisodeSetup } from '../planner/episode.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { summariseTask, type EpisodeOutcome, type TaskSummary } from './metrics.js';

export interface Report {
  created: string;
  checkpoint?: string;
  seed: number;
  /** Goal pictures the world-model policies were given (stage or phase storyboard). */
  goals?: string;
  /** Whether the simulator rendered shadows (absent in reports from before the option). */
  shadows?: boolean;
  /** Whether later goal pictures were redone after each completed stage (absent in reports from before the option). */
  restage?: boolean;
  /** Goal-position noise along the camera ray (m; src/sim/goal-noise.ts), absent or 0 for none. */
  goalNoise?: number;
  /** JPEG quality the simulated camera delivered its pictures through, absent or 0 for raw renders. */
  cameraJpeg?: number;
  /** The summary average: the unweighted mean of per-task success rates (each task counts once). */
  average: 'mean of per-task success rates';
  policies: Record<string, { tasks: Record<string, TaskSummary>; average_success_rate: number }>;
}

export function buildReport(
  outcomes: EpisodeOutcome[],
  policies: string[],
  tasks: string[],
  seed: number,
  checkpoint?: string,
  setup: EpisodeSetup = {},
): Report {
  const report: Report = {
    created: new Date().toISOString(),
    checkpoint,
    seed,
    ...setup,
    average: 'mean of per-task success rates',
    policies: {},
  };
  for (const p of policies) {
    const t: Record<string, TaskSummary> = {};
    for (const task of tasks)
      t[task] = summariseTask(
        task,
        outcomes.filter((o) => o.policy === p && o.task === task),
      );
    const rates = Object.values(t).map((s) => s.success_rate);
    report.policies[p] = { tasks: t, average_success_rate: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : 0 };
  }
  return report;
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
/** Scripted policies decide in microseconds: two significant digits below 10 ms instead of a bare 0. */
const ms = (x: number) => (x >= 10 ? x.toFixed(0) : x.toPrecision(2));

export function reportMarkdown(r: Report): string {
  const pols = Object.keys(r.policies);
  const tasks = Object.keys(r.policies[pols[0]!]?.tasks ?? {});
  const lines = [
    `# Evaluation report`,
    '',
    `${r.created}${r.checkpoint ? `, checkpoint ${r.checkpoint}` : ''}, base seed ${r.seed}${r.goals ? `, goal pictures for planners: ${r.goals}` : ''}${r.shadows ? ', rendered with shadows' : ''}${r.cameraJpeg ? `, camera pictures through JPEG quality ${r.cameraJpeg}` : ''}${r.restage ? ', restaged after each stage' : ''}${r.goalNoise ? `, recorded goal positions moved along the camera ray by ${r.goalNoise} m (standard deviation; a diagnostic for oracle presets)` : ''}. Success rate with Wilson 95 % interval; stages reached;`,
    `average completed stages (CALVIN's average length); mean episode length; decision latency p50/p95. Summary line: ${r.average}.`,
    '',
    `| task | ${pols.map((p) => `${p} success (95 % CI)`).join(' | ')} | ${pols.map((p) => `${p} stages reached`).join(' | ')} | ${pols.map((p) => `${p} avg stages`).join(' | ')} | ${pols.map((p) => `${p} steps`).join(' | ')} | ${pols.map((p) => `${p} latency p50/p95 ms`).join(' | ')} |`,
    `| --- |${' --- |'.repeat(5 * pols.length)}`,
  ];
  for (const t of tasks) {
    const s = pols.map((p) => r.policies[p]!.tasks[t]!);
    lines.push(
      `| ${t} | ${s.map((x) => `${x.successes}/${x.episodes} = ${pct(x.success_rate)} (${pct(x.ci95[0])}-${pct(x.ci95[1])})`).join(' | ')} | ${s.map((x) => x.stage_success.map(pct).join(' / ')).join(' | ')} | ${s
        .map((x) => x.avg_completed_stages.toFixed(2))
        .join(
          ' | ',
        )} | ${s.map((x) => x.episode_length.mean.toFixed(1)).join(' | ')} | ${s.map((x) => `${ms(x.latency_ms.p50)}/${ms(x.latency_ms.p95)}`).join(' | ')} |`,
    );
  }
  lines.push(`| **average** | ${pols.map((p) => pct(r.policies[p]!.average_success_rate)).join(' | ')} |${' |'.repeat(4 * pols.length)}`);
  const excluded = pols.flatMap((p) =>
    tasks.flatMap((t) => {
      const seeds = r.policies[p]!.tasks[t]!.excluded_seeds;
      return seeds.length ? [`${p} ${t}: seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}`] : [];
    }),
  );
  if (excluded.length)
    lines.push('', `Not run, and in no figure above: the expert replay that makes the goal pictures failed on ${excluded.join('; ')}.`);
  return `${lines.join('\n')}\n`;
}

export function writeReport(outDir: string, r: Report): void {
  writeJsonAtomic(join(outDir, 'report.json'), r);
  writeFileAtomic(join(outDir, 'report.md'), reportMarkdown(r));
}
