import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeChoice, initBackend } from '../backend/backends.js';
import { loadStateDict } from '../checkpoint/load.js';
import { computeActionStats, loadActionStats } from '../data/action-stats.js';
import { type ActionStats } from '../core/action-stats.js';
import { actionDim, loadCard } from '../data/card.js';
import { checkFeaturesJson } from '../data/features-json.js';
import { CorruptRecordReport } from '../data/corrupt-report.js';
import { readEpisodes } from '../data/rlds.js';
import { windowStream, type TrainingWindow } from '../data/windows.js';
import { isWorldModelFile, readWorldModel } from '../model/checkpoint-io.js';
import {
  ACTION_CONDITIONINGS,
  CONFIG_NAMES,
  FRAME_PREDICTIONS,
  isConfigName,
  worldModelConfig,
  type ActionConditioning,
  type FramePrediction,
} from '../core/model-config.js';
import { importIntoWorldModel, summariseImport } from '../model/import.js';
import { worldModelInit } from '../model/params.js';
import { readSafetensors } from '../checkpoint/safetensors.js';
import { DEFAULT_ADAMW } from '../train/adamw.js';
import { finetune } from '../train/finetune.js';
import { type WindowSource } from '../train/training-window.js';
import { DEFAULT_OBJECTIVE, type ObjectiveKind } from '../train/objective.js';
import { latestCheckpoint, writeManifest } from '../train/run-files.js';
import { readRunManifest, type RunManifest } from '../core/run-manifest.js';
import { renderValidationStrip } from '../train/val-strip.js';
import { UserError } from '../core/errors.js';
import { availableParallelism } from 'node:os';
import { BACKEND_OPTION, bool, int, num, requireStr, str, UsageError, type Command } from './command.js';
import { DATA_OPTIONS } from './data.js';
import { parseImageSize } from './model.js';

/** Validation windows drawn from the held-out episodes; the loss, imagination error and strip are computed on these. */
const VAL_WINDOWS = 8;

interface Validation {
  windows: TrainingWindow[];
  /** Why validation is off (no windows). */
  off?: string;
  /** Said on stderr when validation is off although the user did not turn it off with --val-every 0. */
  warning?: string;
}

/**
 * The fixed validation set, or why there is none: a split that holds out nothing (--val-fraction 0)
 * or whose held-out episodes are too short or absent (a small dataset) trains without validation.
 */
async function validationWindows(
  s: { valEvery: number; valFraction: number },
  dataDir: string,
  stream: () => AsyncIterable<TrainingWindow>,
): Promise<Validation> {
  if (s.valEvery <= 0) return { windows: [], off: '--val-every 0' };
  if (s.valFraction <= 0) return { windows: [], off: '--val-fraction 0', warning: '--val-fraction 0 holds out no episodes' };
  const windows: TrainingWindow[] = [];
  for await (const w of stream()) {
    windows.push(w);
    if (windows.length >= VAL_WINDOWS) break;
  }
  if (windows.length) return { windows };
  const off = `no held-out episode with a full window at --val-fraction ${s.valFraction}`;
  return {
    windows,
    off,
    warning: `${dataDir}: ${off} (episodes are held out by a hash of their key; a larger --val-fraction holds out more)`,
  };
}

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'train a Self-Flow world model on RT-1-format (RLDS) episodes',
  options: {
    ...DATA_OPTIONS,
    config: { type: 'string', arg: 'NAME', description: `model size: ${CONFIG_NAMES.join('|')}`, default: 'tiny' },
    init: {
      type: 'string',
      arg: 'CKPT',
      description: 'start from an official Self-Flow checkpoint (.pt/.safetensors) or one of ours (imports what matches)',
    },
    out: { type: 'string', arg: 'runs/NAME', description: 'run directory (checkpoints, metrics.jsonl, val/)' },
    steps: { type: 'string', arg: 'N', description: 'optimisation steps', default: '2000' },
    'batch-size': { type: 'string', arg: 'B', description: 'windows per step', default: '8' },
    lr: { type: 'string', arg: 'LR', description: 'peak learning rate (AdamW; warm-up then cosine decay)', default: '3e-4' },
    warmup: { type: 'string', arg: 'N', description: 'warm-up steps', default: '100' },
    'weight-decay': { type: 'string', arg: 'W', description: 'AdamW decoupled weight decay', default: '0' },
    'context-frames': { type: 'string', arg: 'K', description: 'clean context frames per window', default: '2' },
    'future-frames': { type: 'string', arg: 'H', description: 'predicted frames (and actions) per window', default: '2' },
    'image-size': { type: 'string', arg: 'HxW', description: 'training resolution (default per config: tiny 32x40)' },
    'patch-size': { type: 'string', arg: 'P', description: 'patch size in pixels (default per config: tiny 4)' },
    objective: {
      type: 'string',
      arg: 'KIND',
      description: 'selfflow (dual timesteps + self-distillation) or vanilla (the ablation)',
      default: 'selfflow',
    },
    prediction: {
      type: 'string',
      arg: 'KIND',
      description:
        'frame output: residual (clean frame as a change from the last context frame) or velocity (the official convention); default residual, velocity with --init',
    },
    'action-conditioning': {
      type: 'string',
      arg: 'KIND',
      description:
        'adaln (the action also conditions every patch of its frame through adaLN), shift (adaln plus a learned action-dependent attention offset to the previous frame) or token (attention only)',
      default: 'adaln',
    },
    'mask-ratio': { type: 'string', arg: 'R', description: 'fraction of future tokens at the second timestep', default: '0.25' },
    'policy-fraction': { type: 'string', arg: 'P', description: 'fraction of samples with noised actions (policy query)', default: '0.3' },
    'ssl-weight': { type: 'string', arg: 'L', description: 'self-distillation loss weight lambda', default: '1' },
    'time-shift': {
      type: 'string',
      arg: 'S',
      description:
        'noise-level shift t = S*u/(1+(S-1)*u): S > 1 towards noise, S < 1 towards data, 1 = uniform (planning samples from t = 1)',
      default: '1',
    },
    'motion-weight': {
      type: 'string',
      arg: 'M',
      description:
        'extra weight of the residual frame loss on pixels that move between the last context frame and the future (1 + M there, 1 elsewhere; 0 = plain MSE): the gripper is a few pixels of the picture',
      default: '0',
    },
    'ema-decay': { type: 'string', arg: 'D', description: 'teacher EMA decay', default: '0.999' },
    'val-fraction': {
      type: 'string',
      arg: 'F',
      description:
        'fraction of episodes held out for validation (0: none; a split that holds out no full window trains without validation, with a warning)',
      default: '0.1',
    },
    'val-every': { type: 'string', arg: 'N', description: 'steps between validations (0 = never)', default: '250' },
    'checkpoint-every': { type: 'string', arg: 'N', description: 'steps between checkpoints', default: '250' },
    stats: {
      type: 'string',
      arg: 'FILE|DIR',
      description:
        "action statistics JSON from `data stats`, or a run directory whose run.json's statistics to keep (its action policy then acts for this model too) (default: computed now)",
    },
    resume: { type: 'boolean', description: 'continue the run in --out from its latest checkpoint' },
    seed: { type: 'string', arg: 'S', description: 'seed for init, data order and noise', default: '0' },
    workers: {
      type: 'string',
      arg: 'N',
      description:
        'worker threads sharing each batch, each with its own backend (data-parallel; 1 = this thread; at most the batch size is used)',
      default: String(availableParallelism()),
    },
    backend: BACKEND_OPTION,
  },
  details:
    'Every default is printed at start. Ctrl-C (or SIGTERM) saves a checkpoint and exits; --resume continues with the same loss curve, with any --workers.',
  async run(opts) {
    const out = requireStr(opts, 'out');
    const dataDir = requireStr(opts, 'data-dir');
    const resume = bool(opts, 'resume');
    if (resume && !existsSync(join(out, 'run.json'))) throw new UserError(`${out}: nothing to resume (no run.json)`);
    if (!resume && latestCheckpoint(out))
      throw new UserError(`${out}: already holds a run; pass --resume to continue it or choose another --out`);
    const configName = requireStr(opts, 'config');
    if (!isConfigName(configName)) throw new UsageError(`--config must be one of ${CONFIG_NAMES.join(', ')}`);
    const objective = requireStr(opts, 'objective');
    if (objective !== 'selfflow' && objective !== 'vanilla')
      throw new UsageError(`--objective must be selfflow or vanilla, got '${objective}'`);
    const kind: ObjectiveKind = objective;
    const card = loadCard(requireStr(opts, 'data'));
    const fj = checkFeaturesJson(dataDir, card);
    if (fj.problems.length) throw new UserError(fj.problems.join('\n'));
    const seed = int(opts, 'seed', 0);
    const workers = int(opts, 'workers', availableParallelism());
    if (workers < 1) throw new UsageError(`--workers must be >= 1, got ${workers}`);
    const contextFrames = int(opts, 'context-frames', 2);
    const futureFrames = int(opts, 'future-frames', 2);
    if (contextFrames < 1 || futureFrames < 1) throw new UsageError('--context-frames and --future-frames must be >= 1');
    const prior: RunManifest | undefined = resume ? readRunManifest(out) : undefined;
    const patch = str(opts, 'patch-size');
    // Released Self-Flow weights predict velocities; a fresh model learns far faster predicting clean frames.
    const prediction = (str(opts, 'prediction') ?? (str(opts, 'init') ? 'velocity' : 'residual')) as FramePrediction;
    if (!FRAME_PREDICTIONS.includes(prediction))
      throw new UsageError(`--prediction must be ${FRAME_PREDICTIONS.join(' or ')}, got '${prediction}'`);
    const actionConditioning = requireStr(opts, 'action-conditioning') as ActionConditioning;
    if (!ACTION_CONDITIONINGS.includes(actionConditioning))
      throw new UsageError(`--action-conditioning must be ${ACTION_CONDITIONINGS.join(', ')}, got '${actionConditioning}'`);
    const cfg =
      prior?.model ??
      worldModelConfig(configName, {
        ...parseImageSize(str(opts, 'image-size')),
        ...(patch ? { patchSize: int(opts, 'patch-size') } : {}),
        actionDim: actionDim(card),
        maxFrames: contextFrames + futureFrames,
        languageDim: card.language_embedding ? 512 : 0,
        prediction,
        actionConditioning,
      });
    const settings = {
      steps: int(opts, 'steps', 2000),
      batchSize: int(opts, 'batch-size', 8),
      lr: num(opts, 'lr', 3e-4),
      warmup: int(opts, 'warmup', 100),
      emaDecay: num(opts, 'ema-decay', 0.999),
      checkpointEvery: int(opts, 'checkpoint-every', 250),
      valEvery: int(opts, 'val-every', 250),
      valFraction: num(opts, 'val-fraction', 0.1),
      objective: {
        ...DEFAULT_OBJECTIVE,
        kind,
        maskRatio: num(opts, 'mask-ratio', 0.25),
        policyFraction: num(opts, 'policy-fraction', 0.3),
        sslWeight: num(opts, 'ssl-weight', 1),
        timeShift: num(opts, 'time-shift', 1),
        motionWeight: num(opts, 'motion-weight', 0),
      },
      optimizer: { ...DEFAULT_ADAMW, weightDecay: num(opts, 'weight-decay', 0) },
    };
    if (!(settings.valFraction >= 0 && settings.valFraction < 1))
      throw new UsageError(`--val-fraction must lie in [0, 1), got ${settings.valFraction}`);
    if (!(settings.objective.timeShift > 0)) throw new UsageError(`--time-shift must be > 0, got ${settings.objective.timeShift}`);
    const motionWeight = settings.objective.motionWeight;
    if (!(motionWeight >= 0)) throw new UsageError(`--motion-weight must be >= 0, got ${motionWeight}`);
    if (motionWeight > 0 && cfg.prediction !== 'residual')
      throw new UsageError('--motion-weight weights the residual frame loss; it needs --prediction residual');
    const tokenDim = cfg.dit.patch_size ** 2 * cfg.dit.in_channels;
    if (tokenDim > cfg.dit.hidden_size && cfg.prediction !== 'residual') {
      // Measured: tiny at patch 8 (192 values per token, hidden 64) never learned to denoise; its val loss stayed at
      // the mean-prediction level. Velocity prediction must carry the noise of every pixel through the trunk.
      console.error(
        `warning: a patch holds ${tokenDim} values but the trunk is ${cfg.dit.hidden_size} wide; velocity prediction in pixel space needs patch^2 x 3 <= hidden size (use a smaller --patch-size)`,
      );
    }
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    console.error(
      `finetune: data ${card.name} (${dataDir}), config ${configName} (${cfg.imageHeight}x${cfg.imageWidth}, patch ${cfg.dit.patch_size}, action ${cfg.actionDim}), ` +
        `objective ${kind}, prediction ${cfg.prediction ?? 'velocity'}, action conditioning ${cfg.actionConditioning ?? 'token'}, steps ${settings.steps}, batch ${settings.batchSize}, lr ${settings.lr} (warm-up ${settings.warmup}, cosine), ` +
        `context ${contextFrames} + future ${futureFrames} frames, mask ratio ${settings.objective.maskRatio}, policy fraction ${settings.objective.policyFraction}, ` +
        `lambda ${settings.objective.sslWeight}, time shift ${settings.objective.timeShift}, motion weight ${motionWeight}, distillation blocks ${cfg.studentLayer}->${cfg.teacherLayer}, EMA ${settings.emaDecay}, seed ${seed}, workers ${workers}, out ${out}`,
    );
    let stats: ActionStats;
    const skipped = new CorruptRecordReport();
    const statsPath = str(opts, 'stats');
    if (prior) stats = prior.actionStats;
    else if (statsPath) stats = loadActionStats(statsPath, card);
    else {
      console.error('computing action statistics (pass --stats FILE from `data stats` to skip)...');
      stats = await computeActionStats(
        card,
        readEpisodes(dataDir, card, { skipCorrupt: bool(opts, 'skip-corrupt'), onCorrupt: (m) => skipped.add(m) }),
      );
      // The statistics pass reads every record once: the complete list of what training will skip.
      if (skipped.count) console.error(skipped.summary());
    }
    if (stats.names.length !== cfg.actionDim)
      throw new UserError(`action statistics have ${stats.names.length} dimensions, the card's action vector has ${cfg.actionDim}`);
    let init = worldModelInit(cfg, seed);
    const initPath = str(opts, 'init');
    if (initPath && !prior) {
      const isOurs = initPath.endsWith('.safetensors') && isWorldModelFile(readSafetensors(initPath).metadata);
      const source = isOurs ? readWorldModel(initPath).tensors : loadStateDict(initPath).tensors;
      const imported = importIntoWorldModel(source, cfg, seed);
      console.error(summariseImport(imported.report, source));
      init = imported.tensors;
    }
    const skipCorrupt = bool(opts, 'skip-corrupt');
    const skippedBefore = skipped.count;
    // Records first met while training (not seen by a statistics pass) are named as they are skipped.
    const onCorrupt = (m: string) => {
      if (skipped.add(m)) console.error(`skipped: ${m}`);
    };
    const spec = { contextFrames, futureFrames, imageHeight: cfg.imageHeight, imageWidth: cfg.imageWidth };
    const validation = await validationWindows(settings, dataDir, () =>
      windowStream({
        dataDir,
        card,
        spec,
        split: 'val',
        valFraction: settings.valFraction,
        seed,
        stats,
        skipCorrupt,
        onCorrupt,
        allowEmpty: true,
      }),
    );
    if (validation.warning) console.error(`warning: ${validation.warning}; training without validation`);
    if (!prior) {
      writeManifest(out, {
        format: 'selfflow-wm/run@1',
        model: cfg,
        configName,
        data: { card, cardName: card.name, dataDir },
        actionStats: stats,
        contextFrames,
        futureFrames,
        training: {
          ...settings,
          seed,
          init: initPath ?? null,
          validation: validation.windows.length ? { windows: validation.windows.length } : { off: validation.off },
        },
      });
    }
    const data: WindowSource = {
      async *train(skip) {
        let i = 0;
        for await (const w of windowStream({
          dataDir,
          card,
          spec,
          split: 'train',
          valFraction: settings.valFraction,
          seed,
          stats,
          skipCorrupt,
          onCorrupt,
        }))
          if (i++ >= skip) yield w;
      },
      val: async (count) => validation.windows.slice(0, count),
    };
    const abort = new AbortController();
    const onSigint = (signal: NodeJS.Signals) => {
      console.error(
        `\n${signal === 'SIGTERM' ? 'terminated' : 'interrupt'}: finishing this step, saving a checkpoint, then exiting (Ctrl-C again to abort without saving)`,
      );
      abort.abort();
      process.once('SIGINT', () => process.exit(130));
    };
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigint);
    try {
      const r = await finetune(
        {
          runDir: out,
          cfg,
          objective: settings.objective,
          optimizer: settings.optimizer,
          steps: settings.steps,
          batchSize: settings.batchSize,
          lr: settings.lr,
          warmup: settings.warmup,
          emaDecay: settings.emaDecay,
          contextFrames,
          futureFrames,
          seed,
          checkpointEvery: settings.checkpointEvery,
          valEvery: settings.valEvery,
          valWindows: VAL_WINDOWS,
          renderStrip: (trainer, windows, predicted, step, contrast) =>
            renderValidationStrip(out, trainer, windows, predicted, step, contextFrames, futureFrames, contrast),
          init,
          resume,
          workers,
          backend: choice.chosen,
          log: (l) => console.error(l),
        },
        data,
        abort.signal,
      );
      console.log(
        `${r.interrupted ? 'interrupted' : 'finished'} at step ${r.finalStep}${r.valLoss !== undefined ? `, val loss ${r.valLoss.toFixed(4)}` : validation.windows.length ? '' : ' (no validation)'}; run in ${out}${r.interrupted ? ' (continue with --resume)' : ''}`,
      );
    } finally {
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigint);
      if (skipped.count > skippedBefore) console.error(skipped.summary());
    }
  },
};
