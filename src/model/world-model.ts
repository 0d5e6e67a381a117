/**
 * The world model: the Self-Flow trunk over a sequence of frames plus one action token per
 * step, every token with its own timestep, frame-causal attention, and a key/value cache of
 * the clean context frames so planning computes them once for all candidates and flow steps.
 *
 * Token order: frame 0 patches, then per later frame f: [action a_{f-1}, frame f patches].
 * The action that leads from frame f-1 to f sits with frame f, so context frames never
 * see a candidate's actions. Time convention as the official forward(): t = 0 is data,
 * t = 1 noise, and the model returns the velocity d x / d t = noise - data (with
 * `prediction: 'residual'` the trunk predicts the clean frame as a change from the last context
 * frame and the velocity is derived from it).
 */
import * as tf from '@tensorflow/tfjs';
import { usesAdalnAction, type WorldModelConfig } from '../core/model-config.js';
import { actionShiftBias, movableScores, tokenGrid } from './action-shift.js';
import { embedLabels, embedTimesteps, linear, param, sincos1d, sincos2d, type Params } from './layers.js';
import { conditionGroups, type ConditionGroups } from './condition-groups.js';
import { finalNorm, runTrunk, type KVCache, type TrunkOutput } from './trunk.js';

export interface FrameBatch {
  /** [B, F, H, W, 3], pixels in [-1, 1] (noised where t > 0). */
  frames: tf.Tensor5D;
  /** [B, F, N] per-token or [B, F] per-frame timesteps of the patch tokens. */
  frameT: tf.Tensor;
  /** [B, F', A] actions; actions[:, j] leads into the j-th frame of this batch that has an action token. */
  actions: tf.Tensor3D;
  /** [B, F'] timesteps of the action tokens. */
  actionT: tf.Tensor2D;
  /** [B or 1, H, W, 3] the last clean context frame: what `residual` models predict changes from. */
  reference?: tf.Tensor4D;
}

export interface WorldModelConditioning {
  /** [B, languageDim] or [1, languageDim]. */
  language?: tf.Tensor2D;
  /** [B] or [1] class ids (task/embodiment); default 0. */
  y?: tf.Tensor1D;
}

export interface WorldModelOutput {
  /** Velocity for every frame [B, F, H, W, 3]. */
  frameVelocity: tf.Tensor5D;
  /** Residual models only: the clean-frame estimate x̂ for every frame [B, F, H, W, 3]. */
  frameClean?: tf.Tensor5D;
  /** Velocity for every action token [B, F', A]. */
  actionVelocity: tf.Tensor3D;
  /** Projected student features after studentLayer, patch tokens only: [B, F, N, D]. */
  projected?: tf.Tensor4D;
  /** Raw features after teacherLayer, patch tokens only: [B, F, N, D]. */
  raw?: tf.Tensor4D;
}

export interface ForwardOptions {
  projectedLayer?: number;
  rawLayer?: number;
}

export function patchGrid(cfg: WorldModelConfig): { gh: number; gw: number; n: number; p: number } {
  const p = cfg.dit.patch_size;
  const gh = cfg.imageHeight / p;
  const gw = cfg.imageWidth / p;
  return { gh, gw, n: gh * gw, p };
}

/** [B, F, H, W, C] -> [B, F, N, C*p*p] with the official (c, p1, p2) channel order. */
export function patchify(frames: tf.Tensor5D, cfg: WorldModelConfig): tf.Tensor4D {
  const [b, f, , , ch] = frames.shape;
  const { gh, gw, n, p } = patchGrid(cfg);
  return frames
    .reshape([b, f, gh, p, gw, p, ch])
    .transpose([0, 1, 2, 4, 6, 3, 5])
    .reshape([b, f, n, ch * p * p]) as tf.Tensor4D;
}

/** Inverse of the final layer's (p, q, c) token layout: [B, F, N, p*p*C] -> [B, F, H, W, C]. */
export function unpatchify(tokens: tf.Tensor4D, cfg: WorldModelConfig): tf.Tensor5D {
  const [b, f] = tokens.shape;
  const { gh, gw, p } = patchGrid(cfg);
  const ch = cfg.dit.in_channels;
  return tokens
    .reshape([b, f, gh, gw, p, p, ch])
    .transpose([0, 1, 2, 4, 3, 5, 6])
    .reshape([b, f, cfg.imageHeight, cfg.imageWidth, ch]) as tf.Tensor5D;
}

/** The model's fixed spatial pos_embed for its (possibly non-square) patch grid. */
export function worldPosEmbed(cfg: WorldModelConfig): Float32Array {
  const { gh, gw } = patchGrid(cfg);
  return sincos2d(cfg.dit.hidden_size, gh, gw);
}

const temporalCache = new Map<string, Float32Array>();
/** Temporal (frame-index) sin-cos embedding; fixed, so any number of frames works. */
function temporalEmbed(dim: number, frame: number): Float32Array {
  const key = `${dim}:${frame}`;
  let e = temporalCache.get(key);
  if (!e) temporalCache.set(key, (e = sincos1d(dim, [frame])));
  return e;
}

interface Layout {
  /** Frame index of every token in sequence order. */
  frameOf: number[];
  /** Sequence positions of patch tokens per frame, and of action tokens. */
  patchStart: number[];
  actionPos: number[];
}

/**
 * Sequence layout for frames firstFrame..firstFrame+F-1; the first frame of the whole sequence
 * (index 0) has no action token.
 */
function sequenceLayout(firstFrame: number, frames: number, n: number): Layout {
  const frameOf: number[] = [];
  const patchStart: number[] = [];
  const actionPos: number[] = [];
  for (let j = 0; j < frames; j++) {
    const f = firstFrame + j;
    if (f > 0) {
      actionPos.push(frameOf.length);
      frameOf.push(f);
    }
    patchStart.push(frameOf.length);
    for (let i = 0; i < n; i++) frameOf.push(f);
  }
  return { frameOf, patchStart, actionPos };
}

/** Additive frame-causal bias [Tq, Tk]: a query sees keys of its own and earlier frames. */
function causalBias(queryFrames: number[], keyFrames: number[]): tf.Tensor2D {
  const data = new Float32Array(queryFrames.length * keyFrames.length);
  for (let i = 0; i < queryFrames.length; i++) {
    for (let j = 0; j < keyFrames.length; j++) if (keyFrames[j]! > queryFrames[i]!) data[i * keyFrames.length + j] = -1e9;
  }
  return tf.tensor2d(data, [queryFrames.length, keyFrames.length]);
}

/**
 * The action-shift prior of `shift` models as a per-head logit bias, queries `layout` against keys
 * `keyFrameOf`. `actions`/`actionT` are all actions into frames 1.. (context ones included);
 * `movable` the keys' movable scores.
 */
function shiftBias(
  p: Params,
  cfg: WorldModelConfig,
  actions: tf.Tensor3D,
  actionT: tf.Tensor2D,
  layout: Layout,
  keyFrameOf: number[],
  movable: tf.Tensor3D,
): tf.Tensor4D {
  const { gw } = patchGrid(cfg);
  return actionShiftBias(p, cfg.dit.num_heads, actions, actionT, tokenGrid(layout.frameOf, gw), tokenGrid(keyFrameOf, gw), movable);
}

/** Movable scores of the tokens of `layout` (frames of `frames`), for `shift` models. */
function layoutMovable(p: Params, cfg: WorldModelConfig, frames: tf.Tensor5D, layout: Layout): tf.Tensor3D {
  return movableScores(p, cfg.dit.num_heads, patchify(frames, cfg), layout.patchStart, layout.frameOf.length);
}

/** The shift prior of a whole sequence from frame 0 (undefined unless a `shift` model with actions); `movable` if already computed. */
function sequenceShiftBias(
  p: Params,
  cfg: WorldModelConfig,
  batch: FrameBatch,
  layout: Layout,
  movable?: tf.Tensor3D,
): tf.Tensor4D | undefined {
  if (cfg.actionConditioning !== 'shift' || batch.actions.shape[1] === 0) return undefined;
  return shiftBias(p, cfg, batch.actions, batch.actionT, layout, layout.frameOf, movable ?? layoutMovable(p, cfg, batch.frames, layout));
}

/** Embeds tokens and per-token conditioning for frames starting at `firstFrame`. */
function embedSequence(p: Params, cfg: WorldModelConfig, batch: FrameBatch, firstFrame: number, cond: WorldModelConditioning) {
  const [b, f] = batch.frames.shape;
  const { n } = patchGrid(cfg);
  const d = cfg.dit.hidden_size;
  const layout = sequenceLayout(firstFrame, f, n);
  const nActions = layout.actionPos.length;
  if (batch.actions.shape[1] !== nActions) {
    throw new Error(
      `world model: ${f} frames starting at frame ${firstFrame} need ${nActions} action tokens, got ${batch.actions.shape[1]}`,
    );
  }
  const patches = linear(patchify(batch.frames, cfg), p, 'x_embedder.proj') as tf.Tensor4D; // [B, F, N, D]
  const pos = param(p, 'pos_embed').reshape([1, 1, n, d]);
  const temporal = tf.tensor4d(
    Float32Array.from({ length: f * d }, (_, k) => temporalEmbed(d, firstFrame + Math.floor(k / d))[k % d]!),
    [1, f, 1, d],
  );
  const patchTokens = tf.add(tf.add(patches, pos), temporal) as tf.Tensor4D;
  const frameT = batch.frameT.rank === 2 ? tf.tile(batch.frameT.expandDims(2), [1, 1, n]) : batch.frameT;
  const patchT = tf.sub(1, frameT) as tf.Tensor3D; // official internal time
  const actT = tf.sub(1, batch.actionT) as tf.Tensor2D;
  let actionTokens: tf.Tensor3D | undefined;
  if (nActions > 0) {
    const actTemporal = tf.tensor3d(
      Float32Array.from(
        { length: nActions * d },
        (_, k) => temporalEmbed(d, layout.frameOf[layout.actionPos[Math.floor(k / d)]!]!)[k % d]!,
      ),
      [1, nActions, d],
    );
    actionTokens = tf.add(
      tf.add(linear(batch.actions, p, 'action_embedder.proj'), param(p, 'action_embedder.type_embed')),
      actTemporal,
    ) as tf.Tensor3D;
  }
  // Interleave per frame: [action_f]? + patches_f.
  const tokenParts: tf.Tensor[] = [];
  const timeParts: tf.Tensor[] = [];
  let a = 0;
  for (let j = 0; j < f; j++) {
    if (firstFrame + j > 0) {
      tokenParts.push(actionTokens!.slice([0, a, 0], [b, 1, d]));
      timeParts.push(actT.slice([0, a], [b, 1]));
      a++;
    }
    tokenParts.push(patchTokens.slice([0, j, 0, 0], [b, 1, n, d]).reshape([b, n, d]));
    timeParts.push(patchT.slice([0, j, 0], [b, 1, n]).reshape([b, n]));
  }
  const x = tf.concat(tokenParts, 1) as tf.Tensor3D;
  const tAll = tf.concat(timeParts, 1) as tf.Tensor2D;
  // A token's conditioning below depends on its sample, its slot (frame j's action or patches) and its time only.
  const slots = layout.frameOf.map((j, k) => 2 * j + (layout.actionPos.includes(k) ? 0 : 1));
  const groups = conditionGroups(slots, tAll.dataSync() as Float32Array, b, d);
  let c = embedTimesteps(p, tAll) as tf.Tensor3D;
  if (usesAdalnAction(cfg) && nActions > 0) c = tf.add(c, actionConditioning(p, batch.actions, firstFrame, f, n)) as tf.Tensor3D;
  const y = cond.y ?? tf.zeros([1], 'int32');
  c = tf.add(c, embedLabels(p, y)) as tf.Tensor3D;
  if (cfg.languageDim > 0 && cond.language) c = tf.add(c, linear(cond.language, p, 'lang_embedder.proj').expandDims(1)) as tf.Tensor3D;
  return { x, c, layout, groups };
}

/** Per-token conditioning [B, T, D]: each frame's patch tokens get the embedding of the action leading into it. */
function actionConditioning(p: Params, actions: tf.Tensor3D, firstFrame: number, frames: number, n: number): tf.Tensor3D {
  const emb = linear(actions, p, 'action_embedder.cond') as tf.Tensor3D; // [B, F', D]
  const [b, , d] = emb.shape;
  const parts: tf.Tensor[] = [];
  let a = 0;
  for (let j = 0; j < frames; j++) {
    if (firstFrame + j > 0) {
      parts.push(tf.zeros([b, 1, d])); // the action token itself
      parts.push(tf.tile(emb.slice([0, a, 0], [b, 1, d]), [1, n, 1]));
      a++;
    } else parts.push(tf.zeros([b, n, d]));
  }
  return tf.concat(parts, 1) as tf.Tensor3D;
}

function gatherPatchTokens(t: tf.Tensor3D, layout: Layout, n: number): tf.Tensor4D {
  const parts = layout.patchStart.map((s) => t.slice([0, s, 0], [t.shape[0], n, t.shape[2]]).expandDims(1));
  return tf.concat(parts, 1) as tf.Tensor4D;
}

/** Per-token times [B, F, N] or per-frame [B, F] broadcast to every pixel: [B, F, H, W, 1]. */
export function pixelTimes(frameT: tf.Tensor, cfg: WorldModelConfig): tf.Tensor5D {
  const [b, f] = frameT.shape as [number, number];
  const { gh, gw, n, p } = patchGrid(cfg);
  const t = frameT.rank === 2 ? tf.tile(frameT.expandDims(2), [1, 1, n]) : frameT;
  return t.reshape([b, f, gh, 1, gw, 1, 1]).tile([1, 1, 1, p, 1, p, 1]).reshape([b, f, cfg.imageHeight, cfg.imageWidth, 1]) as tf.Tensor5D;
}

/**
 * Below this time a residual model's velocity (x_t - x̂) / t is taken at this time instead:
 * nearly clean tokens would otherwise turn tiny errors into huge velocities.
 */
const MIN_RESIDUAL_T = 0.05;

/** Clean-frame estimate x̂ = reference + delta and its velocity v = (x_t - x̂) / t. */
function residualOutputs(delta: tf.Tensor5D, batch: FrameBatch, cfg: WorldModelConfig): { clean: tf.Tensor5D; velocity: tf.Tensor5D } {
  if (!batch.reference) throw new Error('world model: a residual model needs the last context frame (FrameBatch.reference)');
  const clean = tf.add(batch.reference.expandDims(1), delta) as tf.Tensor5D;
  const t = tf.maximum(pixelTimes(batch.frameT, cfg), MIN_RESIDUAL_T);
  return { clean, velocity: tf.div(tf.sub(batch.frames, clean), t) as tf.Tensor5D };
}

function decodeOutputs(
  p: Params,
  cfg: WorldModelConfig,
  trunk: TrunkOutput,
  c: tf.Tensor3D,
  groups: ConditionGroups | undefined,
  layout: Layout,
  batch: FrameBatch,
): WorldModelOutput {
  const { n } = patchGrid(cfg);
  const h = finalNorm(p, trunk.x, c, groups);
  const patchOut = gatherPatchTokens(linear(h, p, 'final_layer.linear') as tf.Tensor3D, layout, n);
  const residual = cfg.prediction === 'residual' ? residualOutputs(unpatchify(patchOut, cfg), batch, cfg) : undefined;
  const frameVelocity = residual ? residual.velocity : (tf.neg(unpatchify(patchOut, cfg)) as tf.Tensor5D);
  const b = trunk.x.shape[0];
  let actionVelocity: tf.Tensor3D;
  if (layout.actionPos.length) {
    const actH = tf.concat(
      layout.actionPos.map((s) => h.slice([0, s, 0], [b, 1, h.shape[2]])),
      1,
    );
    actionVelocity = tf.neg(linear(actH, p, 'action_head.linear')) as tf.Tensor3D;
  } else actionVelocity = tf.zeros([b, 0, cfg.actionDim]) as tf.Tensor3D;
  return {
    frameVelocity,
    ...(residual ? { frameClean: residual.clean } : {}),
    actionVelocity,
    projected: trunk.projected ? gatherPatchTokens(trunk.projected, layout, n) : undefined,
    raw: trunk.raw ? gatherPatchTokens(trunk.raw, layout, n) : undefined,
  };
}

/** Full forward over a whole sequence starting at frame 0 (training, and the cache's reference). */
export function worldModelForward(
  p: Params,
  cfg: WorldModelConfig,
  batch: FrameBatch,
  cond: WorldModelConditioning = {},
  opts: ForwardOptions = {},
): WorldModelOutput {
  const { x, c, layout, groups } = embedSequence(p, cfg, batch, 0, cond);
  const mask = causalBias(layout.frameOf, layout.frameOf);
  const headBias = sequenceShiftBias(p, cfg, batch, layout);
  const trunk = runTrunk(p, cfg.dit, x, c, {
    mask,
    headBias,
    groups,
    featuresLayer: opts.projectedLayer,
    rawFeaturesLayer: opts.rawLayer,
  });
  return decodeOutputs(p, cfg, trunk, c, groups, layout, batch);
}

/**
 * Raw features after 1-based block `layer`, patch tokens only [B, F, N, D]: the same as
 * worldModelForward(..., { rawLayer: layer }).raw, without running the later blocks and the output heads.
 */
export function worldModelRawFeatures(
  p: Params,
  cfg: WorldModelConfig,
  batch: FrameBatch,
  cond: WorldModelConditioning,
  layer: number,
): tf.Tensor4D {
  if (!Number.isInteger(layer) || layer < 1 || layer > cfg.dit.depth)
    throw new Error(`worldModelRawFeatures: layer ${layer} is outside blocks 1..${cfg.dit.depth}`);
  const { x, c, layout, groups } = embedSequence(p, cfg, batch, 0, cond);
  const mask = causalBias(layout.frameOf, layout.frameOf);
  const headBias = sequenceShiftBias(p, cfg, batch, layout);
  const trunk = runTrunk(p, cfg.dit, x, c, { mask, headBias, groups, rawFeaturesLayer: layer, stopAfterLayer: layer });
  return gatherPatchTokens(trunk.raw!, layout, patchGrid(cfg).n);
}

/** Keys/values of clean context frames 0..K-1 (and the actions between them), computed once. */
export interface ContextCache {
  kv: KVCache;
  contextFrames: number;
  frameOf: number[];
  /** Raw features of the context patch tokens at `rawLayer`, if asked for. */
  raw?: tf.Tensor4D;
  /** The last context frame [B, H, W, 3] (residual models predict changes from it). */
  reference?: tf.Tensor4D;
  /** `shift` models: the context actions [B, K-1, A] (future frames add up their displacements) and movable scores [B, heads, Tc]. */
  shift?: { actions: tf.Tensor3D; movable: tf.Tensor3D };
}

/**
 * Encodes the context (all tokens clean, t = 0). `context.actions` holds the K-1 executed actions
 * between context frames. The returned tensors are kept; free them with disposeContext().
 */
export function encodeContext(
  p: Params,
  cfg: WorldModelConfig,
  frames: tf.Tensor5D,
  actions: tf.Tensor3D,
  cond: WorldModelConditioning = {},
  rawLayer?: number,
): ContextCache {
  return tf.tidy(() => {
    const [b, k] = frames.shape;
    const batch: FrameBatch = { frames, actions, frameT: tf.zeros([b, k]), actionT: tf.zeros([b, Math.max(0, k - 1)]) };
    const { x, c, layout, groups } = embedSequence(p, cfg, batch, 0, cond);
    const mask = causalBias(layout.frameOf, layout.frameOf);
    const movable = cfg.actionConditioning === 'shift' ? layoutMovable(p, cfg, frames, layout) : undefined;
    const headBias = sequenceShiftBias(p, cfg, batch, layout, movable);
    const trunk = runTrunk(p, cfg.dit, x, c, { mask, headBias, groups, recordCache: true, rawFeaturesLayer: rawLayer });
    const raw = trunk.raw ? tf.keep(gatherPatchTokens(trunk.raw, layout, patchGrid(cfg).n)) : undefined;
    const [, , h, w, ch] = frames.shape;
    const reference =
      cfg.prediction === 'residual'
        ? tf.keep(frames.slice([0, k - 1, 0, 0, 0], [b, 1, h, w, ch]).reshape([b, h, w, ch]) as tf.Tensor4D)
        : undefined;
    const shift = movable ? { actions: tf.keep(actions.clone()), movable: tf.keep(movable) } : undefined;
    return { kv: trunk.cache!, contextFrames: k, frameOf: layout.frameOf, raw, reference, shift } as unknown as ContextCache &
      tf.TensorContainerObject;
  });
}

export function disposeContext(ctx: ContextCache): void {
  tf.dispose([...ctx.kv.keys, ...ctx.kv.values]);
  if (ctx.raw) ctx.raw.dispose();
  if (ctx.reference) ctx.reference.dispose();
  if (ctx.shift) tf.dispose([ctx.shift.actions, ctx.shift.movable]);
}

/** The shift prior of future frames: their actions preceded by the (clean) context ones, their keys by the context's. */
function contextShiftBias(
  p: Params,
  cfg: WorldModelConfig,
  ctx: { actions: tf.Tensor3D; movable: tf.Tensor3D },
  batch: FrameBatch,
  layout: Layout,
  keyFrameOf: number[],
): tf.Tensor4D {
  const b = batch.actions.shape[0];
  const tileTo = <T extends tf.Tensor>(t: T): T => (t.shape[0] === b ? t : (tf.tile(t, [b / t.shape[0], 1, 1]) as T));
  const nc = ctx.actions.shape[1];
  const actions = nc ? (tf.concat([tileTo(ctx.actions), batch.actions], 1) as tf.Tensor3D) : batch.actions;
  const actionT = nc ? (tf.concat([tf.zeros([b, nc]), batch.actionT], 1) as tf.Tensor2D) : batch.actionT;
  const movable = tf.concat([tileTo(ctx.movable), layoutMovable(p, cfg, batch.frames, layout)], 2) as tf.Tensor3D;
  return shiftBias(p, cfg, actions, actionT, layout, keyFrameOf, movable);
}

/**
 * Forward of future frames K..K+H-1 against a cached context. `batch.actions[:, j]` leads from
 * frame K-1+j to K+j. The cache (batch 1 or B) is shared by every candidate in the batch.
 */
export function forwardWithContext(
  p: Params,
  cfg: WorldModelConfig,
  ctx: ContextCache,
  batch: FrameBatch,
  cond: WorldModelConditioning = {},
  opts: ForwardOptions = {},
): WorldModelOutput {
  const { x, c, layout, groups } = embedSequence(p, cfg, batch, ctx.contextFrames, cond);
  const keyFrameOf = [...ctx.frameOf, ...layout.frameOf];
  const mask = causalBias(layout.frameOf, keyFrameOf);
  const headBias = ctx.shift ? contextShiftBias(p, cfg, ctx.shift, batch, layout, keyFrameOf) : undefined;
  const trunk = runTrunk(p, cfg.dit, x, c, {
    mask,
    headBias,
    cache: ctx.kv,
    groups,
    featuresLayer: opts.projectedLayer,
    rawFeaturesLayer: opts.rawLayer,
  });
  return decodeOutputs(p, cfg, trunk, c, groups, layout, batch.reference ? batch : { ...batch, reference: ctx.reference });
}
