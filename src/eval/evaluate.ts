/**
 * The multi-step task success-rate evaluation: every (policy, task, seed) episode, run in
 * worker processes, appended to episodes.jsonl as it finishes (so an interrupted evaluation
 * resumes without redoing finished episodes), then summarised into report.json / report.md
 * with GIFs of the first failures per task. Same seeds and checkpoint give the same numbers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { writeGif } from '../image/gif.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomic.js';
import { UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';
import { Progress } from '../util/progress.js';
import { EpisodeRunner } from './episodes.js';
import type { EpisodeOutcome } from './metrics.js';
import { buildReport, writeReport, type Report } from './report.js';
import { cameraJpegOf, type EpisodeSetup } from '../planner/episode.js';

export interface EvalJob {
  policy: string;
  task: string;
  seed: number;
}

export interface EvalOptions extends EpisodeSetup {
  policies: string[];
  tasks: string[];
  /** Episodes per task. */
  episodes: Record<string, number>;
  seed: number;
  outDir: string;
  workers: number;
  checkpoint?: string;
  backend?: string;
  /** GIFs of the first N failures per policy and task. */
  failureGifs: number;
  log?: (line: string) => void;
}

export function jobsFor(o: Pick<EvalOptions, 'policies' | 'tasks' | 'episodes' | 'seed'>): EvalJob[] {
  const jobs: EvalJob[] = [];
  for (const policy of o.policies)
    for (const task of o.tasks) for (let i = 0; i < (o.episodes[task] ?? 0); i++) jobs.push({ policy, task, seed: o.seed + i });
  return jobs;
}

const key = (j: EvalJob) => `${j.policy}|${j.task}|${j.seed}`;

/** Finished episodes from an earlier run; a torn last line (killed mid-write) is ignored. */
export function readFinished(path: string): EpisodeOutcome[] {
  if (!existsSync(path)) return [];
  const out: EpisodeOutcome[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as EpisodeOutcome);
    } catch {
      /* torn final line */
    }
  }
  return out;
}

/** The episode setup of an evaluation: every episode, worker and failure replay uses the same. */
const setupOf = (o: EvalOptions): Required<EpisodeSetup> => ({
  goals: o.goals ?? 'phase',
  shadows: o.shadows ?? false,
  restage: o.restage ?? false,
  goalNoise: o.goalNoise ?? 0,
  cameraJpeg: cameraJpegOf(o),
});

async function runInProcess(jobs: EvalJob[], o: EvalOptions, onDone: (r: EpisodeOutcome) => void): Promise<void> {
  const runner = new EpisodeRunner(o.checkpoint, o.backend, setupOf(o));
  try {
    for (const j of jobs) {
      const { frames: _frames, ...outcome } = await runner.run(j.policy, j.task, j.seed);
      onDone(outcome);
    }
  } finally {
    runner.dispose();
  }
}

/** How long a stopping evaluation waits for its workers to exit on the forwarded signal before it kills them. */
const WORKER_STOP_GRACE_MS = 2000;

/**
 * Worker processes pull jobs one at a time over IPC (`selfflow-wm eval worker`). SIGINT or SIGTERM
 * sent to this process alone (a supervisor, `timeout`) is passed on to the workers, which are
 * waited for briefly and then killed, before this process dies of the same signal; a worker whose
 * parent dies without that (SIGKILL) sees its IPC channel close and exits (workerLoop).
 */
async function runInWorkers(jobs: EvalJob[], o: EvalOptions, onDone: (r: EpisodeOutcome) => void): Promise<void> {
  const queue = [...jobs];
  const bin = join(packageRoot(), 'bin', 'selfflow-wm.js');
  const args = [
    'eval',
    'worker',
    ...(o.checkpoint ? ['--checkpoint', o.checkpoint] : []),
    ...(o.backend ? ['--backend', o.backend] : []),
    '--goals',
    setupOf(o).goals,
    ...(o.shadows ? ['--shadows'] : []),
    ...(o.restage ? ['--restage'] : []),
    ...(o.goalNoise ? ['--goal-noise', String(o.goalNoise)] : []),
    '--camera-jpeg',
    String(cameraJpegOf(o)),
  ];
  const children: ChildProcess[] = [];
  const running = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
  const stopWorkers = async (signal: NodeJS.Signals) => {
    const left = running();
    for (const c of left) c.kill(signal);
    const exited = Promise.all(
      left.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())))),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, WORKER_STOP_GRACE_MS)))]);
    clearTimeout(timer);
    for (const c of running()) c.kill('SIGKILL');
  };
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    stopping = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    o.log?.(`${signal}: stopping ${running().length} eval workers (finished episodes are kept in episodes.jsonl; run again to resume)`);
    void stopWorkers(signal).then(() => {
      // Die of the signal as its sender expects; the exit code says the same should another listener keep the process alive.
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(128 + (osConstants.signals[signal] ?? 0)), 200).unref();
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await Promise.all(
      Array.from(
        { length: Math.min(o.workers, jobs.length) },
        () =>
          new Promise<void>((resolve, reject) => {
            const child = fork(bin, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
            children.push(child);
            const next = () => {
              const j = queue.shift();
              child.send(j ? { job: j } : { done: true });
            };
            child.on('message', (m: { ready?: boolean; outcome?: EpisodeOutcome; error?: string }) => {
              if (stopping) return;
              if (m.error) return reject(new Error(`eval worker: ${m.error}`));
              if (m.outcome) onDone(m.outcome);
              next();
            });
            // While stopping on a signal, this evaluation ends with the process and neither finishes nor fails.
            child.on('error', (e) => {
              if (!stopping) reject(e);
            });
            child.on('exit', (code, signal) => {
              if (stopping) return;
              if (code === 0) resolve();
              else reject(new Error(`eval worker exited with ${signal ? `signal ${signal}` : `code ${code}`}`));
            });
          }),
      ),
    );
  } catch (e) {
    // One worker failed: the others must not keep this process (or the CPU) busy.
    await stopWorkers('SIGTERM');
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** Episodes in one directory must come from the same model and goal pictures, or resuming would mix them. */
function checkSettings(o: EvalOptions): void {
  const file = join(o.outDir, 'settings.json');
  const mine = { checkpoint: o.checkpoint ?? null, ...setupOf(o) };
  if (existsSync(file)) {
    // Directories from before the shadows, restage, goal-noise and camera-jpeg options ran without them.
    const prior: Record<string, unknown> = {
      shadows: false,
      restage: false,
      goalNoise: 0,
      cameraJpeg: 0,
      ...(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>),
    };
    for (const [k, v] of Object.entries(mine)) {
      if (prior[k] !== v)
        throw new UserError(
          `${o.outDir} holds episodes run with ${k} ${JSON.stringify(prior[k])}, not ${JSON.stringify(v)}: choose another --out`,
        );
    }
  } else writeJsonAtomic(file, mine);
}

export async function evaluate(o: EvalOptions): Promise<Report> {
  mkdirSync(o.outDir, { recursive: true });
  checkSettings(o);
  const log = o.log ?? (() => {});
  const episodesPath = join(o.outDir, 'episodes.jsonl');
  const all = jobsFor(o);
  const wanted = new Set(all.map(key));
  const finished = readFinished(episodesPath).filter((r) => wanted.has(key(r)));
  const done = new Set(finished.map(key));
  const todo = all.filter((j) => !done.has(key(j)));
  if (existsSync(episodesPath)) {
    // Keep only complete records, so a line torn by a kill cannot swallow the next one.
    const valid = readFinished(episodesPath);
    writeFileAtomic(episodesPath, valid.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  if (finished.length) log(`resuming: ${finished.length} of ${all.length} episodes already finished in ${episodesPath}`);
  const progress = new Progress('eval', all.length);
  const outcomes = [...finished];
  const onDone = (r: EpisodeOutcome) => {
    appendFileSync(episodesPath, `${JSON.stringify(r)}\n`);
    outcomes.push(r);
    progress.update(
      outcomes.length,
      `${r.policy} ${r.task} seed ${r.seed}: ${r.excluded ? 'excluded, no goal pictures' : r.success ? 'success' : `stage ${r.stagesDone}/${r.stageCount}`}`,
    );
  };
  if (o.workers > 1 && todo.length > 1) await runInWorkers(todo, o, onDone);
  else await runInProcess(todo, o, onDone);
  progress.finish();
  const report = buildReport(outcomes, o.policies, o.tasks, o.seed, o.checkpoint, setupOf(o));
  writeReport(o.outDir, report);
  // GIFs of the first failures: failed episodes are replayed deterministically with the camera recording.
  if (o.failureGifs > 0) {
    const runner = new EpisodeRunner(o.checkpoint, o.backend, setupOf(o));
    try {
      for (const policy of o.policies) {
        for (const task of o.tasks) {
          const fails = outcomes
            .filter((r) => r.policy === policy && r.task === task && !r.success && !r.excluded)
            .sort((a, b) => a.seed - b.seed)
            .slice(0, o.failureGifs);
          for (const f of fails) {
            const file = join(o.outDir, `failure-${policy.replace(/[^\w.-]+/g, '_')}-${task}-seed${f.seed}.gif`);
            if (existsSync(file)) continue;
            const r = await runner.run(policy, task, f.seed, true);
            writeGif(file, r.frames, policy === 'expert' || policy === 'random' ? 333 : 500);
            log(`wrote ${file}`);
          }
        }
      }
    } finally {
      runner.dispose();
    }
  }
  return report;
}

/** The worker side of runInWorkers. */
export async function workerLoop(checkpoint: string | undefined, backend: string | undefined, setup: EpisodeSetup): Promise<void> {
  // The parent is gone (killed, even with SIGKILL) when its IPC channel closes: stop at once rather than finish the queue for nobody.
  const orphaned = () => process.exit(1);
  process.once('disconnect', orphaned);
  if (!process.connected) orphaned();
  const runner = new EpisodeRunner(checkpoint, backend, setup);
  await new Promise<void>((resolve) => {
    process.on('message', (m: { job?: EvalJob; done?: boolean }) => {
      if (m.done || !m.job) {
        runner.dispose();
        resolve();
        return;
      }
      runner
        .run(m.job.policy, m.job.task, m.job.seed)
        .then(({ frames: _f, ...outcome }) => process.send!({ outcome }))
        .catch((e: Error) => process.send!({ error: e.message }));
    });
    process.send!({ ready: true });
  });
  process.removeListener('disconnect', orphaned);
  process.disconnect?.();
}
