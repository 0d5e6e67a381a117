/**
 * Model configurations. `DiTConfig` holds exactly the official SelfFlowPerTokenDiT constructor
 * arguments; `WorldModelConfig` adds what the robot world model needs on the same trunk.
 */
import { readFileSync } from 'node:fs';
import { UserError } from './errors.js';

export interface DiTConfig {
  input_size: number;
  patch_size: number;
  in_channels: number;
  hidden_size: number;
  depth: number;
  num_heads: number;
  mlp_ratio: number;
  num_classes: number;
  learn_sigma: boolean;
}

export interface WorldModelConfig {
  /** Trunk geometry, official names. `in_channels` = 3 (RGB pixels); `num_classes` = task/embodiment ids (1 = none). */
  dit: DiTConfig;
  imageHeight: number;
  imageWidth: number;
  /** Context + future frames the model is built for (temporal embedding is sin-cos, so more also works). */
  maxFrames: number;
  actionDim: number;
  /** 0 disables language conditioning; RT-1 uses 512. */
  languageDim: number;
  /** Self-distillation: student projected features after block `studentLayer` predict teacher raw features after `teacherLayer`. */
  studentLayer: number;
  teacherLayer: number;
  /**
   * What the frame output means. `velocity` (absent = velocity): the official convention, the
   * output is d x / d t. `residual`: the output is the clean frame as a change from the last
   * context frame (x-prediction); the velocity is derived from it, so samplers and losses are
   * unchanged. Small models trained from scratch denoise far better this way (high-dimensional
   * patches through a narrow trunk), and an untrained model already predicts "nothing moves".
   */
  prediction?: FramePrediction;
  /**
   * How a frame sees the action that leads into it. `token` (absent = token): only through the
   * action token it can attend to. `adaln`: also added to the adaLN conditioning of every patch
   * token of that frame (as DiT conditions on its class label: DiT measured in-context tokens as
   * its weakest conditioning), so each patch knows the action without having to find it.
   * `shift`: adaln plus the action-shift attention prior (action-shift.ts): each head learns a 2-D
   * displacement from the action, and a patch looks first where its content was in the frame before.
   */
  actionConditioning?: ActionConditioning;
}

export const ACTION_CONDITIONINGS = ['token', 'adaln', 'shift'] as const;
export type ActionConditioning = (typeof ACTION_CONDITIONINGS)[number];

/** Whether patch tokens get the action through adaLN (`adaln`, and `shift` which builds on it). */
export function usesAdalnAction(c: { actionConditioning?: ActionConditioning }): boolean {
  return c.actionConditioning === 'adaln' || c.actionConditioning === 'shift';
}

export const FRAME_PREDICTIONS = ['velocity', 'residual'] as const;
export type FramePrediction = (typeof FRAME_PREDICTIONS)[number];

export const CONFIG_NAMES = ['tiny', 'small', 'base', 'large', 'xl'] as const;
export type ConfigName = (typeof CONFIG_NAMES)[number];

/** Trunk geometries: `xl` is SiT-XL/2 (the official Self-Flow checkpoint); the rest follow DiT's S/B/L. */
const TRUNKS: Record<ConfigName, Pick<DiTConfig, 'hidden_size' | 'depth' | 'num_heads'> & { patch: number; image: [number, number] }> = {
  tiny: { hidden_size: 64, depth: 4, num_heads: 4, patch: 4, image: [32, 40] },
  small: { hidden_size: 384, depth: 12, num_heads: 6, patch: 8, image: [64, 80] },
  base: { hidden_size: 768, depth: 12, num_heads: 12, patch: 8, image: [128, 160] },
  large: { hidden_size: 1024, depth: 24, num_heads: 16, patch: 8, image: [128, 160] },
  xl: { hidden_size: 1152, depth: 28, num_heads: 16, patch: 2, image: [32, 32] },
};

/** The official ImageNet-256 checkpoint's constructor arguments (latent 32x32x4). */
export const OFFICIAL_XL2: DiTConfig = {
  input_size: 32,
  patch_size: 2,
  in_channels: 4,
  hidden_size: 1152,
  depth: 28,
  num_heads: 16,
  mlp_ratio: 4,
  num_classes: 1001,
  learn_sigma: true,
};

export function officialConfig(name: ConfigName): DiTConfig {
  if (name === 'xl') return { ...OFFICIAL_XL2 };
  const t = TRUNKS[name];
  return {
    ...OFFICIAL_XL2,
    hidden_size: t.hidden_size,
    depth: t.depth,
    num_heads: t.num_heads,
    input_size: t.image[0],
    patch_size: t.patch,
    in_channels: 4,
  };
}

export function worldModelConfig(
  name: ConfigName,
  overrides: Partial<Omit<WorldModelConfig, 'dit'>> & { patchSize?: number } = {},
): WorldModelConfig {
  const t = TRUNKS[name];
  const depth = t.depth;
  const cfg: WorldModelConfig = {
    dit: {
      input_size: overrides.imageHeight ?? t.image[0],
      patch_size: overrides.patchSize ?? (name === 'xl' ? 8 : t.patch),
      in_channels: 3,
      hidden_size: t.hidden_size,
      depth,
      num_heads: t.num_heads,
      mlp_ratio: 4,
      num_classes: 1,
      learn_sigma: false,
    },
    imageHeight: overrides.imageHeight ?? t.image[0],
    imageWidth: overrides.imageWidth ?? t.image[1],
    maxFrames: overrides.maxFrames ?? 6,
    actionDim: overrides.actionDim ?? 7,
    languageDim: overrides.languageDim ?? 512,
    // Official: features after block 8 predict block 20 of 28, i.e. ~depth/3 and ~2*depth/3.
    studentLayer: overrides.studentLayer ?? Math.max(1, Math.round((depth * 8) / 28)),
    teacherLayer: overrides.teacherLayer ?? Math.max(2, Math.round((depth * 20) / 28)),
    ...(overrides.prediction ? { prediction: overrides.prediction } : {}),
    ...(overrides.actionConditioning ? { actionConditioning: overrides.actionConditioning } : {}),
  };
  if (name === 'xl' && !overrides.imageHeight) {
    cfg.imageHeight = 128;
    cfg.imageWidth = 160;
    cfg.dit.input_size = 128;
  }
  validateWorldModelConfig(cfg, `config '${name}'`);
  return cfg;
}

export function validateDiTConfig(c: DiTConfig, source: string): void {
  const ints: (keyof DiTConfig)[] = ['input_size', 'patch_size', 'in_channels', 'hidden_size', 'depth', 'num_heads', 'num_classes'];
  for (const k of ints) {
    if (!Number.isInteger(c[k]) || (c[k] as number) <= 0)
      throw new UserError(`${source}: '${k}' must be a positive integer, got ${JSON.stringify(c[k])}`);
  }
  if (!(c.mlp_ratio > 0)) throw new UserError(`${source}: 'mlp_ratio' must be > 0, got ${JSON.stringify(c.mlp_ratio)}`);
  if (typeof c.learn_sigma !== 'boolean') throw new UserError(`${source}: 'learn_sigma' must be true or false`);
  if (c.hidden_size % c.num_heads !== 0)
    throw new UserError(`${source}: hidden_size ${c.hidden_size} is not divisible by num_heads ${c.num_heads}`);
  if (c.hidden_size % 4 !== 0)
    throw new UserError(`${source}: hidden_size ${c.hidden_size} must be a multiple of 4 (2D sin-cos embedding)`);
}

export function validateWorldModelConfig(c: WorldModelConfig, source: string): void {
  validateDiTConfig(c.dit, source);
  const p = c.dit.patch_size;
  if (c.imageHeight % p || c.imageWidth % p)
    throw new UserError(`${source}: image ${c.imageHeight}x${c.imageWidth} is not divisible by patch ${p}`);
  if (!(c.studentLayer >= 1 && c.studentLayer < c.teacherLayer && c.teacherLayer <= c.dit.depth)) {
    throw new UserError(
      `${source}: need 1 <= studentLayer (${c.studentLayer}) < teacherLayer (${c.teacherLayer}) <= depth (${c.dit.depth})`,
    );
  }
  if (c.actionConditioning !== undefined && !(ACTION_CONDITIONINGS as readonly string[]).includes(c.actionConditioning)) {
    throw new UserError(
      `${source}: 'actionConditioning' must be ${ACTION_CONDITIONINGS.join(' or ')}, got ${JSON.stringify(c.actionConditioning)}`,
    );
  }
  if (c.prediction !== undefined && !(FRAME_PREDICTIONS as readonly string[]).includes(c.prediction)) {
    throw new UserError(`${source}: 'prediction' must be ${FRAME_PREDICTIONS.join(' or ')}, got ${JSON.stringify(c.prediction)}`);
  }
}

/** Reads official constructor arguments from JSON, at top level or under `config` (as the fixture's JSON has them). */
export function readDiTConfigFile(path: string): DiTConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${path}: cannot read model config JSON (${(e as Error).message})`);
  }
  const src = (raw.config && typeof raw.config === 'object' ? raw.config : raw) as Record<string, unknown>;
  const defaults = { mlp_ratio: 4, learn_sigma: false, num_classes: 1000 };
  const cfg = { ...defaults } as Record<string, unknown>;
  for (const k of [
    'input_size',
    'patch_size',
    'in_channels',
    'hidden_size',
    'depth',
    'num_heads',
    'mlp_ratio',
    'num_classes',
    'learn_sigma',
  ]) {
    if (src[k] !== undefined) cfg[k] = src[k];
    else if (!(k in defaults)) throw new UserError(`${path}: missing '${k}' (official SelfFlowPerTokenDiT constructor argument)`);
  }
  const c = cfg as unknown as DiTConfig;
  validateDiTConfig(c, path);
  return c;
}

export function isConfigName(s: string): s is ConfigName {
  return (CONFIG_NAMES as readonly string[]).includes(s);
}
