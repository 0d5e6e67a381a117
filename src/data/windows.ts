/**
 * Training windows (context frames, action chunk, future frames) sampled across episodes:
 * episode-level train/val split (a hash of the episode key, stable across runs), a seeded
 * shuffle buffer, and bounded memory whatever the dataset size: one episode decoded at a time
 * plus the buffer, whose windows keep their resized frames as uint8 (converted to [-1, 1] floats
 * when yielded) and which holds at most 256 MiB by default.
 */
import { decodeImage, ImageTooLargeError } from '../image/decode.js';
import { resizeRgb } from '../image/resize.js';
import { Rng } from '../util/rng.js';
import { rawActionAt } from './action-stats.js';
import { normaliseActions, type ActionStats } from '../core/action-stats.js';
import { actionDim, type DatasetCard } from './card.js';
import { listShards, readEpisodes, recordWhere, stepRow, type Episode } from './rlds.js';
import { UserError } from '../core/errors.js';

export interface WindowSpec {
  contextFrames: number;
  futureFrames: number;
  imageHeight: number;
  imageWidth: number;
}

export interface TrainingWindow {
  /** (K+H) x imageHeight x imageWidth x 3 in [-1, 1], oldest first. */
  frames: Float32Array;
  /** H x actionDim normalised; row j = the action taken at frame K-1+j (leads to frame K+j). */
  actions: Float32Array;
  language?: Float32Array;
  instruction?: string;
  episodeKey: string;
  start: number;
}

export interface WindowStreamOptions {
  dataDir: string;
  card: DatasetCard;
  spec: WindowSpec;
  split: 'train' | 'val';
  valFraction?: number;
  seed: number;
  /** Windows held for shuffling (train only). Default: defaultShuffleBuffer(spec). */
  shuffleBuffer?: number;
  skipCorrupt?: boolean;
  stats: ActionStats;
  /** Passes over the data (train default: endless; val default 1). */
  epochs?: number;
  onCorrupt?: (message: string) => void;
  /** End quietly when the split holds no window (a validation set that may be empty) instead of raising. */
  allowEmpty?: boolean;
}

/** Hash of the episode key -> [0, 1): the same episode is always on the same side of the split. */
export function splitValue(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  // Final avalanche (murmur3 fmix32): keys differing only in a trailing digit must still spread.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

export function isValEpisode(key: string, valFraction: number): boolean {
  return splitValue(key) < valFraction;
}

/** A window as the shuffle buffer holds it: frames as resized uint8 (a quarter of float32's memory). */
export interface PackedWindow extends Omit<TrainingWindow, 'frames'> {
  pixels: Uint8Array;
}

/** Resized frame (0..255 floats) rounded to uint8: at most 0.5/127.5 away in [-1, 1] units. */
export function toBytes(resized: Float32Array): Uint8Array {
  const out = new Uint8Array(resized.length);
  for (let i = 0; i < resized.length; i++) out[i] = Math.round(resized[i]!);
  return out;
}

export function unpackWindow(w: PackedWindow): TrainingWindow {
  const { pixels, ...rest } = w;
  const frames = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) frames[i] = pixels[i]! / 127.5 - 1;
  return { frames, ...rest };
}

/** All windows of one episode (every `stride` steps), each image decoded and resized once. */
export function episodePackedWindows(ep: Episode, card: DatasetCard, spec: WindowSpec, stats: ActionStats, stride = 1): PackedWindow[] {
  const f = spec.contextFrames + spec.futureFrames;
  if (ep.steps < f) return [];
  const images = ep.fields.get(card.image)!.values as Uint8Array[];
  const px = spec.imageHeight * spec.imageWidth * 3;
  const frames = images.map((bytes, t) =>
    toBytes(resizeRgb(decodeImage(bytes, `${recordWhere(ep)}: feature '${card.image}' step ${t}`), spec.imageHeight, spec.imageWidth)),
  );
  const a = actionDim(card);
  const actions = Array.from({ length: ep.steps }, (_, t) => normaliseActions(stats, rawActionAt(card, ep, t)));
  const lang =
    card.language_embedding && ep.fields.get(card.language_embedding)
      ? Float32Array.from(stepRow(ep.fields.get(card.language_embedding)!, 0))
      : undefined;
  const out: PackedWindow[] = [];
  for (let s = 0; s + f <= ep.steps; s += stride) {
    const pixels = new Uint8Array(f * px);
    for (let i = 0; i < f; i++) pixels.set(frames[s + i]!, i * px);
    const act = new Float32Array(spec.futureFrames * a);
    for (let j = 0; j < spec.futureFrames; j++) act.set(actions[s + spec.contextFrames - 1 + j]!, j * a);
    out.push({ pixels, actions: act, language: lang, instruction: ep.instruction, episodeKey: ep.key, start: s });
  }
  return out;
}

/** All windows of one episode as training windows (frames in [-1, 1]). */
export function episodeWindows(ep: Episode, card: DatasetCard, spec: WindowSpec, stats: ActionStats, stride = 1): TrainingWindow[] {
  return episodePackedWindows(ep, card, spec, stats, stride).map(unpackWindow);
}

/**
 * As many windows as fit in SHUFFLE_BUFFER_BYTES (uint8 frames), at most 2048: an RT-1 episode
 * gives ~40 overlapping windows, so a few hundred would hold only a handful of episodes and
 * batches would be correlated. 2+2 frames at 32x40 -> 2048 windows (31 MB), 128x160 -> 1092.
 */
export const SHUFFLE_BUFFER_BYTES = 256 * 2 ** 20;
export function defaultShuffleBuffer(spec: WindowSpec): number {
  const bytes = (spec.contextFrames + spec.futureFrames) * spec.imageHeight * spec.imageWidth * 3;
  return Math.max(16, Math.min(2048, Math.floor(SHUFFLE_BUFFER_BYTES / bytes)));
}

export async function* windowStream(o: WindowStreamOptions): AsyncGenerator<TrainingWindow> {
  const valFraction = o.valFraction ?? 0.1;
  const { contextFrames: k, futureFrames: h, imageHeight, imageWidth } = o.spec;
  for (const [name, v, min] of [
    ['contextFrames', k, 1],
    ['futureFrames', h, 1],
    ['imageHeight', imageHeight, 1],
    ['imageWidth', imageWidth, 1],
  ] as const) {
    if (!Number.isInteger(v) || v < min) throw new UserError(`training windows: ${name} must be an integer >= ${min}, got ${v}`);
  }
  if (!(valFraction >= 0 && valFraction <= 1)) throw new UserError(`training windows: valFraction must lie in [0, 1], got ${valFraction}`);
  const epochs = o.epochs ?? (o.split === 'train' ? Infinity : 1);
  const shards = listShards(o.dataDir, o.card);
  const rng = new Rng(o.seed);
  let bufferSize = o.split === 'train' ? (o.shuffleBuffer ?? defaultShuffleBuffer(o.spec)) : 0;
  if (!Number.isInteger(bufferSize) || bufferSize < 0)
    throw new UserError(`training windows: shuffleBuffer must be an integer >= 0, got ${bufferSize}`);
  const buffer: PackedWindow[] = [];
  let any = false;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = o.split === 'train' ? rng.shuffle([...shards]) : shards;
    let produced = false;
    // Training reads 4 shards interleaved, so the shuffle buffer mixes episodes from several shards.
    for await (const ep of readEpisodes(o.dataDir, o.card, {
      shards: order,
      skipCorrupt: o.skipCorrupt,
      onCorrupt: o.onCorrupt,
      interleave: o.split === 'train' ? 4 : 1,
    })) {
      if (isValEpisode(ep.key, valFraction) !== (o.split === 'val')) continue;
      let wins: PackedWindow[];
      try {
        wins = episodePackedWindows(ep, o.card, o.spec, o.stats, o.split === 'val' ? o.spec.contextFrames + o.spec.futureFrames : 1);
      } catch (e) {
        // An undecodable or oversized image is a corrupt record like a CRC failure: stop, or skip and count with --skip-corrupt.
        if (e instanceof UserError && !(e instanceof ImageTooLargeError)) throw e;
        if (!o.skipCorrupt) throw new UserError(`${(e as Error).message} (use --skip-corrupt to skip such records)`);
        o.onCorrupt?.((e as Error).message);
        continue;
      }
      for (const w of wins) {
        produced = any = true;
        if (bufferSize === 0) {
          yield unpackWindow(w);
          continue;
        }
        if (buffer.length < bufferSize) buffer.push(w);
        else {
          const i = rng.int(bufferSize);
          const out = buffer[i]!;
          buffer[i] = w;
          yield unpackWindow(out);
        }
      }
    }
    if (!produced) break;
    // A dataset smaller than the buffer: shuffle within what one pass holds rather than fill it over many passes.
    if (buffer.length < bufferSize) bufferSize = buffer.length;
  }
  rng.shuffle(buffer);
  for (const w of buffer) yield unpackWindow(w);
  if (!any && !o.allowEmpty) {
    throw new UserError(
      `${o.dataDir}: no ${o.split} windows of ${o.spec.contextFrames}+${o.spec.futureFrames} frames (episodes too short, or none on the ${o.split} side of the ${valFraction} split)`,
    );
  }
}
