/**
 * RLDS episodes: one TFRecord record = one episode = one tf.train.Example whose per-step
 * fields are flattened lists under `steps/...` (T images as T byte strings, a (3,) action as
 * 3T floats, bools and int32 as int64). Decoded into typed per-step arrays using the card.
 */
import { readdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, errorMessage } from '../core/errors.js';
import { perStepSize, type DatasetCard, type FeatureSpec } from './card.js';
import { decodeExample, type FeatureValue } from './example.js';
import { CorruptRecordError, readTfRecords } from './tfrecord.js';

export type FieldValues = Float32Array | Int32Array | Uint8Array[] | string[];

export interface Field {
  spec: FeatureSpec;
  /** Flattened: steps x perStepSize (episode-level: perStepSize). */
  values: FieldValues;
}

export interface Episode {
  /** `shardFile#recordIndex`, stable across runs: used for the train/val split. */
  key: string;
  shard: string;
  index: number;
  offset: number;
  steps: number;
  fields: Map<string, Field>;
  instruction?: string;
  /** Features in the record that the card does not describe (not decoded; `data inspect` lists them). */
  unknownFeatures: string[];
}

export function listShards(dataDir: string, card: DatasetCard): string[] {
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) throw new UserError(`${dataDir}: data directory not found`);
  const re = new RegExp(card.file_pattern);
  let names: string[];
  try {
    names = readdirSync(dataDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `${dataDir}: cannot list the data directory (${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : errorMessage(e)}${code ? `, ${code}` : ''})`,
      { cause: e },
    );
  }
  const shards = names
    .filter((f) => re.test(f) && !f.startsWith('.'))
    .sort()
    .map((f) => join(dataDir, f));
  if (shards.length === 0) throw new UserError(`${dataDir}: no shards matching /${card.file_pattern}/ (dataset card '${card.name}')`);
  return shards;
}

const text = new TextDecoder();

function convert(name: string, spec: FeatureSpec, f: FeatureValue, where: string): FieldValues {
  const want = spec.dtype === 'float32' ? 'float' : spec.dtype === 'string' || spec.dtype === 'image' ? 'bytes' : 'int64';
  if (f.kind !== want)
    throw new Error(`${where}: feature '${name}' is stored as ${f.kind}_list, the card expects ${spec.dtype} (${want}_list)`);
  if (f.kind === 'float') return f.value;
  if (f.kind === 'int64') return Int32Array.from(f.value);
  return spec.dtype === 'string' ? f.value.map((b) => text.decode(b)) : f.value;
}

/** Decodes one episode record; throws an Error naming the feature on a missing or misshapen field. */
export function decodeEpisode(data: Uint8Array, card: DatasetCard, shard: string, index: number, offset: number): Episode {
  const where = `${shard}: record ${index} at byte ${offset}`;
  let ex;
  try {
    ex = decodeExample(data);
  } catch (e) {
    throw new Error(`${where}: not a tf.train.Example (${(e as Error).message})`);
  }
  const stepsF = ex.get(card.steps_feature);
  if (!stepsF) throw new Error(`${where}: missing feature '${card.steps_feature}' (the card's steps_feature)`);
  const steps = stepsF.value.length / perStepSize(card.features[card.steps_feature]!);
  const fields = new Map<string, Field>();
  for (const [name, spec] of Object.entries(card.features)) {
    const f = ex.get(name);
    if (!f) {
      if (spec.optional) continue;
      throw new Error(`${where}: missing feature '${name}'`);
    }
    const values = convert(name, spec, f, where);
    const size = perStepSize(spec);
    const expected = spec.per === 'episode' ? size : steps * size;
    if (values.length !== expected) {
      const detail =
        spec.per === 'episode'
          ? `expected ${size}`
          : values.length % size === 0
            ? `expected ${steps} steps x ${size} = ${expected} (the episode has ${steps} steps by '${card.steps_feature}')`
            : `not a multiple of the per-step size ${size} [${spec.shape.join(', ')}]`;
      throw new Error(`${where}: feature '${name}' has ${values.length} elements, ${detail}`);
    }
    fields.set(name, { spec, values });
  }
  const instr = card.instruction ? (fields.get(card.instruction)?.values as string[] | undefined)?.[0] : undefined;
  const unknownFeatures = [...ex.keys()].filter((k) => !(k in card.features));
  return { key: `${shard.split('/').pop()}#${index}`, shard, index, offset, steps, fields, instruction: instr, unknownFeatures };
}

export interface EpisodeReadOptions {
  skipCorrupt?: boolean;
  /** Called for every skipped record (with --skip-corrupt). */
  onCorrupt?: (message: string) => void;
  shards?: string[];
  /** Read this many shards at once, one episode from each in turn (1 = shard after shard). */
  interleave?: number;
}

export async function* readEpisodes(dataDir: string, card: DatasetCard, opts: EpisodeReadOptions = {}): AsyncGenerator<Episode> {
  const shards = opts.shards ?? listShards(dataDir, card);
  const k = Math.max(1, Math.min(opts.interleave ?? 1, shards.length));
  if (k === 1) {
    yield* readShardsInOrder(shards, card, opts);
    return;
  }
  // Round-robin over k open shards; a finished shard's slot takes the next unread shard.
  let next = 0;
  const open = (): AsyncGenerator<Episode> | undefined =>
    next < shards.length ? readShardsInOrder([shards[next++]!], card, opts) : undefined;
  const slots = Array.from({ length: k }, open).filter((g): g is AsyncGenerator<Episode> => g !== undefined);
  while (slots.length) {
    for (let i = 0; i < slots.length;) {
      const r = await slots[i]!.next();
      if (r.done) {
        const g = open();
        if (g) slots[i] = g;
        else slots.splice(i, 1);
        continue;
      }
      yield r.value;
      i++;
    }
  }
}

async function* readShardsInOrder(shards: string[], card: DatasetCard, opts: EpisodeReadOptions): AsyncGenerator<Episode> {
  for (const shard of shards) {
    const records = readTfRecords(shard, { skipCorrupt: opts.skipCorrupt, onCorrupt: (e) => opts.onCorrupt?.(e.message) });
    try {
      for await (const r of records) {
        try {
          yield decodeEpisode(r.data, card, shard, r.index, r.offset);
        } catch (e) {
          if (!opts.skipCorrupt) throw new UserError((e as Error).message);
          opts.onCorrupt?.((e as Error).message);
        }
      }
    } catch (e) {
      if (e instanceof CorruptRecordError) {
        if (opts.skipCorrupt) {
          // Framing lost: the rest of this shard cannot be read; report and go on with the next shard.
          opts.onCorrupt?.(`${e.message} (rest of shard skipped)`);
          continue;
        }
        throw new UserError(`${e.message}${e.resumable ? ' (use --skip-corrupt to skip such records)' : ''}`);
      }
      throw e;
    }
  }
}

/** `SHARD: record I at byte B`, the prefix of every error about this episode's record. */
export function recordWhere(ep: Pick<Episode, 'shard' | 'index' | 'offset'>): string {
  return `${ep.shard}: record ${ep.index} at byte ${ep.offset}`;
}

/** Rows of a numeric per-step field as plain numbers: step t -> values[t*size .. (t+1)*size). */
export function stepRow(field: Field, t: number): Float32Array | Int32Array {
  const size = perStepSize(field.spec);
  return (field.values as Float32Array | Int32Array).subarray(t * size, (t + 1) * size);
}
