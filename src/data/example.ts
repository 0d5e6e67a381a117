/** tf.train.Example decoding and encoding with protobufjs, from proto/tensorflow_example.proto. */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../util/package-root.js';

export type FeatureValue =
  { kind: 'bytes'; value: Uint8Array[] } | { kind: 'float'; value: Float32Array } | { kind: 'int64'; value: number[] };
export type ExampleFeatures = Map<string, FeatureValue>;

let exampleType: protobuf.Type | undefined;

function type(): protobuf.Type {
  if (!exampleType) {
    const root = protobuf.loadSync(join(packageRoot(), 'proto', 'tensorflow_example.proto'));
    exampleType = root.lookupType('tensorflow.Example');
  }
  return exampleType;
}

interface RawFeature {
  bytesList?: { value?: Uint8Array[] };
  floatList?: { value?: number[] };
  int64List?: { value?: (number | { toNumber(): number })[] };
}

export function decodeExample(bytes: Uint8Array): ExampleFeatures {
  const msg = type().decode(bytes) as unknown as { features?: { feature?: Record<string, RawFeature> } };
  const out: ExampleFeatures = new Map();
  for (const [name, f] of Object.entries(msg.features?.feature ?? {})) {
    if (f.bytesList) out.set(name, { kind: 'bytes', value: f.bytesList.value ?? [] });
    else if (f.floatList) out.set(name, { kind: 'float', value: Float32Array.from(f.floatList.value ?? []) });
    else if (f.int64List)
      out.set(name, { kind: 'int64', value: (f.int64List.value ?? []).map((v) => (typeof v === 'number' ? v : v.toNumber())) });
    else out.set(name, { kind: 'float', value: new Float32Array(0) });
  }
  return out;
}

export function encodeExample(features: ExampleFeatures): Uint8Array {
  const feature: Record<string, RawFeature> = {};
  for (const [name, f] of features) {
    if (f.kind === 'bytes') feature[name] = { bytesList: { value: f.value } };
    else if (f.kind === 'float') feature[name] = { floatList: { value: Array.from(f.value) } };
    else feature[name] = { int64List: { value: f.value } };
  }
  const t = type();
  return t.encode(t.fromObject({ features: { feature } })).finish();
}
