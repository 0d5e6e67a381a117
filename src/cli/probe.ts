import { describeChoice, initBackend } from '../backend/backends.js';
import { Progress } from '../util/progress.js';
import { SHIPPED_MODEL, shippedModel } from '../util/package-root.js';
import {
  BACKEND_OPTION,
  bool,
  LAYOUT_SEED_OPTIONS,
  layoutSeeds,
  num,
  requireStr,
  SHADOWS_OPTION,
  str,
  UsageError,
  type Command,
  type ParsedOptions,
} from './command.js';

export const modelProbeCommand: Command = {
  name: 'model probe',
  summary: 'does the world model listen to the action? imagined vs simulated futures of six displacements',
  options: {
    checkpoint: { type: 'string', arg: 'RUN', description: `trained run (default: the shipped ${SHIPPED_MODEL})` },
    policy: {
      type: 'string',
      arg: 'P',
      description: 'planner preset whose rollout settings (flow steps, integrator, action guidance) imagine',
      default: 'wm-cem-fast',
    },
    'flow-steps': { type: 'string', arg: 'K', description: "flow steps per imagined future, instead of the preset's" },
    'action-guidance': {
      type: 'string',
      arg: 'W',
      description: "action guidance w instead of the preset's: v(a) + w (v(a) - v(actions unknown)); 0 is off",
    },
    tasks: {
      type: 'string',
      arg: 'T,T2',
      description: 'tasks whose expert runs give the probed states',
      default: 'drawer-open,pick-can,move-near,drawer-place',
    },
    ...LAYOUT_SEED_OPTIONS,
    displacement: { type: 'string', arg: 'M', description: 'displacement per control step, metres', default: '0.05' },
    shadows: SHADOWS_OPTION,
    json: { type: 'boolean', description: 'print the result as JSON' },
    backend: BACKEND_OPTION,
  },
  details:
    'From states along expert runs (after 2, 6 and 10 expert steps), each of +x, -x, +y, -y, +z, -z is held for two control steps, imagined by the model ' +
    'and played out in the simulator from a snapshot. Accuracy = how often an imagined end frame is closest to the true end frame of its own action; chance is 16.7 %. ' +
    'Layouts come from the seeds: --seed S --seeds N probes S .. S+N-1, --seeds a,b,c exactly those; the output names them.',
  async run(opts) {
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { loadWorldModelPlanning } = await import('../planner/world-model-planner.js');
    const { DEFAULT_PROBE, DEFAULT_PROBE_SEED, PROBE_DIRECTIONS, probeActions, worldModelProbed } = await import('../eval/action-probe.js');
    const { taskByName } = await import('../sim/tasks.js');
    const checkpoint = str(opts, 'checkpoint') ?? shippedModel();
    const tasks = requireStr(opts, 'tasks')
      .split(',')
      .map((t) => t.trim());
    tasks.forEach((t) => taskByName(t));
    const seeds = layoutSeeds(opts, DEFAULT_PROBE_SEED);
    const displacement = num(opts, 'displacement', 0.05);
    if (!(displacement > 0 && displacement <= 0.06))
      throw new UsageError(`--displacement must be in (0, 0.06] m (the action limit), got ${displacement}`);
    const rollout = probeRollout(opts);
    const planning = await loadWorldModelPlanning(requireStr(opts, 'policy'), checkpoint, {
      seed: 0,
      backend: str(opts, 'backend'),
      rollout,
    });
    const { flowSteps, integrator, actionGuidance = 0 } = planning.preset.rollout;
    const o = { ...DEFAULT_PROBE, tasks, seeds, displacement, shadows: bool(opts, 'shadows') };
    const progress = new Progress('probe', tasks.length * seeds.length * o.warmSteps.length);
    const r = await probeActions(worldModelProbed(planning), o, (done) => progress.update(done));
    progress.finish();
    planning.dispose();
    if (bool(opts, 'json')) {
      console.log(JSON.stringify({ checkpoint, shadows: o.shadows, rollout: { flowSteps, integrator, actionGuidance }, ...r }, null, 2));
      return;
    }
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    console.log(
      `${checkpoint}: action discrimination ${Number.isInteger(r.correct) ? r.correct : r.correct.toFixed(1)}/${r.trials} = ${pct(r.accuracy)} (chance 16.7 %) over ${r.states} states, layout seeds ${r.seeds.join(', ')}${o.shadows ? ', with shadows' : ''}`,
    );
    console.log(`  imagined with ${flowSteps} ${integrator} flow step(s), action guidance ${actionGuidance}`);
    console.log(`  per direction: ${PROBE_DIRECTIONS.map((d, i) => `${d} ${pct(r.accuracyByDirection[i]!)}`).join(', ')}`);
    const mistaken = r.confusion.flatMap((row, i) => row.map((v, j) => ({ i, j, v })).filter((c) => c.i !== c.j && c.v >= 0.1));
    if (mistaken.length)
      console.log(
        `  taken for another direction in 10 % of its states or more: ${mistaken.map((c) => `${PROBE_DIRECTIONS[c.i]} for ${PROBE_DIRECTIONS[c.j]} ${pct(c.v)}`).join(', ')}`,
      );
    console.log(`  end-frame MSE: imagined ${r.imaginedMse.toFixed(5)}, nothing moves ${r.noMotionMse.toFixed(5)}`);
    console.log(
      `  true end frames' separation (MSE to the nearest other direction's): ${PROBE_DIRECTIONS.map((d, i) => `${d} ${r.separationByDirection[i]!.toFixed(5)}`).join(', ')}`,
    );
  },
};

/** The probe's replacements for the preset's rollout settings, checked. */
function probeRollout(opts: ParsedOptions): { flowSteps?: number; actionGuidance?: number } {
  const out: { flowSteps?: number; actionGuidance?: number } = {};
  if (str(opts, 'flow-steps') !== undefined) {
    const k = num(opts, 'flow-steps');
    if (!(Number.isInteger(k) && k >= 1 && k <= 100))
      throw new UsageError(`--flow-steps must be an integer in [1, 100], got ${str(opts, 'flow-steps')}`);
    out.flowSteps = k;
  }
  if (str(opts, 'action-guidance') !== undefined) {
    const w = num(opts, 'action-guidance');
    if (!(w >= 0 && w <= 10)) throw new UsageError(`--action-guidance must be a number in [0, 10], got ${str(opts, 'action-guidance')}`);
    out.actionGuidance = w;
  }
  return out;
}
