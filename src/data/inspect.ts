/** `data inspect`: a dataset's shards, episodes, steps, features, images and instructions. */
import { decodeImage, imageCodec } from '../image/decode.js';
import type { DatasetCard } from './card.js';
import { checkFeaturesJson } from './features-json.js';
import { UserError } from '../core/errors.js';
import { withByteProgress } from './episode-progress.js';
import { listShards, readEpisodes, recordWhere } from './rlds.js';

export interface InspectReport {
  data_dir: string;
  card: string;
  shards: number;
  episodes: number;
  steps: number;
  corrupt_skipped: number;
  corrupt_messages: string[];
  features: Record<string, { dtype: string; shape: number[]; per: 'step' | 'episode'; present_in: number }>;
  image: { feature: string; codecs: Record<string, number>; sizes: Record<string, number> };
  instructions: Record<string, number>;
  step_histogram: Record<string, number>;
  /** Features found in the records that the card does not describe: name -> episodes holding it. */
  unknown_features: Record<string, number>;
  features_json: { present: boolean; problems: string[] };
}

/** Decodes at most this many images per episode for codec and size statistics (first, middle, last). */
const IMAGES_PER_EPISODE = 3;

export async function inspectDataset(dataDir: string, card: DatasetCard, skipCorrupt: boolean, progress = false): Promise<InspectReport> {
  const shards = listShards(dataDir, card);
  const fj = checkFeaturesJson(dataDir, card);
  const r: InspectReport = {
    data_dir: dataDir,
    card: card.source ?? card.name,
    shards: shards.length,
    episodes: 0,
    steps: 0,
    corrupt_skipped: 0,
    corrupt_messages: [],
    features: {},
    image: { feature: card.image, codecs: {}, sizes: {} },
    instructions: {},
    step_histogram: {},
    unknown_features: {},
    features_json: { present: fj.present, problems: fj.problems },
  };
  const onCorrupt = (m: string) => {
    r.corrupt_skipped++;
    if (r.corrupt_messages.length < 20) r.corrupt_messages.push(m);
  };
  const episodes = readEpisodes(dataDir, card, { shards, skipCorrupt, onCorrupt });
  for await (const ep of progress ? withByteProgress(episodes, shards, 'inspect') : episodes) {
    // Sampled frames are decoded first: a record with an undecodable image is corrupt, and is skipped whole.
    const imgs = (ep.fields.get(card.image)?.values as Uint8Array[] | undefined) ?? [];
    const picks = imgs.length ? [...new Set([0, Math.floor(imgs.length / 2), imgs.length - 1])].slice(0, IMAGES_PER_EPISODE) : [];
    let sampled: { codec: string; size: string }[];
    try {
      sampled = picks.map((i) => {
        const img = decodeImage(imgs[i]!, `${recordWhere(ep)}: feature '${card.image}' step ${i}`);
        return { codec: imageCodec(imgs[i]!), size: `${img.height}x${img.width}` };
      });
    } catch (e) {
      if (!skipCorrupt) throw new UserError(`${(e as Error).message} (use --skip-corrupt to skip such records)`);
      onCorrupt((e as Error).message);
      continue;
    }
    for (const { codec, size } of sampled) {
      r.image.codecs[codec] = (r.image.codecs[codec] ?? 0) + 1;
      r.image.sizes[size] = (r.image.sizes[size] ?? 0) + 1;
    }
    r.episodes++;
    r.steps += ep.steps;
    const bucket = ep.steps < 10 ? String(ep.steps) : `${Math.floor(ep.steps / 10) * 10}-${Math.floor(ep.steps / 10) * 10 + 9}`;
    r.step_histogram[bucket] = (r.step_histogram[bucket] ?? 0) + 1;
    for (const [name, f] of ep.fields) {
      const e = (r.features[name] ??= { dtype: f.spec.dtype, shape: f.spec.shape, per: f.spec.per ?? 'step', present_in: 0 });
      e.present_in++;
    }
    for (const name of ep.unknownFeatures) r.unknown_features[name] = (r.unknown_features[name] ?? 0) + 1;
    if (ep.instruction !== undefined) r.instructions[ep.instruction] = (r.instructions[ep.instruction] ?? 0) + 1;
  }
  // The camera's shape as decoded (the card's is nominal: releases differ, frames are resized anyway).
  const common = Object.entries(r.image.sizes).sort((a, b) => b[1] - a[1])[0]?.[0];
  const cam = r.features[card.image];
  if (common && cam) cam.shape = [...common.split('x').map(Number), cam.shape[2] ?? 3];
  return r;
}

export function formatInspect(r: InspectReport): string {
  const lines = [
    `${r.data_dir} (card ${r.card})`,
    `shards ${r.shards}, episodes ${r.episodes}, steps ${r.steps}, corrupt records skipped ${r.corrupt_skipped}`,
    `features.json: ${r.features_json.present ? (r.features_json.problems.length ? `${r.features_json.problems.length} disagreement(s) with the card` : 'agrees with the card') : 'not present'}`,
    ...r.features_json.problems.map((p) => `  ${p}`),
    'features (per step unless marked):',
    ...Object.entries(r.features).map(
      ([n, f]) =>
        `  ${n.padEnd(56)} ${f.dtype.padEnd(8)} [${f.shape.join(', ')}]${f.per === 'episode' ? ' (episode)' : ''}${f.present_in < r.episodes ? ` in ${f.present_in}/${r.episodes} episodes` : ''}`,
    ),
    ...(Object.keys(r.unknown_features).length
      ? [
          'in the data but not in the card (not decoded):',
          ...Object.entries(r.unknown_features).map(([n, c]) => `  ${n} in ${c}/${r.episodes} episodes`),
        ]
      : []),
    `image ${r.image.feature}: codecs ${JSON.stringify(r.image.codecs)}, sizes ${JSON.stringify(r.image.sizes)} (sampled ${IMAGES_PER_EPISODE} per episode)`,
    'instructions:',
    ...Object.entries(r.instructions)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 30)
      .map(([t, n]) => `  ${String(n).padStart(6)}  ${t}`),
    'episode length histogram (steps: episodes):',
    ...Object.entries(r.step_histogram)
      .sort((a, b) => parseInt(a[0]) - parseInt(b[0]))
      .map(([b, n]) => `  ${b.padStart(9)}: ${n}`),
  ];
  if (r.corrupt_messages.length) lines.push('corrupt records:', ...r.corrupt_messages.map((m) => `  ${m}`));
  return lines.join('\n');
}
