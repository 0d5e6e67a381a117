/**
 * Writes RLDS episodes in TFDS layout: sharded TFRecords of tf.train.Example (per-step fields
 * flattened under steps/...), plus features.json and dataset_info.json, so a dataset card
 * reads them back unchanged. Each shard is written under a hidden temp name and renamed when
 * complete to `NAME-SPLIT.tfrecord-0000i` (readable, metadata updated), and close() gives the
 * TFDS names `NAME-SPLIT.tfrecord-0000i-of-0000N`: a killed collection leaves only complete,
 * readable shards.
 */
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../util/atomic.js';
import { UserError } from '../core/errors.js';
import { perStepSize, type DatasetCard, type FeatureSpec } from './card.js';
import { encodeExample, type ExampleFeatures, type FeatureValue } from './example.js';
import { TfRecordWriter } from './tfrecord.js';

export type StepValue = number | boolean | string | number[] | Float32Array | Int32Array | Uint8Array;
/** Keys without the `steps/` prefix, e.g. 'observation/image' (encoded JPEG/PNG bytes), 'action/world_vector', 'is_first'. */
export type StepRecord = Record<string, StepValue>;

export interface EpisodeRecord {
  steps: StepRecord[];
  /** Episode-level features by full name ('episode_metadata/task', 'aspects/success') or short name ('task' -> 'episode_metadata/task'). */
  metadata?: Record<string, string | number | boolean | number[]>;
}

const enc = new TextEncoder();

function flatten(name: string, spec: FeatureSpec, values: StepValue[], where: string): FeatureValue {
  const size = perStepSize(spec);
  if (spec.dtype === 'image' || spec.dtype === 'string') {
    return {
      kind: 'bytes',
      value: values.map((v, t) => {
        if (spec.dtype === 'image' && !(v instanceof Uint8Array))
          throw new UserError(`${where} step ${t}: '${name}' must be encoded image bytes`);
        if (spec.dtype === 'string' && typeof v !== 'string') throw new UserError(`${where} step ${t}: '${name}' must be a string`);
        return typeof v === 'string' ? enc.encode(v) : (v as Uint8Array);
      }),
    };
  }
  const flat: number[] = [];
  values.forEach((v, t) => {
    const row = typeof v === 'number' || typeof v === 'boolean' ? [Number(v)] : Array.from(v as ArrayLike<number>);
    if (row.length !== size)
      throw new UserError(`${where} step ${t}: '${name}' has ${row.length} values, the card says ${size} [${spec.shape.join(', ')}]`);
    flat.push(...row);
  });
  return spec.dtype === 'float32'
    ? { kind: 'float', value: Float32Array.from(flat) }
    : { kind: 'int64', value: flat.map((x) => Math.round(x)) };
}

/** TFDS features.json for the card's features (so readers can check a dataset against a card). */
export function featuresJson(card: DatasetCard, imageShape?: number[]): unknown {
  const steps: Record<string, unknown> = {};
  const episode: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(card.features)) {
    const leaf =
      spec.dtype === 'image'
        ? {
            pythonClassName: 'tensorflow_datasets.core.features.image_feature.Image',
            image: {
              shape: { dimensions: (name === card.image && imageShape ? imageShape : spec.shape).map(String) },
              dtype: 'uint8',
              encodingFormat: spec.encoding ?? 'jpeg',
            },
          }
        : spec.dtype === 'string'
          ? { pythonClassName: 'tensorflow_datasets.core.features.text_feature.Text', text: {} }
          : {
              pythonClassName: 'tensorflow_datasets.core.features.tensor_feature.Tensor',
              tensor: { shape: spec.shape.length ? { dimensions: spec.shape.map(String) } : {}, dtype: spec.dtype, encoding: 'none' },
            };
    const parts = name.split('/');
    const target = parts[0] === 'steps' ? steps : episode;
    const path = parts[0] === 'steps' ? parts.slice(1) : parts;
    let node = target;
    for (const p of path.slice(0, -1))
      node = ((node[p] as { featuresDict: { features: Record<string, unknown> } } | undefined) ??= { featuresDict: { features: {} } })
        .featuresDict.features;
    node[path[path.length - 1]!] = leaf;
  }
  return {
    pythonClassName: 'tensorflow_datasets.core.features.features_dict.FeaturesDict',
    featuresDict: {
      features: {
        ...episode,
        steps: {
          pythonClassName: 'tensorflow_datasets.rlds.rlds_base.Dataset',
          sequence: { feature: { featuresDict: { features: steps } }, length: '-1' },
        },
      },
    },
  };
}

export class RldsWriter {
  private shardIndex = 0;
  private current?: TfRecordWriter;
  private readonly shardLengths: number[] = [];
  private readonly written: string[] = [];
  private bytes = 0;
  private episodes = 0;
  private steps = 0;
  private readonly split: string;
  private readonly perShard: number;
  private readonly name: string;
  /** Actual [H, W, C] of the card's camera, when it differs from the card's nominal size. */
  private readonly imageShape?: number[];

  constructor(
    readonly outDir: string,
    readonly card: DatasetCard,
    opts: { split?: string; episodesPerShard?: number; datasetName?: string; imageShape?: number[] } = {},
  ) {
    this.imageShape = opts.imageShape;
    this.split = opts.split ?? 'train';
    this.perShard = opts.episodesPerShard ?? 100;
    this.name = opts.datasetName ?? card.dataset;
    mkdirSync(outDir, { recursive: true });
    // Shards of an earlier collection would be read together with ours (and shard counts would disagree).
    const prefix = `${this.name}-${this.split}.tfrecord-`;
    const old = readdirSync(outDir).filter((f) => f.startsWith(prefix));
    if (old.length)
      throw new UserError(
        `${outDir}: already holds ${old.length} shard(s) of ${this.name}-${this.split} (e.g. ${old[0]}); write to an empty directory`,
      );
  }

  private shardName(i: number, of?: number): string {
    const idx = String(i).padStart(5, '0');
    return join(this.outDir, `${this.name}-${this.split}.tfrecord-${idx}${of === undefined ? '' : `-of-${String(of).padStart(5, '0')}`}`);
  }

  encode(ep: EpisodeRecord, where: string): Uint8Array {
    const features: ExampleFeatures = new Map();
    // Nothing is dropped silently: a key the card does not describe is an error (a typo would lose data).
    const stepKeys = new Set(
      Object.keys(this.card.features)
        .filter((n) => this.card.features[n]!.per !== 'episode')
        .map((n) => n.replace(/^steps\//, '')),
    );
    ep.steps.forEach((st, t) => {
      for (const k of Object.keys(st))
        if (!stepKeys.has(k))
          throw new UserError(
            `${where} step ${t}: '${k}' is not a per-step feature of card '${this.card.name}' (keys omit the steps/ prefix)`,
          );
    });
    const metaName = (k: string) => (k in this.card.features ? k : `episode_metadata/${k}`);
    for (const k of Object.keys(ep.metadata ?? {})) {
      if (this.card.features[metaName(k)]?.per !== 'episode')
        throw new UserError(`${where}: metadata '${k}' is not an episode feature of card '${this.card.name}'`);
    }
    for (const [name, spec] of Object.entries(this.card.features)) {
      if (spec.per === 'episode') {
        // Full names ('aspects/success', 'episode_metadata/task') or short ones ('task' -> 'episode_metadata/task').
        const v =
          ep.metadata?.[name] ?? (name.startsWith('episode_metadata/') ? ep.metadata?.[name.slice('episode_metadata/'.length)] : undefined);
        if (v === undefined) {
          if (spec.optional) continue;
          throw new UserError(`${where}: missing episode feature '${name}'`);
        }
        features.set(name, flatten(name, spec, [v], where));
        continue;
      }
      const key = name.replace(/^steps\//, '');
      const present = ep.steps.filter((s) => s[key] !== undefined).length;
      if (present === 0 && spec.optional) continue;
      if (present !== ep.steps.length)
        throw new UserError(`${where}: feature '${name}' is missing in ${ep.steps.length - present} of ${ep.steps.length} steps`);
      features.set(
        name,
        flatten(
          name,
          spec,
          ep.steps.map((s) => s[key]!),
          where,
        ),
      );
    }
    return encodeExample(features);
  }

  async add(ep: EpisodeRecord): Promise<void> {
    if (ep.steps.length === 0) throw new UserError(`episode ${this.episodes}: has no steps`);
    const bytes = this.encode(ep, `episode ${this.episodes}`);
    this.current ??= new TfRecordWriter(this.shardName(this.shardIndex));
    await this.current.write(bytes);
    this.bytes += bytes.length + 16;
    this.episodes++;
    this.steps += ep.steps.length;
    if (this.current.count >= this.perShard) await this.finishShard();
  }

  private async finishShard(): Promise<void> {
    if (!this.current) return;
    await this.current.close();
    this.shardLengths.push(this.current.count);
    this.written.push(this.current.path);
    this.current = undefined;
    this.shardIndex++;
    this.writeMetadata();
  }

  /** Abandon the shard in progress (Ctrl-C): complete shards stay, the partial one is removed. */
  async abort(): Promise<{ shards: string[]; episodes: number }> {
    await this.current?.abort();
    this.current = undefined;
    const shards = this.finalNames();
    this.writeMetadata();
    return { shards, episodes: this.shardLengths.reduce((a, b) => a + b, 0) };
  }

  private finalNames(): string[] {
    const n = this.written.length;
    const names = this.written.map((_, i) => this.shardName(i, n));
    this.written.forEach((p, i) => renameSync(p, names[i]!));
    this.written.splice(0, n, ...names);
    return names;
  }

  private writeMetadata(): void {
    writeJsonAtomic(join(this.outDir, 'features.json'), featuresJson(this.card, this.imageShape));
    writeJsonAtomic(join(this.outDir, 'dataset_info.json'), {
      name: this.name,
      fileFormat: 'tfrecord',
      moduleName: 'selfflow_wm',
      version: '1.0.0',
      splits: [
        {
          name: this.split,
          filepathTemplate: '{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}',
          numBytes: String(this.bytes),
          shardLengths: this.shardLengths.map(String),
        },
      ],
    });
  }

  async close(): Promise<{ shards: string[]; episodes: number; steps: number }> {
    await this.finishShard();
    const shards = this.finalNames();
    this.writeMetadata();
    return { shards, episodes: this.episodes, steps: this.steps };
  }
}
