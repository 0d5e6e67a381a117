/** What every CLI command declares: its flags (for parsing and --help) and its action. */
import { COLLECT_JPEG_QUALITY } from '../image/jpeg.js';
import type { EpisodeSetup } from '../planner/episode.js';
export type OptionType = 'string' | 'boolean';

export interface OptionSpec {
  type: OptionType;
  description: string;
  default?: string | boolean;
  /** Placeholder shown in help, e.g. `N` or `DIR`. */
  arg?: string;
  short?: string;
  multiple?: boolean;
}

export type Options = Record<string, OptionSpec>;
export type ParsedOptions = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** Words after `selfflow-wm`, e.g. `model info`. */
  name: string;
  summary: string;
  /** Positional arguments shown in usage, e.g. `[FILE]`. */
  positionals?: string;
  options: Options;
  /** Longer help text printed after the flags. */
  details?: string;
  /** Runs as a ROS 2 node: accepts the `--ros-args ... [--]` section launch_ros appends (see src/robot/ros-args.ts). */
  rosNode?: boolean;
  run(opts: ParsedOptions, positionals: string[]): Promise<number | void>;
}

/** A user-facing error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

export function str(opts: ParsedOptions, key: string): string | undefined {
  const v = opts[key];
  if (v === undefined || typeof v === 'boolean') return undefined;
  return Array.isArray(v) ? v[v.length - 1] : v;
}

export function requireStr(opts: ParsedOptions, key: string): string {
  const v = str(opts, key);
  if (v === undefined || v === '') throw new UsageError(`missing required flag --${key}`);
  return v;
}

export function num(opts: ParsedOptions, key: string, fallback?: number): number {
  const v = str(opts, key);
  if (v === undefined) {
    if (fallback === undefined) throw new UsageError(`missing required flag --${key}`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${key} expects a number, got '${v}'`);
  return n;
}

export function int(opts: ParsedOptions, key: string, fallback?: number): number {
  const n = num(opts, key, fallback);
  if (!Number.isInteger(n)) throw new UsageError(`--${key} expects an integer, got '${n}'`);
  return n;
}

export function bool(opts: ParsedOptions, key: string): boolean {
  return opts[key] === true;
}

/** Shared --backend flag for commands that run tensors. */
export const BACKEND_OPTION: OptionSpec = {
  type: 'string',
  arg: 'NAME',
  description: 'tensor backend: auto|cuda|tfjs-node|wasm+blas|wasm|webgpu|cpu (default $SELFFLOW_BACKEND or auto)',
};

/** The simulator's six tasks (src/sim/tasks.ts), the default `--tasks` of eval and model read-goals. */
export const ALL_TASKS = 'pick-can,move-near,drawer-open,drawer-close,drawer-place,drawer-chain';

/** `--seed S --seeds N|a,b,c`: the simulator layouts a measurement runs on (read with layoutSeeds). */
export const LAYOUT_SEED_OPTIONS: Options = {
  seed: {
    type: 'string',
    arg: 'S',
    description: 'first layout seed: S, S+1, ... (default 100; pick seeds no training data or tuning used)',
  },
  seeds: {
    type: 'string',
    arg: 'N|a,b,c',
    description: 'how many layout seeds per task from --seed, or the seeds themselves as a list',
    default: '3',
  },
};

const SEED_LIMIT = 2 ** 31 - 1;

function seedValue(text: string, what: string): number {
  const v = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(v) || v > SEED_LIMIT)
    throw new UsageError(`${what} must be an integer seed in [0, ${SEED_LIMIT}], got '${text}'`);
  return v;
}

/** The layout seeds of LAYOUT_SEED_OPTIONS: `--seeds a,b,c` as listed, or `--seeds N` consecutive seeds from `--seed` (default `first`). */
export function layoutSeeds(opts: ParsedOptions, first: number): number[] {
  const list = requireStr(opts, 'seeds').trim();
  const start = str(opts, 'seed');
  if (list.includes(',')) {
    if (start !== undefined) throw new UsageError('give either --seed S (with --seeds N, a count) or --seeds a,b,c (a list), not both');
    const seeds = list.split(',').map((t) => seedValue(t.trim(), '--seeds'));
    if (new Set(seeds).size !== seeds.length) throw new UsageError(`--seeds lists a seed twice: ${list}`);
    return seeds;
  }
  const count = seedValue(list, '--seeds');
  if (count < 1) throw new UsageError('--seeds must be >= 1');
  const s = start === undefined ? first : seedValue(start.trim(), '--seed');
  if (s + count - 1 > SEED_LIMIT) throw new UsageError(`--seed ${s} with --seeds ${count} runs past the largest seed ${SEED_LIMIT}`);
  return Array.from({ length: count }, (_, i) => s + i);
}

/** Shared --shadows flag of the commands that render the simulator (sim collect, plan, eval). */
export const SHADOWS_OPTION: OptionSpec = {
  type: 'boolean',
  description: 'render shadows, a height cue for the single head camera (the shipped models were trained without them)',
};

/** Shared --goals flag of the simulated-episode commands (plan, eval, demo). */
export const GOALS_OPTION: OptionSpec = {
  type: 'string',
  arg: 'stage|phase|dense',
  description: 'goal pictures from an expert replay: one per task stage, the end of each expert phase, or every 2nd expert frame',
  default: 'phase',
};

export const RESTAGE_OPTION: OptionSpec = {
  type: 'boolean',
  description: 'after each completed stage, the expert redoes the later goal pictures from the scene as it now is',
};

export const GOAL_NOISE_OPTION: OptionSpec = {
  type: 'string',
  arg: 'M',
  description:
    "diagnostic: move the goal pictures' recorded gripper positions along the camera ray by normal noise of M metres (standard deviation); only presets that read recorded positions (oracle presets) see it",
  default: '0',
};

export const CAMERA_JPEG_OPTION: OptionSpec = {
  type: 'string',
  arg: 'Q',
  description:
    'the simulated camera delivers frames and goal pictures through JPEG at quality Q (1-100), as `sim collect` stores the episodes the shipped models learned from; 0: raw renders',
  default: String(COLLECT_JPEG_QUALITY),
};

/** The largest --goal-noise: beyond half a metre every picture's position is off the table. */
const MAX_GOAL_NOISE = 0.5;

/** The flags of an episode setup (src/planner/episode.ts), shared by plan, eval, its workers and demo. */
export const EPISODE_SETUP_OPTIONS = {
  goals: GOALS_OPTION,
  shadows: SHADOWS_OPTION,
  restage: RESTAGE_OPTION,
  'goal-noise': GOAL_NOISE_OPTION,
  'camera-jpeg': CAMERA_JPEG_OPTION,
};

export function episodeSetup(opts: ParsedOptions): Required<EpisodeSetup> {
  return {
    goals: goalsOption(opts),
    shadows: bool(opts, 'shadows'),
    restage: bool(opts, 'restage'),
    goalNoise: goalNoiseOption(opts),
    cameraJpeg: cameraJpegOption(opts),
  };
}

/** --camera-jpeg: 0 (raw renders) or a JPEG quality from 1 to 100. */
export function cameraJpegOption(opts: ParsedOptions): number {
  const q = num(opts, 'camera-jpeg', COLLECT_JPEG_QUALITY);
  if (!(Number.isInteger(q) && q >= 0 && q <= 100))
    throw new UsageError(`--camera-jpeg must be 0 (raw) or an integer quality from 1 to 100, got ${q}`);
  return q;
}

export function goalNoiseOption(opts: ParsedOptions): number {
  const m = num(opts, 'goal-noise', 0);
  if (m < 0 || m > MAX_GOAL_NOISE) throw new UsageError(`--goal-noise must be between 0 and ${MAX_GOAL_NOISE} m, got ${m}`);
  return m;
}

export function goalsOption(opts: ParsedOptions): 'stage' | 'phase' | 'dense' {
  const g = str(opts, 'goals') ?? 'phase';
  if (g !== 'stage' && g !== 'phase' && g !== 'dense') throw new UsageError(`--goals must be stage, phase or dense, got '${g}'`);
  return g;
}
