import { existsSync } from 'node:fs';
import { describeChoice, initBackend } from '../backend/backends.js';
import { loadStateDict } from '../checkpoint/load.js';
import { readSafetensors, writeSafetensors } from '../checkpoint/safetensors.js';
import { toFloat32, toInt32, type TensorMap } from '../checkpoint/tensor-map.js';
import { CONFIG_NAMES, isConfigName, officialConfig, readDiTConfigFile, worldModelConfig, type DiTConfig } from '../core/model-config.js';
import { writeWorldModel } from '../model/checkpoint-io.js';
import { importIntoWorldModel, summariseImport } from '../model/import.js';
import { checkAgainstLayout, countByPart, countParams, officialLayout, worldModelLayout, type Layout } from '../model/params.js';
import { UserError } from '../core/errors.js';
import { BACKEND_OPTION, int, requireStr, str, UsageError, type Command, type ParsedOptions } from './command.js';

function resolveOfficialConfig(opts: ParsedOptions): DiTConfig {
  const file = str(opts, 'model-config');
  const name = str(opts, 'config');
  if (file && name) throw new UsageError('give either --model-config FILE or --config NAME, not both');
  if (file) return readDiTConfigFile(file);
  if (name) {
    if (!isConfigName(name)) throw new UsageError(`--config must be one of ${CONFIG_NAMES.join(', ')}, got '${name}'`);
    return officialConfig(name);
  }
  throw new UsageError('missing --model-config FILE (official constructor arguments) or --config NAME');
}

function partsTable(layout: Layout): string[] {
  const parts = countByPart(layout);
  const width = Math.max(...[...parts.keys()].map((k) => k.length));
  return [...parts].map(([k, n]) => `  ${k.padEnd(width)}  ${n.toLocaleString('en-US').padStart(13)}`);
}

export const modelInfoCommand: Command = {
  name: 'model info',
  summary: 'parameter counts per part for a model config (official layout and world model)',
  options: {
    config: { type: 'string', arg: 'NAME', description: `model size: ${CONFIG_NAMES.join('|')}`, default: 'tiny' },
    'image-size': { type: 'string', arg: 'HxW', description: 'world-model image size (default per config)' },
    'action-dim': { type: 'string', arg: 'N', description: 'world-model action vector size', default: '7' },
    json: { type: 'boolean', description: 'print JSON instead of text' },
  },
  async run(opts) {
    const name = requireStr(opts, 'config');
    if (!isConfigName(name)) throw new UsageError(`--config must be one of ${CONFIG_NAMES.join(', ')}`);
    const size = parseImageSize(str(opts, 'image-size'));
    const wm = worldModelConfig(name, { ...size, actionDim: int(opts, 'action-dim', 7) });
    const off = officialConfig(name);
    const offLayout = officialLayout(off);
    const wmLayout = worldModelLayout(wm);
    const trunk = (n: string) => n !== 'projector.linear1.weight' && !n.startsWith('projector.') && n !== 'pos_embed';
    const summary = {
      config: name,
      official: {
        args: off,
        total: countParams(offLayout),
        trainable: countParams(offLayout, (n) => n !== 'pos_embed'),
        without_projector_and_pos_embed: countParams(offLayout, trunk),
        parts: Object.fromEntries(countByPart(offLayout)),
      },
      world_model: {
        config: wm,
        total: countParams(wmLayout),
        shared_with_official: countParams(wmLayout, (n) => offLayout.has(n)),
        parts: Object.fromEntries(countByPart(wmLayout)),
      },
    };
    if (opts.json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    const f = (n: number) => n.toLocaleString('en-US');
    console.log(`config ${name}: hidden ${off.hidden_size}, depth ${off.depth}, heads ${off.num_heads}, mlp ratio ${off.mlp_ratio}`);
    console.log(
      `\nofficial SelfFlowPerTokenDiT layout (input ${off.input_size}, patch ${off.patch_size}, ${off.in_channels} channels, ${off.num_classes} classes, learn_sigma ${off.learn_sigma}):`,
    );
    console.log(partsTable(offLayout).join('\n'));
    console.log(
      `  total ${f(summary.official.total)}; trainable (without the fixed pos_embed) ${f(summary.official.trainable)}; SiT trunk without projector ${f(summary.official.without_projector_and_pos_embed)}`,
    );
    console.log(
      `\nworld model (${wm.imageHeight}x${wm.imageWidth} RGB, patch ${wm.dit.patch_size}, action ${wm.actionDim}, language ${wm.languageDim}, distillation ${wm.studentLayer}->${wm.teacherLayer}):`,
    );
    console.log(partsTable(wmLayout).join('\n'));
    console.log(
      `  total ${f(summary.world_model.total)}; names shared with the official layout ${f(summary.world_model.shared_with_official)}`,
    );
  },
};

export function parseImageSize(text: string | undefined): { imageHeight: number; imageWidth: number } | Record<string, never> {
  if (!text) return {};
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--image-size expects HxW (e.g. 32x40), got '${text}'`);
  return { imageHeight: Number(m[1]), imageWidth: Number(m[2]) };
}

/** `--patch`: a convolutional stem's patch side must divide the picture it cuts. */
export function checkPatchDivides(patch: number, height: number, width: number): void {
  if (height % patch || width % patch) throw new UsageError(`--patch ${patch} must divide --image-size ${height}x${width}`);
}

export const modelRunCommand: Command = {
  name: 'model run',
  summary: 'evaluate an official-layout Self-Flow checkpoint on named input tensors',
  options: {
    checkpoint: {
      type: 'string',
      arg: 'W',
      description: 'weights: .safetensors or torch.save .pt (nested model/ema/state_dict and module. prefixes accepted)',
    },
    'model-config': { type: 'string', arg: 'CFG.json', description: 'official constructor arguments, at top level or under "config"' },
    config: {
      type: 'string',
      arg: 'NAME',
      description: `instead of --model-config: ${CONFIG_NAMES.join('|')} (xl = the released SiT-XL/2 checkpoint)`,
    },
    inputs: {
      type: 'string',
      arg: 'IO.safetensors',
      description: 'tensors x (B,T,p*p*C), t_per_token (B,T) and/or t_per_sample (B), y (B)',
    },
    out: { type: 'string', arg: 'OUT.safetensors', description: 'where to write the outputs' },
    'features-layer': { type: 'string', arg: 'k', description: 'also write features_projected: projector(block k output)' },
    'raw-features-layer': { type: 'string', arg: 'm', description: 'also write features_raw: block m output' },
    'state-key': {
      type: 'string',
      arg: 'KEY',
      description: 'nested state dict to use in a .pt (default: model, then ema, then state_dict)',
    },
    backend: BACKEND_OPTION,
  },
  details:
    'Outputs use the reference fixture names: out_per_token_t (when t_per_token is given), out_per_sample_t (t_per_sample),\n' +
    'features_projected and features_raw (computed with t_per_token when present, else t_per_sample). Time follows the\n' +
    'official forward(): t = 0 is data, and the output is the negated internal velocity.',
  async run(opts) {
    const cfg = resolveOfficialConfig(opts);
    const ckpt = requireStr(opts, 'checkpoint');
    const inputsPath = requireStr(opts, 'inputs');
    const outPath = requireStr(opts, 'out');
    const k = str(opts, 'features-layer') !== undefined ? int(opts, 'features-layer') : undefined;
    const m = str(opts, 'raw-features-layer') !== undefined ? int(opts, 'raw-features-layer') : undefined;
    for (const [flag, v] of [
      ['--features-layer', k],
      ['--raw-features-layer', m],
    ] as const) {
      if (v !== undefined && (v < 1 || v > cfg.depth)) throw new UsageError(`${flag} must be in 1..${cfg.depth}, got ${v}`);
    }
    const choice = await initBackend(str(opts, 'backend'));
    console.error(describeChoice(choice));
    const tf = await import('@tensorflow/tfjs');
    const { toTf } = await import('../model/params.js');
    const { ditForward } = await import('../model/dit.js');
    const sd = loadStateDict(ckpt, str(opts, 'state-key'));
    const problems = checkAgainstLayout(sd.tensors, officialLayout(cfg));
    if (problems.length)
      throw new UserError(
        `${ckpt}: does not match the official layout for this config:\n  ${problems.slice(0, 12).join('\n  ')}${problems.length > 12 ? `\n  ... ${problems.length - 12} more` : ''}`,
      );
    const io = readSafetensors(inputsPath).tensors;
    const need = (name: string) => {
      const t = io.get(name);
      if (!t) throw new UserError(`${inputsPath}: missing input tensor '${name}' (has: ${[...io.keys()].join(', ')})`);
      return t;
    };
    const x = need('x');
    const y = need('y');
    const [b, tokens, dim] = x.shape as [number, number, number];
    const expectDim = cfg.patch_size * cfg.patch_size * cfg.in_channels;
    const g = Math.floor(cfg.input_size / cfg.patch_size);
    if (x.shape.length !== 3 || dim !== expectDim || tokens !== g * g)
      throw new UserError(`${inputsPath}: 'x' has shape [${x.shape}], expected [B, ${g * g}, ${expectDim}] for this config`);
    if (y.shape.length !== 1 || y.shape[0] !== b) throw new UserError(`${inputsPath}: 'y' has shape [${y.shape}], expected [${b}]`);
    const tTok = io.get('t_per_token');
    const tSam = io.get('t_per_sample');
    if (!tTok && !tSam) throw new UserError(`${inputsPath}: needs 't_per_token' (B,T) or 't_per_sample' (B)`);
    if (tTok && JSON.stringify(tTok.shape) !== JSON.stringify([b, tokens]))
      throw new UserError(`${inputsPath}: 't_per_token' has shape [${tTok.shape}], expected [${b}, ${tokens}]`);
    if (tSam && JSON.stringify(tSam.shape) !== JSON.stringify([b]))
      throw new UserError(`${inputsPath}: 't_per_sample' has shape [${tSam.shape}], expected [${b}]`);
    const p = toTf(sd.tensors);
    const xt = tf.tensor3d(toFloat32(x), [b, tokens, dim]);
    const yt = tf.tensor1d(toInt32(y), 'int32');
    const out: TensorMap = new Map();
    const put = (name: string, t: import('@tensorflow/tfjs').Tensor) =>
      out.set(name, { dtype: 'float32', shape: [...t.shape], data: Float32Array.from(t.dataSync()) });
    const tMain = tf.tensor(toFloat32((tTok ?? tSam)!), (tTok ?? tSam)!.shape);
    if (tTok) put('out_per_token_t', ditForward(p, cfg, xt, tMain, yt).out);
    if (tSam) put('out_per_sample_t', ditForward(p, cfg, xt, tf.tensor1d(toFloat32(tSam)), yt).out);
    if (k) put('features_projected', ditForward(p, cfg, xt, tMain, yt, { featuresLayer: k }).features!);
    if (m) put('features_raw', ditForward(p, cfg, xt, tMain, yt, { rawFeaturesLayer: m }).features!);
    writeSafetensors(outPath, out, { source: ckpt, config: JSON.stringify(cfg) });
    console.log(`wrote ${[...out.keys()].join(', ')} to ${outPath}${sd.nestedKey ? ` (weights from '${sd.nestedKey}')` : ''}`);
  },
};

export const modelImportCommand: Command = {
  name: 'model import',
  summary: 'import an official Self-Flow checkpoint into a world-model config',
  options: {
    checkpoint: { type: 'string', arg: 'W', description: 'official weights (.pt or .safetensors)' },
    config: { type: 'string', arg: 'NAME', description: `world-model size: ${CONFIG_NAMES.join('|')}`, default: 'xl' },
    'image-size': { type: 'string', arg: 'HxW', description: 'world-model image size (default per config)' },
    'patch-size': { type: 'string', arg: 'P', description: 'world-model patch size (default per config)' },
    'action-dim': { type: 'string', arg: 'N', description: 'action vector size', default: '7' },
    'state-key': { type: 'string', arg: 'KEY', description: 'nested state dict in a .pt (default: model, ema, state_dict)' },
    out: { type: 'string', arg: 'FILE.safetensors', description: 'where to write the world-model weights' },
    seed: { type: 'string', arg: 'S', description: 'seed for the initialised parts', default: '0' },
  },
  async run(opts) {
    const name = requireStr(opts, 'config');
    if (!isConfigName(name)) throw new UsageError(`--config must be one of ${CONFIG_NAMES.join(', ')}`);
    const ckpt = requireStr(opts, 'checkpoint');
    const outPath = requireStr(opts, 'out');
    if (!existsSync(ckpt)) throw new UserError(`${ckpt}: checkpoint file not found`);
    const patch = str(opts, 'patch-size');
    const cfg = worldModelConfig(name, {
      ...parseImageSize(str(opts, 'image-size')),
      actionDim: int(opts, 'action-dim', 7),
      ...(patch ? { patchSize: int(opts, 'patch-size') } : {}),
    });
    const sd = loadStateDict(ckpt, str(opts, 'state-key'));
    const { tensors, report } = importIntoWorldModel(sd.tensors, cfg, int(opts, 'seed', 0));
    console.log(summariseImport(report, sd.tensors));
    writeWorldModel(outPath, cfg, tensors, { imported_from: ckpt });
    console.log(`wrote ${outPath}`);
  },
};
