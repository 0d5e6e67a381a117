/** Reads TFDS features.json (nested FeaturesDict) into flat RLDS names and checks it against a card. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetCard, FeatureDType } from './card.js';
import { UserError, errorMessage } from '../core/errors.js';

export interface TfdsFeature {
  dtype: FeatureDType;
  shape: number[];
  encoding?: string;
}

type Node = Record<string, unknown>;

function leaf(n: Node): TfdsFeature | undefined {
  const dims = (t: Node | undefined) => {
    const d = (t?.shape as Node | undefined)?.dimensions;
    return Array.isArray(d) ? d.map(Number) : [];
  };
  if (n.image) return { dtype: 'image', shape: dims(n.image as Node), encoding: (n.image as Node).encodingFormat as string };
  if (n.text) return { dtype: 'string', shape: [] };
  if (n.tensor) {
    const t = n.tensor as Node;
    const dt = String(t.dtype);
    return {
      dtype: dt === 'float32' || dt === 'float64' ? 'float32' : dt === 'bool' ? 'bool' : dt === 'string' ? 'string' : 'int32',
      shape: dims(t),
    };
  }
  return undefined;
}

/** Nesting deeper than this is not a dataset description (RLDS uses about 5 levels). */
const MAX_FEATURES_DEPTH = 100;

export function flattenFeaturesJson(json: unknown, source = 'features.json'): Map<string, TfdsFeature> {
  const out = new Map<string, TfdsFeature>();
  const walk = (n: Node, path: string[], depth = 0) => {
    if (depth > MAX_FEATURES_DEPTH)
      throw new UserError(
        `${source}: features nested more than ${MAX_FEATURES_DEPTH} levels deep (at '${path.slice(0, 8).join('/')}/...')`,
      );
    if (n === null || typeof n !== 'object') return;
    const l = leaf(n);
    if (l) {
      out.set(path.join('/'), l);
      return;
    }
    const dict = (n.featuresDict as Node | undefined)?.features as Record<string, Node> | undefined;
    if (dict && typeof dict === 'object') for (const [k, v] of Object.entries(dict)) walk(v, [...path, k], depth + 1);
    const seq = (n.sequence as Node | undefined)?.feature as Node | undefined;
    if (seq) walk(seq, path, depth + 1);
  };
  walk(json as Node, []);
  return out;
}

/** Problems between the dataset's own features.json (if present) and the card; empty when they agree. */
export function checkFeaturesJson(dataDir: string, card: DatasetCard): { present: boolean; problems: string[]; imageShape?: number[] } {
  const path = join(dataDir, 'features.json');
  if (!existsSync(path)) return { present: false, problems: [] };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code
        ? `${path}: cannot read (${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : errorMessage(e)}, ${code})`
        : `${path}: not valid JSON (${errorMessage(e)})`,
      { cause: e },
    );
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new UserError(`${path}: expected a JSON object (a TFDS FeaturesDict)`);
  const tfds = flattenFeaturesJson(json, path);
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
