import { UserError } from '../core/errors.js';
import { describeChoice, initBackend } from '../backend/backends.js';
import { percentile } from '../util/stats.js';
import { writeGif } from '../image/gif.js';
import { writeContactSheet } from '../image/sheet.js';
import { BACKEND_OPTION, EPISODE_SETUP_OPTIONS, episodeSetup, int, requireStr, str, type Command } from './command.js';
import { DEFAULT_PRESET } from '../planner/policy-name.js';

export const planCommand: Command = {
  name: 'plan',
  summary: 'run one simulated episode closed-loop with the world-model planner and write a GIF',
  options: {
    checkpoint: { type: 'string', arg: 'RUN', description: 'training run directory (uses its latest EMA weights and action statistics)' },
    task: { type: 'string', arg: 'T', description: 'simulator task (see sim tasks)', default: 'drawer-place' },
    seed: { type: 'string', arg: 'S', description: 'episode seed (object layout) and planner seed', default: '0' },
    policy: {
      type: 'string',
      arg: 'P',
      description:
        'planner preset in policies/ (wm-cem-read, wm-cem-fast, wm-cem-quality, wm-mppi, wm-policy) or a preset file; oracle[:PRESET] plans with the simulator as the model',
      default: DEFAULT_PRESET,
    },
    gif: { type: 'string', arg: 'FILE.gif', description: 'write real | imagined | goal per step, with latency' },
    sheet: { type: 'string', arg: 'FILE.png', description: 'the same panels as one PNG contact sheet (every step, up to 60)' },
    ...EPISODE_SETUP_OPTIONS,
    backend: BACKEND_OPTION,
  },
  async run(opts) {
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { loadEpisodePlanning } = await import('../planner/episode-planning.js');
    const { runPlannedEpisode } = await import('../planner/episode.js');
    const task = requireStr(opts, 'task');
    const seed = int(opts, 'seed', 0);
    const planning = await loadEpisodePlanning(requireStr(opts, 'policy'), requireStr(opts, 'checkpoint'), {
      seed,
      imagine: Boolean(str(opts, 'gif') || str(opts, 'sheet')),
      lockstep: true,
      backend: str(opts, 'backend'),
    });
    console.log(
      `planning ${task} (seed ${seed}) with ${planning.preset.name}: ${planning.preset.optimizer.kind}, ${planning.preset.optimizer.candidates} candidates, horizon ${planning.preset.optimizer.horizon}, budget ${planning.preset.budgetMs} ms`,
    );
    const r = await runPlannedEpisode(planning, task, seed, {
      recordGif: Boolean(str(opts, 'gif') || str(opts, 'sheet')),
      log: (l) => console.log(l),
      ...episodeSetup(opts),
    });
    if (r.excluded) {
      planning.dispose();
      throw new UserError(`${task} seed ${seed}: ${r.excluded}; this layout has no goal pictures, pick another --seed`);
    }
    const sorted = [...r.latenciesMs].sort((a, b) => a - b);
    console.log(
      `${r.success ? 'success' : 'failure'}: stage ${r.stagesDone}/${r.stageCount} in ${r.steps} steps; planning latency p50 ${percentile(sorted, 50).toFixed(0)} ms, p95 ${percentile(sorted, 95).toFixed(0)} ms; safe actions ${r.safeActions}`,
    );
    const gif = str(opts, 'gif');
    if (gif) {
      writeGif(gif, r.frames, 500);
      console.log(`wrote ${gif}`);
    }
    const sheet = str(opts, 'sheet');
    if (sheet) {
      writeContactSheet(sheet, r.frames.slice(0, 60), 3);
      console.log(`wrote ${sheet}`);
    }
    planning.dispose();
    return 0;
  },
};
