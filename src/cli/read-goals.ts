import { describeChoice, initBackend } from '../backend/backends.js';
import { Progress } from '../util/progress.js';
import { SHIPPED_MODEL, shippedModel } from '../util/package-root.js';
import {
  ALL_TASKS,
  BACKEND_OPTION,
  bool,
  CAMERA_JPEG_OPTION,
  cameraJpegOption,
  goalsOption,
  GOALS_OPTION,
  int,
  LAYOUT_SEED_OPTIONS,
  layoutSeeds,
  requireStr,
  SHADOWS_OPTION,
  str,
  UsageError,
  type Command,
} from './command.js';
import { parseImageSize } from './model.js';

export const modelReadGoalsCommand: Command = {
  name: 'model read-goals',
  summary: "how far the state reader's reading of goal pictures is from the state recorded with them",
  options: {
    checkpoint: {
      type: 'string',
      arg: 'DIR',
      description: `model directory whose state-reader.safetensors reads the pictures (default: the shipped ${SHIPPED_MODEL})`,
    },
    reader: { type: 'string', arg: 'PATH', description: "a state reader file to read with instead of the model directory's" },
    tasks: { type: 'string', arg: 'T,T2', description: 'tasks whose storyboards are read', default: ALL_TASKS },
    ...LAYOUT_SEED_OPTIONS,
    goals: GOALS_OPTION,
    'image-size': {
      type: 'string',
      arg: 'HxW',
      description:
        "the size goal pictures are rendered at (default: as plan and eval take them, 64x80 or the reader's size where it reads more pixels)",
    },
    shadows: SHADOWS_OPTION,
    'camera-jpeg': CAMERA_JPEG_OPTION,
    worst: { type: 'string', arg: 'N', description: 'list the N readings farthest off', default: '5' },
    json: { type: 'boolean', description: 'print every reading and the summaries as JSON' },
    backend: BACKEND_OPTION,
  },
  details:
    "For each task and seed the scripted expert's storyboard is rendered, as `plan` and `eval` hand it to the planner; the reader sees only the pixels. " +
    'Prints, per task and over all, the distance from the recorded gripper position to the read one (mean, median, 90th percentile, max) and how often the read ' +
    'open/closed differs from the expert\'s gripper command in that picture. `wm` (goalState "read") aims at these readings.',
  async run(opts) {
    const { taskByName } = await import('../sim/tasks.js');
    const granularity = goalsOption(opts);
    const tasks = requireStr(opts, 'tasks')
      .split(',')
      .map((t) => t.trim());
    tasks.forEach((t) => taskByName(t));
    const seeds = layoutSeeds(opts, 100);
    const sizeArg = str(opts, 'image-size');
    const size = sizeArg === undefined ? undefined : parseImageSize(sizeArg);
    if (size && !('imageHeight' in size)) throw new UsageError('--image-size needs HxW');
    const camera = { shadows: bool(opts, 'shadows'), jpegQuality: cameraJpegOption(opts) || undefined };
    const worst = int(opts, 'worst');
    if (worst < 0) throw new UsageError(`--worst must be >= 0, got ${worst}`);
    if (str(opts, 'reader') !== undefined && str(opts, 'checkpoint') !== undefined)
      throw new UsageError('give either --checkpoint DIR (its state reader) or --reader PATH, not both');
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const { loadStateReader } = await import('../model/state-reader.js');
    const { stateReaderPath } = await import('../planner/goal-state-reading.js');
    const { readGoalPictures, summarizeGoalReads, worstGoalReads } = await import('../eval/goal-reads.js');
    const path = str(opts, 'reader') ?? stateReaderPath(str(opts, 'checkpoint') ?? shippedModel());
    const reader = loadStateReader(path);
    const { goalPictureSize } = await import('../planner/episode.js');
    const shown = size && 'imageHeight' in size ? { h: size.imageHeight, w: size.imageWidth } : goalPictureSize(reader.cfg);
    const progress = new Progress('read-goals', tasks.length * seeds.length);
    let reads;
    const excluded: { task: string; seed: number; why: string }[] = [];
    try {
      reads = await readGoalPictures(
        (p) => reader.read(p),
        tasks,
        seeds,
        { height: shown.h, width: shown.w, granularity, camera },
        (done) => progress.update(done),
        (task, seed, why) => excluded.push({ task, seed, why }),
      );
    } finally {
      progress.finish();
      reader.dispose();
    }
    const perTask = tasks.map((task) => ({ task, ...summarizeGoalReads(reads.filter((r) => r.task === task)) }));
    const all = summarizeGoalReads(reads);
    if (bool(opts, 'json')) {
      console.log(
        JSON.stringify(
          {
            reader: path,
            imageSize: `${shown.h}x${shown.w}`,
            shadows: camera.shadows,
            cameraJpeg: camera.jpegQuality ?? 0,
            seeds,
            goals: granularity,
            all,
            perTask,
            excluded,
            reads,
          },
          null,
          2,
        ),
      );
      return;
    }
    const cm = (m: number) => (100 * m).toFixed(2);
    const line = (name: string, s: typeof all) =>
      `${name.padEnd(14)} ${String(s.pictures).padStart(5)}  ${cm(s.mean).padStart(6)} ${cm(s.median).padStart(6)} ${cm(s.p90).padStart(6)} ${cm(s.max).padStart(6)} ${cm(s.alongMean).padStart(6)} ${cm(s.acrossMean).padStart(6)}   ${s.stateMisreads}/${s.stateChecked}`;
    console.log(
      `${path}: goal pictures (${granularity}, ${shown.h}x${shown.w}${camera.shadows ? ', with shadows' : ''}${camera.jpegQuality ? `, through JPEG quality ${camera.jpegQuality}` : ''}) on layout seeds ${seeds.join(', ')}`,
    );
    console.log(
      `${'task'.padEnd(14)} ${'pics'.padStart(5)}  ${'mean'.padStart(6)} ${'median'.padStart(6)} ${'p90'.padStart(6)} ${'max'.padStart(6)} ${'along'.padStart(6)} ${'across'.padStart(6)}   open/closed misread`,
    );
    for (const t of perTask) console.log(line(t.task, t));
    console.log(line('all', all));
    console.log(
      '  (position errors in cm; along and across: mean sizes of the parts along and across the camera ray; misreads against the pictures with a known gripper command)',
    );
    for (const x of excluded) console.log(`  excluded: ${x.task} seed ${x.seed}: ${x.why}`);
    for (const r of worstGoalReads(reads, worst))
      console.log(
        `  farthest: ${r.task} seed ${r.seed} '${r.name}' ${cm(r.error)} cm (${cm(r.along)} along the ray)${r.commanded && (r.commanded === 'closed') !== r.readClosed ? `, read ${r.readClosed ? 'closed' : 'open'}` : ''}`,
      );
  },
};
