import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeChoice, initBackend } from '../backend/backends.js';
import { percentile } from '../util/stats.js';
import { writeGif } from '../image/gif.js';
import { UserError } from '../core/errors.js';
import { SHIPPED_MODEL, shippedModel } from '../util/package-root.js';
import { DEFAULT_PRESET } from '../planner/policy-name.js';
import { PLAN_WORKERS_OPTION, planWorkers } from './plan-workers.js';
import { BACKEND_OPTION, EPISODE_SETUP_OPTIONS, episodeSetup, int, requireStr, str, type Command } from './command.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'plan one multi-step simulated episode with the shipped tiny world model and write a GIF',
  options: {
    task: { type: 'string', arg: 'T', description: 'simulator task', default: 'drawer-place' },
    seed: { type: 'string', arg: 'S', description: 'episode seed', default: '0' },
    policy: { type: 'string', arg: 'P', description: 'planner preset', default: DEFAULT_PRESET },
    gif: { type: 'string', arg: 'FILE.gif', description: 'where to write the episode GIF', default: 'demo.gif' },
    checkpoint: { type: 'string', arg: 'RUN', description: `model to plan with (default: the shipped ${SHIPPED_MODEL})` },
    ...EPISODE_SETUP_OPTIONS,
    backend: BACKEND_OPTION,
    'plan-workers': PLAN_WORKERS_OPTION,
  },
  async run(opts) {
    const checkpoint = str(opts, 'checkpoint') ?? shippedModel();
    if (!existsSync(join(checkpoint, 'run.json'))) throw new UserError(`${checkpoint}: no trained model there (run.json missing)`);
    const choice = await initBackend(str(opts, 'backend'));
    console.log(describeChoice(choice));
    const { loadWorldModelPlanning } = await import('../planner/world-model-planner.js');
    const { runPlannedEpisode } = await import('../planner/episode.js');
    const { describeGoalReads } = await import('../planner/goal-reads.js');
    const task = requireStr(opts, 'task');
    const seed = int(opts, 'seed', 0);
    const planning = await loadWorldModelPlanning(requireStr(opts, 'policy'), checkpoint, {
      seed,
      imagine: true,
      lockstep: true,
      backend: str(opts, 'backend'),
      planWorkers: planWorkers(opts),
      log: (l) => console.log(l),
    });
    const t0 = Date.now();
    console.log(`demo: ${task} (seed ${seed}) with ${checkpoint} and preset ${planning.preset.name}`);
    const goalReads = new Set<string>();
    const r = await runPlannedEpisode(planning, task, seed, {
      recordGif: true,
      goalReads,
      log: (l) => console.log(l),
      ...episodeSetup(opts),
    });
    if (r.excluded) {
      planning.dispose();
      throw new UserError(`${task} seed ${seed}: ${r.excluded}; this layout has no goal pictures, pick another --seed`);
    }
    const sorted = [...r.latenciesMs].sort((a, b) => a - b);
    console.log(
      `${r.success ? 'success' : 'failure'}: stage ${r.stagesDone}/${r.stageCount} after ${r.steps} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s; planning latency p50 ${percentile(sorted, 50).toFixed(0)} ms, p95 ${percentile(sorted, 95).toFixed(0)} ms`,
    );
    const reading = planning.goalReading;
    const handover = planning.preset.handover
      ? `, the gripper was where the ${reading ? 'state reader sees it in the picture' : 'picture recorded it'}`
      : '';
    console.log(
      `goal: ${describeGoalReads(goalReads)}; the episode runner showed one storyboard picture at a time, the next once the camera looked like the current one${handover} or the robot reported a stage done`,
    );
    if (reading)
      console.log(
        `goal states: the gripper positions and open/closed states the planner aimed for were read off the pictures (taken at ${reading.reader.cfg.imageHeight}x${reading.reader.cfg.imageWidth}) by the learned state reader in ${checkpoint}`,
      );
    const grasp = planning.preset.policyGrasp;
    if (grasp) {
      const inPlace = grasp.inPlace ? ', or at the gripper at the end of a descent' : '';
      const words = grasp.instructionWords;
      const which = words ? ` of instructions naming ${words.map((w) => `'${w}'`).join(' or ')}` : '';
      const rest = words ? '; the search planned the other grasps, towards where the state reader sees the gripper' : '';
      console.log(
        `grasps: the pictures of a grasp${which} (the gripper closed, or straight below it${inPlace}, while the fingers were open) went to the action policy in ${checkpoint}, which reads the current picture, the robot's state and the instruction, never the goal${rest}`,
      );
    }
    if (reading && planning.preset.goalPriors?.setDown)
      console.log(
        `set-downs: the preset aims a picture that comes near the height where the fingers closed, while they carry something, along its camera ray at that height (the camera's pose: ${checkpoint}/camera.json)`,
      );
    const gif = requireStr(opts, 'gif');
    writeGif(gif, r.frames, 500);
    console.log(`wrote ${gif} (real camera | imagined future of the chosen plan | goal)`);
    planning.dispose();
  },
};
