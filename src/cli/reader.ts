import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeChoice, initBackend } from '../backend/backends.js';
import { STATE_READER_FILE, writeStateReader } from '../model/state-reader.js';
import { checkedDataDirs, DATA_OPTIONS } from './data.js';
import { BACKEND_OPTION, bool, int, num, requireStr, str, UsageError, type Command } from './command.js';
import { checkPatchDivides, parseImageSize } from './model.js';
import { CHECKPOINT_EVERY_OPTION, runFingerprint, smallNetRun } from './small-net-run.js';

export const modelTrainReaderCommand: Command = {
  name: 'model train-reader',
  summary: "train the state reader that reads the gripper's position and closedness off a picture (for goal pictures)",
  options: {
    ...DATA_OPTIONS,
    'data-dir': { type: 'string', arg: 'DIR[,DIR2]', description: 'directories holding the TFRecord shards' },
    out: {
      type: 'string',
      arg: 'PATH',
      description: `where to write the reader: a file, or a model directory (then DIR/${STATE_READER_FILE}, where presets with goalState "read" look)`,
    },
    steps: { type: 'string', arg: 'N', description: 'optimizer steps', default: '3000' },
    'batch-size': { type: 'string', arg: 'N', description: 'pictures per step', default: '64' },
    lr: { type: 'string', arg: 'X', description: 'peak learning rate (warm-up, then cosine decay)', default: '0.002' },
    stride: { type: 'string', arg: 'N', description: 'keep every N-th step of each episode', default: '1' },
    'val-fraction': {
      type: 'string',
      arg: 'X',
      description: 'share of episodes held out (by key) for the reported errors',
      default: '0.1',
    },
    'image-size': {
      type: 'string',
      arg: 'HxW',
      description: 'the size the reader reads pictures at (the shipped reader: 128x160 with --patch 8 --channels 64)',
      default: '64x80',
    },
    patch: {
      type: 'string',
      arg: 'N',
      description: 'side of the square patches the stem cuts the picture into (must divide HxW); 8 at 128x160 costs what 4 costs at 64x80',
      default: '4',
    },
    channels: { type: 'string', arg: 'N', description: "the convolutional trunk's channels", default: '32' },
    'full-opening': {
      type: 'string',
      arg: 'M',
      description: "the fingers' widest opening in metres (converts closedness to an opening; the simulator's is 0.1)",
      default: '0.1',
    },
    seed: { type: 'string', arg: 'S', description: 'initialisation and batch order', default: '0' },
    'checkpoint-every': CHECKPOINT_EVERY_OPTION,
    json: { type: 'boolean', description: 'print the validation errors as JSON' },
    backend: BACKEND_OPTION,
  },
  details:
    "Learns from base_pose_tool_reached (x, y, z) and gripper_closed, which RT-1 episodes and `sim collect` record with every picture. Prints the held-out episodes' errors.",
  async run(opts) {
    const { card, dirs } = checkedDataDirs(opts);
    const outArg = requireStr(opts, 'out');
    const out = existsSync(outArg) && statSync(outArg).isDirectory() ? join(outArg, STATE_READER_FILE) : outArg;
    const size = parseImageSize(str(opts, 'image-size'));
    if (!('imageHeight' in size)) throw new UsageError('--image-size needs HxW');
    const steps = int(opts, 'steps');
    const batchSize = int(opts, 'batch-size');
    const stride = int(opts, 'stride');
    if (steps < 1 || batchSize < 1 || stride < 1) throw new UsageError('--steps, --batch-size and --stride must be >= 1');
    const patch = int(opts, 'patch');
    const channels = int(opts, 'channels');
    if (patch < 1 || channels < 1) throw new UsageError('--patch and --channels must be >= 1');
    checkPatchDivides(patch, size.imageHeight, size.imageWidth);
    const valFraction = num(opts, 'val-fraction');
    if (!(valFraction >= 0 && valFraction < 1)) throw new UsageError(`--val-fraction must be in [0, 1), got ${valFraction}`);
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { readerSamples, trainStateReader } = await import('../train/state-reader-training.js');
    let corrupt = 0;
    const samples = await readerSamples({
      dataDirs: dirs,
      card,
      height: size.imageHeight,
      width: size.imageWidth,
      valFraction,
      stride,
      skipCorrupt: bool(opts, 'skip-corrupt'),
      onCorrupt: (m) => {
        corrupt++;
        console.error(`skipped: ${m}`);
      },
    });
    const held = samples.val.filter(Boolean).length;
    console.error(
      `state reader: ${samples.pixels.length - held} training pictures, ${held} held out${corrupt ? `, ${corrupt} corrupt record(s) skipped` : ''}`,
    );
    const run = smallNetRun('train-reader', steps, out, int(opts, 'checkpoint-every'), runFingerprint(opts, samples.pixels.length));
    const r = await trainStateReader(samples, {
      steps,
      batchSize,
      lr: num(opts, 'lr'),
      seed: int(opts, 'seed'),
      fullOpening: num(opts, 'full-opening'),
      patch,
      channels,
      resume: run.resume,
      onProgress: run.onProgress,
    });
    run.finish();
    writeStateReader(out, r.cfg, r.tensors, { data: dirs.join(','), steps: String(steps) });
    run.written();
    const e = r.errors;
    if (bool(opts, 'json')) console.log(JSON.stringify({ out, errors: e }, null, 2));
    else {
      const cm = (v: number) => (100 * v).toFixed(1);
      console.log(`wrote ${out}`);
      console.log(
        `held-out error on ${e.pictures} pictures${held ? '' : ' (none held out: training pictures)'}: x ${cm(e.position[0])} / y ${cm(e.position[1])} / z ${cm(e.position[2])} cm mean, ` +
          `${cm(e.distanceMedian)} cm median and ${cm(e.distanceP90)} cm 90th percentile distance, closedness ${e.closedness.toFixed(3)}`,
      );
    }
  },
};
