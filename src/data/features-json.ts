/** Reads TFDS features.json (nested FeaturesDict) into flat RLDS names and checks it against a card. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetCard, FeatureDType } from './card.js';

export interface TfdsFeature {
  dtype: FeatureDType;
  shape: number[];
  encoding?: string;
}

type Node = Record<string, unknown>;

function leaf(n: Node): TfdsFeature | undefined {
  const dims = (t: Node | undefined) => (((t?.shape as Node | undefined)?.dimensions as string[] | undefined) ?? []).map(Number);
  if (n.image) return { dtype: 'image', shape: dims(n.image as Node), encoding: (n.image as Node).encodingFormat as string };
  if (n.text) return { dtype: 'string', shape: [] };
  if (n.tensor) {
    const t = n.tensor as Node;
    const dt = String(t.dtype);
    return { dtype: dt === 'float32' || dt === 'float64' ? 'float32' : dt === 'bool' ? 'bool' : dt === 'string' ? 'string' : 'int32', shape: dims(t) };
  }
  return undefined;
}

export function flattenFeaturesJson(json: unknown): Map<string, TfdsFeature> {
  const out = new Map<string, TfdsFeature>();
  const walk = (n: Node, path: string[]) => {
    const l = leaf(n);
    if (l) {
      out.set(path.join('/'), l);
      return;
    }
    const dict = (n.featuresDict as Node | undefined)?.features as Record<string, Node> | undefined;
    if (dict) for (const [k, v] of Object.entries(dict)) walk(v, [...path, k]);
    const seq = (n.sequence as Node | undefined)?.feature as Node | undefined;
    if (seq) walk(seq, path);
  };
  walk(json as Node, []);
  return out;
}

/** Problems between the dataset's own features.json (if present) and the card; empty when they agree. */
export function checkFeaturesJson(dataDir: string, card: DatasetCard): { present: boolean; problems: string[]; imageShape?: number[] } {
  const path = join(dataDir, 'features.json');
  if (!existsSync(path)) return { present: false, problems: [] };
  const tfds = flattenFeaturesJson(JSON.parse(readFileSync(path, 'utf8')));
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(card.features)) {
    const f = tfds.get(name);
    if (!f) {
      if (!spec.optional) problems.push(`${path}: has no feature '${name}' that card '${card.name}' requires`);
      continue;
    }
    if (f.dtype !== spec.dtype) problems.push(`${path}: feature '${name}' is ${f.dtype}, card '${card.name}' says ${spec.dtype}`);
    // Image sizes differ between releases of a dataset (frames are resized anyway); channels must agree.
    const a = spec.dtype === 'image' ? spec.shape.slice(2) : spec.shape;
    const b = spec.dtype === 'image' ? f.shape.slice(2) : f.shape;
    const flat = (s: number[]) => s.reduce((x, y) => x * y, 1);
    if (spec.dtype !== 'image' ? flat(a) !== flat(b) : JSON.stringify(a) !== JSON.stringify(b)) {
      problems.push(`${path}: feature '${name}' has shape [${f.shape.join(', ')}], card '${card.name}' says [${spec.shape.join(', ')}]`);
    }
  }
  return { present: true, problems, imageShape: tfds.get(card.image)?.shape };
}
