import { existsSync } from 'node:fs';
import { SHIPPED_MODEL } from '../util/package-root.js';
import { join } from 'node:path';
import { UserError } from '../core/errors.js';
import {
  ALL_TASKS,
  BACKEND_OPTION,
  bool,
  EPISODE_SETUP_OPTIONS,
  episodeSetup,
  int,
  requireStr,
  str,
  UsageError,
  type Command,
} from './command.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'multi-step task success rates (Wilson 95 % CI, stages, chain length, latency) for one or more policies',
  options: {
    policy: {
      type: 'string',
      arg: 'P[,P2]',
      description: 'wm | expert | random | a planner preset name, PRESET@RUN for another checkpoint; several side by side',
      default: 'expert',
    },
    checkpoint: { type: 'string', arg: 'RUN', description: `trained run for world-model policies (default: the shipped ${SHIPPED_MODEL})` },
    tasks: { type: 'string', arg: 'T,T2', description: 'tasks to evaluate', default: ALL_TASKS },
    episodes: {
      type: 'string',
      arg: 'N|simpler',
      description: "episodes per task, or 'simpler' for SIMPLER's trial counts",
      default: '10',
    },
    seed: { type: 'string', arg: 'S', description: 'episode i of every task uses seed S+i (the same for every policy)', default: '0' },
    out: { type: 'string', arg: 'reports/NAME', description: 'report directory (report.json, report.md, episodes.jsonl, failure GIFs)' },
    workers: { type: 'string', arg: 'W', description: 'parallel worker processes', default: '1' },
    'failure-gifs': { type: 'string', arg: 'N', description: 'GIFs of the first N failures per policy and task', default: '1' },
    json: { type: 'boolean', description: 'print report.json to stdout' },
    ...EPISODE_SETUP_OPTIONS,
    backend: BACKEND_OPTION,
  },
  details: 'An interrupted evaluation resumes from episodes.jsonl in --out without redoing finished episodes.',
  async run(opts) {
    const { SIMPLER_EPISODES } = await import('../eval/metrics.js');
    const { evaluate } = await import('../eval/evaluate.js');
    const { taskByName } = await import('../sim/tasks.js');
    const { reportMarkdown } = await import('../eval/report.js');
    const { shippedModel } = await import('../util/package-root.js');
    const policies = requireStr(opts, 'policy')
      .split(',')
      .map((p) => p.trim());
    const tasks = requireStr(opts, 'tasks')
      .split(',')
      .map((t) => t.trim());
    tasks.forEach((t) => taskByName(t));
    const ep = requireStr(opts, 'episodes');
    let episodes: Record<string, number>;
    if (ep === 'simpler') episodes = Object.fromEntries(tasks.map((t) => [t, SIMPLER_EPISODES[t]!]));
    else {
      const n = int(opts, 'episodes');
      if (n < 1) throw new UsageError('--episodes must be >= 1 or simpler');
      episodes = Object.fromEntries(tasks.map((t) => [t, n]));
    }
    const { needsCheckpoint } = await import('../planner/policy-name.js');
    const needsModel = policies.some(needsCheckpoint);
    const shipped = shippedModel();
    const checkpoint = str(opts, 'checkpoint') ?? (needsModel && existsSync(join(shipped, 'run.json')) ? shipped : undefined);
    if (needsModel && !checkpoint) throw new UserError(`policies ${policies.join(', ')} need a world model: give --checkpoint RUN`);
    const report = await evaluate({
      policies,
      tasks,
      episodes,
      seed: int(opts, 'seed', 0),
      outDir: requireStr(opts, 'out'),
      workers: int(opts, 'workers', 1),
      checkpoint,
      backend: str(opts, 'backend'),
      ...episodeSetup(opts),
      failureGifs: int(opts, 'failure-gifs', 1),
      log: (l) => console.error(l),
    });
    console.log(bool(opts, 'json') ? JSON.stringify(report, null, 2) : reportMarkdown(report));
  },
};

export const evalWorkerCommand: Command = {
  name: 'eval worker',
  summary: '(internal) an evaluation worker process, driven over IPC by eval --workers',
  options: { checkpoint: { type: 'string', arg: 'RUN', description: 'trained run' }, ...EPISODE_SETUP_OPTIONS, backend: BACKEND_OPTION },
  async run(opts) {
    if (!process.send) throw new UsageError('eval worker is started by `eval --workers N`, not by hand');
    const { workerLoop } = await import('../eval/evaluate.js');
    await workerLoop(str(opts, 'checkpoint'), str(opts, 'backend'), episodeSetup(opts));
  },
};
