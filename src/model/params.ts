/**
 * Parameter layouts (name -> shape, official names for everything the official model has),
 * initialisation as the official initialize_weights(), counting, and host <-> tfjs conversion.
 */
import * as tf from '@tensorflow/tfjs';
import type { HostTensor, TensorMap } from '../checkpoint/tensor-map.js';
import { numel, toFloat32 } from '../checkpoint/tensor-map.js';
import { Rng } from '../util/rng.js';
import { usesAdalnAction, type DiTConfig, type WorldModelConfig } from '../core/model-config.js';
import { officialPosEmbed } from './dit.js';
import { worldPosEmbed } from './world-model.js';
import type { Params } from './layers.js';

export type Layout = Map<string, number[]>;

function trunkLayout(c: DiTConfig, patchDim: number, outDim: number, tokens: number, classes: number): Layout {
  const d = c.hidden_size;
  const mlp = Math.floor(d * c.mlp_ratio);
  const l: Layout = new Map();
  l.set('pos_embed', [1, tokens, d]);
  l.set('x_embedder.proj.weight', [d, patchDim]);
  l.set('x_embedder.proj.bias', [d]);
  l.set('t_embedder.mlp.0.weight', [d, 256]);
  l.set('t_embedder.mlp.0.bias', [d]);
  l.set('t_embedder.mlp.2.weight', [d, d]);
  l.set('t_embedder.mlp.2.bias', [d]);
  l.set('y_embedder.embedding_table.weight', [classes, d]);
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    l.set(`${b}.attn.qkv.weight`, [3 * d, d]);
    l.set(`${b}.attn.qkv.bias`, [3 * d]);
    l.set(`${b}.attn.proj.weight`, [d, d]);
    l.set(`${b}.attn.proj.bias`, [d]);
    l.set(`${b}.mlp.fc1.weight`, [mlp, d]);
    l.set(`${b}.mlp.fc1.bias`, [mlp]);
    l.set(`${b}.mlp.fc2.weight`, [d, mlp]);
    l.set(`${b}.mlp.fc2.bias`, [d]);
    l.set(`${b}.adaLN_modulation.1.weight`, [6 * d, d]);
    l.set(`${b}.adaLN_modulation.1.bias`, [6 * d]);
  }
  l.set('final_layer.linear.weight', [outDim, d]);
  l.set('final_layer.linear.bias', [outDim]);
  l.set('final_layer.adaLN_modulation.1.weight', [2 * d, d]);
  l.set('final_layer.adaLN_modulation.1.bias', [2 * d]);
  l.set('projector.linear1.weight', [2 * d, d]);
  l.set('projector.linear1.bias', [2 * d]);
  l.set('projector.linear2.weight', [d, 2 * d]);
  l.set('projector.linear2.bias', [d]);
  return l;
}

/** Exactly the official SelfFlowPerTokenDiT state dict. */
export function officialLayout(c: DiTConfig): Layout {
  const p = c.patch_size;
  const g = Math.floor(c.input_size / p);
  const outC = c.learn_sigma ? 2 * c.in_channels : c.in_channels;
  return trunkLayout(c, p * p * c.in_channels, p * p * outC, g * g, c.num_classes);
}

/** World model: the official trunk plus action, language and action-output parts. */
export function worldModelLayout(w: WorldModelConfig): Layout {
  const c = w.dit;
  const p = c.patch_size;
  const tokens = (w.imageHeight / p) * (w.imageWidth / p);
  const l = trunkLayout(c, p * p * c.in_channels, p * p * c.in_channels, tokens, c.num_classes);
  const d = c.hidden_size;
  l.set('action_embedder.proj.weight', [d, w.actionDim]);
  l.set('action_embedder.proj.bias', [d]);
  l.set('action_embedder.type_embed', [1, 1, d]);
  if (usesAdalnAction(w)) {
    l.set('action_embedder.cond.weight', [d, w.actionDim]);
    l.set('action_embedder.cond.bias', [d]);
  }
  if (w.actionConditioning === 'shift') {
    l.set('action_shift.proj.weight', [2 * c.num_heads, w.actionDim]);
    l.set('action_shift.proj.bias', [2 * c.num_heads]);
    l.set('action_shift.gain', [c.num_heads]);
    l.set('action_shift.movable.weight', [c.num_heads, p * p * c.in_channels]);
    l.set('action_shift.movable.bias', [c.num_heads]);
  }
  l.set('action_head.linear.weight', [w.actionDim, d]);
  l.set('action_head.linear.bias', [w.actionDim]);
  if (w.languageDim > 0) {
    l.set('lang_embedder.proj.weight', [d, w.languageDim]);
    l.set('lang_embedder.proj.bias', [d]);
  }
  return l;
}

/** Fixed (non-trained) buffers: the official pos_embed has requires_grad=False. */
export const FROZEN = new Set(['pos_embed']);

/** Which part of the model a parameter belongs to, for `model info`. */
export function partOf(name: string): string {
  if (name.startsWith('blocks.')) return 'blocks (trunk)';
  if (name.startsWith('projector.')) return 'projector (self-distillation head)';
  if (name.startsWith('action_') || name.startsWith('lang_')) return 'world-model extension';
  if (name === 'pos_embed') return 'pos_embed (fixed buffer)';
  return `${name.split('.')[0]}`;
}

export function countByPart(layout: Layout): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, shape] of layout) out.set(partOf(name), (out.get(partOf(name)) ?? 0) + numel(shape));
  return out;
}

export function countParams(layout: Layout, filter: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, shape] of layout) if (filter(name)) n += numel(shape);
  return n;
}

function xavierUniform(rng: Rng, shape: number[]): Float32Array {
  const [fanOut, fanIn] = [shape[0]!, numel(shape.slice(1))];
  const a = Math.sqrt(6 / (fanIn + fanOut));
  return Float32Array.from({ length: numel(shape) }, () => rng.uniform(-a, a));
}

function normalInit(rng: Rng, shape: number[], std: number): Float32Array {
  return Float32Array.from({ length: numel(shape) }, () => rng.normal() * std);
}

/**
 * Host initialisation following the official initialize_weights(): xavier-uniform linears with zero
 * bias, N(0, 0.02) label table and timestep MLP, zeroed adaLN and final linear (adaLN-Zero), sin-cos
 * pos_embed. New world-model heads follow the same rules (action head zeroed like final_layer.linear;
 * the action-shift map zeroed and its gains 1: a same-position prior the actions learn to move).
 */
export function initHost(layout: Layout, seed: number, posEmbed: (shape: number[]) => Float32Array): TensorMap {
  const rng = new Rng(seed);
  const out: TensorMap = new Map();
  for (const [name, shape] of layout) {
    let data: Float32Array;
    if (name === 'pos_embed') data = posEmbed(shape);
    else if (
      name.endsWith('.bias') ||
      /adaLN_modulation\.1\.weight$/.test(name) ||
      name.startsWith('final_layer.linear') ||
      name.startsWith('action_head.') ||
      name === 'action_shift.proj.weight'
    ) {
      data = new Float32Array(numel(shape));
    } else if (name === 'action_shift.gain') {
      data = new Float32Array(numel(shape)).fill(1);
    } else if (name === 'y_embedder.embedding_table.weight' || name.startsWith('t_embedder.mlp') || name === 'action_embedder.type_embed') {
      data = normalInit(rng, shape, 0.02);
    } else data = xavierUniform(rng, shape);
    out.set(name, { dtype: 'float32', shape, data });
  }
  return out;
}

export function officialInit(c: DiTConfig, seed: number): TensorMap {
  return initHost(officialLayout(c), seed, () => officialPosEmbed(c));
}

/** Checks a state dict against a layout; returns the problems, one line each. */
export function checkAgainstLayout(tensors: TensorMap, layout: Layout): string[] {
  const problems: string[] = [];
  for (const [name, shape] of layout) {
    const t = tensors.get(name);
    if (!t) problems.push(`missing '${name}' ${JSON.stringify(shape)}`);
    else if (JSON.stringify(t.shape) !== JSON.stringify(shape))
      problems.push(`'${name}' has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
  }
  for (const name of tensors.keys()) if (!layout.has(name)) problems.push(`unexpected '${name}'`);
  return problems;
}

export function toTf(tensors: TensorMap): Params {
  const out: Params = {};
  for (const [name, t] of tensors) out[name] = tf.tensor(toFloat32(t), t.shape, 'float32');
  return out;
}

export async function toHost(params: Params): Promise<TensorMap> {
  const out: TensorMap = new Map();
  for (const [name, t] of Object.entries(params)) {
    const data = (await t.data()) as Float32Array;
    out.set(name, { dtype: 'float32', shape: [...t.shape], data: Float32Array.from(data) } satisfies HostTensor);
  }
  return out;
}

export function worldModelInit(w: WorldModelConfig, seed: number): TensorMap {
  return initHost(worldModelLayout(w), seed, () => worldPosEmbed(w));
}
