import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeChoice, initBackend } from '../backend/backends.js';
import { readRunManifest } from '../core/run-manifest.js';
import { UserError } from '../core/errors.js';
import { ACTION_POLICY_FILE, DEFAULT_ACTION_POLICY, readActionPolicyFile, writeActionPolicy } from '../model/action-policy.js';
import { checkDirs, checkedDataDirs, DATA_OPTIONS } from './data.js';
import { BACKEND_OPTION, bool, int, num, requireStr, str, UsageError, type Command, type ParsedOptions } from './command.js';
import { checkPatchDivides, parseImageSize } from './model.js';
import { CHECKPOINT_EVERY_OPTION, runFingerprint, smallNetRun } from './small-net-run.js';

export const modelTrainPolicyCommand: Command = {
  name: 'model train-policy',
  summary: "train the model's action policy: chunks of actions from the current picture, the robot state and the instruction",
  options: {
    ...DATA_OPTIONS,
    'data-dir': { type: 'string', arg: 'DIR[,DIR2]', description: 'directories holding the TFRecord shards' },
    model: {
      type: 'string',
      arg: 'DIR',
      description: `the world model's run directory: the policy acts in its normalised actions (run.json's statistics) and is written to DIR/${ACTION_POLICY_FILE}`,
    },
    out: { type: 'string', arg: 'PATH', description: `write the policy here instead (a file, or a directory: DIR/${ACTION_POLICY_FILE})` },
    init: {
      type: 'string',
      arg: 'PATH',
      description:
        'start from this action policy file instead of random weights (fine-tuning, e.g. on a DAgger round); its sizes and state normalisation are kept',
    },
    steps: { type: 'string', arg: 'N', description: 'optimizer steps', default: '6000' },
    'batch-size': { type: 'string', arg: 'N', description: 'samples per step', default: '64' },
    lr: { type: 'string', arg: 'X', description: 'peak learning rate (warm-up, then cosine decay)', default: '0.001' },
    chunk: { type: 'string', arg: 'N', description: 'actions per chunk the policy samples', default: '4' },
    shift: { type: 'string', arg: 'PX', description: 'random shift of training pictures, pixels each way (0: none)', default: '3' },
    'successful-only': {
      type: 'boolean',
      description: "learn only from episodes whose last reward is positive (RT-1's and `sim collect`'s success)",
    },
    relabelled: {
      type: 'string',
      arg: 'DIR[,DIR2]',
      description: "expert-relabelled episodes (`sim dagger`): every action is the expert's label, so each is kept whatever its outcome",
    },
    'val-fraction': {
      type: 'string',
      arg: 'X',
      description: 'share of episodes held out (by key) for the reported errors',
      default: '0.1',
    },
    'image-size': { type: 'string', arg: 'HxW', description: 'the size the policy sees pictures at', default: '64x80' },
    patch: {
      type: 'string',
      arg: 'N',
      description: `side of the square patches the convolutional stem cuts the picture into (must divide HxW; a new policy only) (default: ${DEFAULT_ACTION_POLICY.patch})`,
    },
    channels: {
      type: 'string',
      arg: 'N',
      description: `the convolutional trunk's channels (a new policy only) (default: ${DEFAULT_ACTION_POLICY.channels})`,
    },
    hidden: {
      type: 'string',
      arg: 'N',
      description: `width of the condition and denoising layers (a new policy only) (default: ${DEFAULT_ACTION_POLICY.hidden})`,
    },
    'full-opening': {
      type: 'string',
      arg: 'M',
      description: "the fingers' widest opening in metres (converts the robot's finger opening to closedness; the simulator's is 0.1)",
      default: '0.1',
    },
    seed: { type: 'string', arg: 'S', description: 'initialisation, noise and batch order', default: '0' },
    'checkpoint-every': CHECKPOINT_EVERY_OPTION,
    json: { type: 'boolean', description: 'print the validation figures as JSON' },
    backend: BACKEND_OPTION,
  },
  details:
    'Learns by flow matching from the recorded actions, with base_pose_tool_reached (x, y, z) and gripper_closed as the robot state, which RT-1 episodes and `sim collect` record with every picture. Presets with proposer "policy" (wm-policy, wm) sample it. Prints the held-out episodes\' figures.',
  async run(opts) {
    const { card, dirs } = checkedDataDirs(opts);
    const relabelled = (str(opts, 'relabelled') ?? '').split(',').filter(Boolean);
    checkDirs(card, relabelled);
    const modelDir = requireStr(opts, 'model');
    const stats = readRunManifest(modelDir).actionStats;
    const outArg = str(opts, 'out') || modelDir;
    const out = existsSync(outArg) && statSync(outArg).isDirectory() ? join(outArg, ACTION_POLICY_FILE) : outArg;
    const size = parseImageSize(str(opts, 'image-size'));
    if (!('imageHeight' in size)) throw new UsageError('--image-size needs HxW');
    const [steps, batchSize, chunk, shift] = ['steps', 'batch-size', 'chunk', 'shift'].map((k) => int(opts, k));
    if (steps! < 1 || batchSize! < 1 || chunk! < 1) throw new UsageError('--steps, --batch-size and --chunk must be >= 1');
    if (shift! < 0) throw new UsageError('--shift must be >= 0');
    const valFraction = num(opts, 'val-fraction');
    if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`--val-fraction must be in [0, 1), got ${valFraction}`);
    const initPath = str(opts, 'init');
    const net = networkSizes(opts, size.imageHeight, size.imageWidth, initPath);
    const init = initPath ? { name: initPath, ...readActionPolicyFile(initPath) } : undefined;
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { policySamples, trainActionPolicy } = await import('../train/action-policy-training.js');
    let corrupt = 0;
    const samples = await policySamples({
      dataDirs: dirs,
      relabelledDirs: relabelled,
      card,
      stats,
      height: size.imageHeight,
      width: size.imageWidth,
      chunk: chunk!,
      valFraction,
      successfulOnly: bool(opts, 'successful-only'),
      skipCorrupt: bool(opts, 'skip-corrupt'),
      onCorrupt: (m) => {
        corrupt++;
        console.error(`skipped: ${m}`);
      },
    });
    const held = samples.val.filter(Boolean).length;
    const dropped = samples.episodes.unsuccessful ? `, ${samples.episodes.unsuccessful} unsuccessful episode(s) left out` : '';
    const labelled = samples.episodes.relabelled ? ` (${samples.episodes.relabelled} expert-relabelled)` : '';
    console.error(
      `action policy: ${samples.episodes.kept} episodes${labelled}, ${samples.pixels.length - held} training steps, ${held} held out${dropped}` +
        (corrupt ? `, ${corrupt} corrupt record(s) skipped` : ''),
    );
    const run = smallNetRun('train-policy', steps!, out, int(opts, 'checkpoint-every'), runFingerprint(opts, samples.pixels.length));
    const r = await trainActionPolicy(samples, stats, {
      steps: steps!,
      batchSize: batchSize!,
      lr: num(opts, 'lr'),
      seed: int(opts, 'seed'),
      fullOpening: num(opts, 'full-opening'),
      shift: shift!,
      init,
      net,
      resume: run.resume,
      onProgress: run.onProgress,
    });
    run.finish();
    if (!Number.isFinite(r.errors.flowLoss))
      throw new UserError('action policy: training diverged (held-out loss is not finite); try a lower --lr');
    writeActionPolicy(out, r.cfg, r.tensors, {
      data: dirs.join(','),
      relabelled: relabelled.join(','),
      steps: String(steps),
      model: modelDir,
      ...(initPath ? { init: initPath } : {}),
    });
    run.written();
    const e = r.errors;
    if (bool(opts, 'json')) console.log(JSON.stringify({ out, errors: e }, null, 2));
    else {
      console.log(`wrote ${out}`);
      const dims = r.cfg.actionNames.map((n, i) => `${n} ${e.firstAction[i]!.toFixed(3)}`).join(', ');
      console.log(
        `held-out${held ? '' : ' (none held out: training steps)'} on ${e.samples} steps: flow loss ${e.flowLoss.toFixed(4)}; ` +
          `first action's mean |error| in normalised units (range -1..1): ${dims}`,
      );
    }
  },
};

/** `--patch`, `--channels` and `--hidden` of a new policy; a policy started from `--init` keeps that file's sizes. */
function networkSizes(opts: ParsedOptions, height: number, width: number, initPath: string | undefined) {
  const given = (['patch', 'channels', 'hidden'] as const).filter((k) => str(opts, k) !== undefined);
  if (initPath && given.length)
    throw new UsageError(`--${given.join(', --')} cannot be combined with --init: a fine-tuned policy keeps ${initPath}'s sizes`);
  const net = Object.fromEntries(given.map((k) => [k, int(opts, k)]));
  for (const [k, v] of Object.entries(net)) if (!(v >= 1)) throw new UsageError(`--${k} must be >= 1, got ${v}`);
  const patch = net.patch ?? DEFAULT_ACTION_POLICY.patch;
  checkPatchDivides(patch, height, width);
  return net;
}
