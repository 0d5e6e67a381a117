import { join } from 'node:path';
import { describeChoice, initBackend } from '../backend/backends.js';
import { Progress } from '../util/progress.js';
import { packageRoot } from '../util/package-root.js';
import { BACKEND_OPTION, bool, int, num, requireStr, str, UsageError, type Command } from './command.js';
import { SHIPPED_MODEL } from './demo.js';

export const modelProbeCommand: Command = {
  name: 'model probe',
  summary: 'does the world model listen to the action? imagined vs simulated futures of six displacements',
  options: {
    checkpoint: { type: 'string', arg: 'RUN', description: `trained run (default: the shipped ${SHIPPED_MODEL})` },
    policy: { type: 'string', arg: 'P', description: 'planner preset whose rollout settings (flow steps, integrator) imagine', default: 'wm-cem-fast' },
    tasks: { type: 'string', arg: 'T,T2', description: 'tasks whose expert runs give the probed states', default: 'drawer-open,pick-can,move-near,drawer-place' },
    seeds: { type: 'string', arg: 'N', description: 'episode seeds per task (100, 101, ...)', default: '3' },
    displacement: { type: 'string', arg: 'M', description: 'displacement per control step, metres', default: '0.05' },
    json: { type: 'boolean', description: 'print the result as JSON' },
    backend: BACKEND_OPTION,
  },
  details:
    'From states along expert runs (after 2, 6 and 10 expert steps), each of +x, -x, +y, -y, +z, -z is held for two control steps, imagined by the model ' +
    'and played out in the simulator from a snapshot. Accuracy = how often an imagined end frame is closest to the true end frame of its own action; chance is 16.7 %.',
  async run(opts) {
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { loadWorldModelPlanning } = await import('../planner/world-model-planner.js');
    const { DEFAULT_PROBE, PROBE_DIRECTIONS, probeActions, worldModelProbed } = await import('../eval/action-probe.js');
    const { taskByName } = await import('../sim/tasks.js');
    const checkpoint = str(opts, 'checkpoint') ?? join(packageRoot(), SHIPPED_MODEL);
    const tasks = requireStr(opts, 'tasks').split(',').map((t) => t.trim());
    tasks.forEach((t) => taskByName(t));
    const seeds = int(opts, 'seeds', 3);
    if (seeds < 1) throw new UsageError('--seeds must be >= 1');
    const displacement = num(opts, 'displacement', 0.05);
    if (!(displacement > 0 && displacement <= 0.06)) throw new UsageError(`--displacement must be in (0, 0.06] m (the action limit), got ${displacement}`);
    const planning = await loadWorldModelPlanning(requireStr(opts, 'policy'), checkpoint, { seed: 0, backend: str(opts, 'backend') });
    const o = { ...DEFAULT_PROBE, tasks, seeds: Array.from({ length: seeds }, (_, i) => 100 + i), displacement };
    const progress = new Progress('probe', tasks.length * seeds * o.warmSteps.length);
    const r = await probeActions(worldModelProbed(planning), o, (done) => progress.update(done));
    progress.finish();
    planning.dispose();
    if (bool(opts, 'json')) {
      console.log(JSON.stringify({ checkpoint, ...r }, null, 2));
      return;
    }
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    console.log(`${checkpoint}: action discrimination ${Number.isInteger(r.correct) ? r.correct : r.correct.toFixed(1)}/${r.trials} = ${pct(r.accuracy)} (chance 16.7 %) over ${r.states} states`);
    console.log(`  per direction: ${PROBE_DIRECTIONS.map((d, i) => `${d} ${pct(r.accuracyByDirection[i]!)}`).join(', ')}`);
    console.log(`  end-frame MSE: imagined ${r.imaginedMse.toFixed(5)}, nothing moves ${r.noMotionMse.toFixed(5)}`);
  },
};
