/**
 * Reads PyTorch `torch.save` files (zip archive: `<name>/data.pkl` + raw storages under
 * `<name>/data/<key>`) without Python, e.g. the released `selfflow_imagenet256.pt`.
 */
import { readFileSync } from 'node:fs';
import { UserError, errorMessage } from '../core/errors.js';
import { decodeRaw, type RawType } from './decode-raw.js';
import { isGlobal, unpickle } from './pickle.js';
import type { HostTensor } from './tensor-map.js';
import { ZipArchive, type ZipLimits } from './zip.js';

const STORAGE_TYPES: Record<string, RawType> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

interface StorageRef {
  kind: 'storage';
  key: string;
  type: RawType;
}

/** A tensor in the pickle graph, decoded lazily so unused entries (optimizer state) cost nothing. */
export class TorchTensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    private readonly load: (key: string) => Uint8Array,
  ) {}

  decode(): HostTensor {
    return decodeRaw(this.load(this.storage.key), this.storage.type, this.shape, this.offset, this.stride);
  }
}

/** Parse a torch.save archive into its object graph (Maps for dicts, TorchTensorRef for tensors). */
export function readTorchPickle(path: string, limits: ZipLimits = {}): unknown {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `${path}: cannot read checkpoint (${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : errorMessage(e)}${code ? `, ${code}` : ''})`,
      { cause: e },
    );
  }
  let archive: ZipArchive;
  try {
    archive = new ZipArchive(bytes, path, limits);
  } catch (e) {
    throw new UserError(`${path}: not a torch.save zip archive (${errorMessage(e)}); legacy pre-1.6 pickles are not supported`);
  }
  const pkl = [...archive.entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (!pkl) throw new UserError(`${path}: archive has no data.pkl (not written by torch.save?)`);
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const storages = new Map<string, Uint8Array>();
  const load = (key: string) => {
    let s = storages.get(key);
    if (!s) {
      s = archive.read(`${prefix}data/${key}`);
      storages.set(key, s);
    }
    return s;
  };
  return unpickle(
    archive.read(pkl),
    {
      persistentLoad(pid) {
        const t = pid as unknown[];
        if (!Array.isArray(t) || t[0] !== 'storage') throw new Error(`unknown persistent id (${describe(t)})`);
        const typ = t[1];
        if (!isGlobal(typ)) throw new Error(`storage type is ${describe(typ)}, not a class`);
        const type = Object.hasOwn(STORAGE_TYPES, typ.name) ? STORAGE_TYPES[typ.name] : undefined;
        if (!type) throw new Error(`unsupported storage type ${typ.module}.${typ.name}`);
        return { kind: 'storage', key: String(t[2]), type } satisfies StorageRef;
      },
      reduce(fn, args) {
        const full = `${fn.module}.${fn.name}`;
        if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') {
          const [storage, offset, shape, stride] = args as [StorageRef, number, number[], number[]];
          return new TorchTensorRef(storage, offset, shape, stride, load);
        }
        if (full === 'torch._utils._rebuild_parameter' || full === 'torch._utils._rebuild_parameter_with_state') return args[0];
        if (full === 'collections.OrderedDict') return new Map((args[0] as [unknown, unknown][] | undefined) ?? []);
        return undefined;
      },
    },
    `${path}: ${pkl}`,
  );
}

/** A short description of a pickled value for error messages (never walks the value). */
function describe(v: unknown): string {
  if (Array.isArray(v)) return `a tuple of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 60));
  return v === null ? 'None' : typeof v;
}

/** Dicts nested deeper than this are not a state dict (real ones nest a few levels). */
export const MAX_STATE_DICT_DEPTH = 100;

/**
 * Flattens nested dicts of tensors into dotted names, as a state dict spells them. `source` names
 * the file in the error for dicts nested too deep or holding themselves.
 */
export function collectTensors(
  node: unknown,
  prefix = '',
  out = new Map<string, TorchTensorRef>(),
  source = 'checkpoint',
  path = new Set<unknown>(),
): Map<string, TorchTensorRef> {
  if (node instanceof TorchTensorRef) out.set(prefix, node);
  else if (node instanceof Map) {
    if (path.has(node)) throw new UserError(`${source}: dict '${prefix}' contains itself`);
    if (path.size >= MAX_STATE_DICT_DEPTH)
      throw new UserError(`${source}: dicts nested more than ${MAX_STATE_DICT_DEPTH} deep (at '${prefix.slice(0, 200)}...')`);
    path.add(node);
    for (const [k, v] of node) collectTensors(v, prefix ? `${prefix}.${String(k)}` : String(k), out, source, path);
    path.delete(node);
  }
  return out;
}

export { isGlobal };
