/**
 * A pickle virtual machine for the subset of opcodes that torch.save emits (protocols 2-5).
 * It never executes code: globals become descriptors and only a whitelist of torch
 * rebuild functions is interpreted, so an untrusted checkpoint cannot run anything.
 */
import { UserError, errorMessage } from '../core/errors.js';

export interface PickleGlobal {
  kind: 'global';
  module: string;
  name: string;
}

export interface PickleReduce {
  kind: 'reduce';
  fn: PickleGlobal;
  args: unknown[];
  state?: unknown;
}

/** The longest LONG1/LONG4 integer accepted, in bytes: far above any real checkpoint's (they fit in 8). */
export const MAX_LONG_BYTES = 4096;
/** The deepest container nesting accepted: a state dict nests a handful of levels. */
export const MAX_PICKLE_DEPTH = 1000;

export interface PickleOptions {
  /** Turns a persistent id (BINPERSID) into an object, e.g. a torch storage reference. */
  persistentLoad(pid: unknown): unknown;
  /** Interprets REDUCE/NEWOBJ of a global; return undefined to keep a generic PickleReduce. */
  reduce?(fn: PickleGlobal, args: unknown[]): unknown;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

class Mark {}
const MARK = new Mark();

/**
 * Runs the pickle in `bytes`; `source` names the file (and entry) in every error, each a UserError
 * with the byte offset of the opcode at fault.
 */
export function unpickle(bytes: Uint8Array, opts: PickleOptions, source = 'pickle'): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  // Nesting depth of every container built so far (leaves count 0), so deep graphs are refused as they are built.
  const depths = new WeakMap<object, number>();
  let p = 0;
  let opStart = 0;
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg} at byte ${opStart}`);
  };
  const need = (n: number) => {
    if (n < 0 || p + n > bytes.byteLength) fail(`truncated pickle: opcode needs ${n} more bytes, ${bytes.byteLength - p} are left`);
  };
  const u8 = () => (need(1), bytes[p++]!);
  const u16 = () => (need(2), (p += 2), view.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), view.getUint32(p - 4, true));
  const i32 = () => (need(4), (p += 4), view.getInt32(p - 4, true));
  const u64 = () => (need(8), (p += 8), view.getBigUint64(p - 8, true));
  const str = (n: number) => (need(n), (p += n), text.decode(bytes.subarray(p - n, p)));
  const raw = (n: number) => (need(n), bytes.slice(p, (p += n)));
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) fail('unterminated text line');
    const s = text.decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const depthOf = (v: unknown) => (v !== null && typeof v === 'object' ? (depths.get(v) ?? 0) : 0);
  /** Records that `container` now holds `items`; refuses nesting deeper than MAX_PICKLE_DEPTH. */
  const nest = <T>(container: T, items: Iterable<unknown>): T => {
    if (container === null || typeof container !== 'object') return container;
    let d = depths.get(container) ?? 1;
    for (const item of items) d = Math.max(d, depthOf(item) + 1);
    if (d > MAX_PICKLE_DEPTH) fail(`containers nested more than ${MAX_PICKLE_DEPTH} deep`);
    depths.set(container, d);
    return container;
  };
  const popMark = (): unknown[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i] === MARK) return stack.splice(i).slice(1);
    }
    return fail('MARK not found');
  };
  const pop = () => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) fail('pop from an empty stack');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('empty stack');
    return stack[stack.length - 1];
  };
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : fail('APPEND(S) to a non-list'));
  const doReduce = (fn: unknown, args: unknown) => {
    if (!isGlobal(fn)) return fail('REDUCE of a non-global callable');
    if (!Array.isArray(args)) return fail('REDUCE arguments are not a tuple');
    const r = opts.reduce?.(fn, args);
    return nest(r !== undefined ? r : ({ kind: 'reduce', fn, args } satisfies PickleReduce), args);
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
    nest(target, kv);
  };
  /** Little-endian two's complement of n bytes, in time linear in n (one hex string, one BigInt parse). */
  const readLong = (n: number): number | bigint => {
    if (n > MAX_LONG_BYTES) fail(`integer of ${n} bytes is longer than the ${MAX_LONG_BYTES}-byte limit`);
    need(n);
    if (n === 0) return 0;
    let hex = '';
    for (let i = n - 1; i >= 0; i--) hex += HEX[bytes[p + i]!];
    let v = BigInt(`0x${hex}`);
    if (bytes[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    p += n;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  try {
    return run();
  } catch (e) {
    if (e instanceof UserError) throw e;
    // A malformed stack (a tuple where a list is expected, ...) or a rejected persistent id or reduce.
    throw new UserError(`${source}: ${errorMessage(e)} at byte ${opStart}`, { cause: e });
  }

  function run(): unknown {
    while (p < bytes.byteLength) {
      opStart = p;
      const op = u8();
      switch (op) {
        case 0x80:
          u8();
          break; // PROTO
        case 0x95:
          u64();
          break; // FRAME
        case 0x2e:
          return pop(); // STOP
        case 0x7d:
          stack.push(new Map());
          break; // EMPTY_DICT
        case 0x5d:
          stack.push([]);
          break; // EMPTY_LIST
        case 0x29:
          stack.push([]);
          break; // EMPTY_TUPLE
        case 0x8f:
          stack.push(new Set());
          break; // EMPTY_SET
        case 0x28:
          stack.push(MARK);
          break; // MARK
        case 0x4e:
          stack.push(null);
          break; // NONE
        case 0x88:
          stack.push(true);
          break; // NEWTRUE
        case 0x89:
          stack.push(false);
          break; // NEWFALSE
        case 0x4b:
          stack.push(u8());
          break; // BININT1
        case 0x4d:
          stack.push(u16());
          break; // BININT2
        case 0x4a:
          stack.push(i32());
          break; // BININT
        case 0x8a:
          stack.push(readLong(u8()));
          break; // LONG1
        case 0x8b:
          stack.push(readLong(u32()));
          break; // LONG4
        case 0x47:
          need(8);
          stack.push(((p += 8), view.getFloat64(p - 8, false)));
          break; // BINFLOAT (big-endian)
        case 0x49: {
          const s = line();
          stack.push(s === '01' ? true : s === '00' ? false : Number(s));
          break;
        } // INT
        case 0x4c:
          stack.push(Number(line().replace(/L$/, '')));
          break; // LONG
        case 0x46:
          stack.push(Number(line()));
          break; // FLOAT
        case 0x58:
          stack.push(str(u32()));
          break; // BINUNICODE
        case 0x8c:
          stack.push(str(u8()));
          break; // SHORT_BINUNICODE
        case 0x8d: {
          const n = u64();
          if (n > BigInt(bytes.byteLength)) fail(`string of ${n} bytes runs past the end`);
          stack.push(str(Number(n)));
          break;
        } // BINUNICODE8
        case 0x54:
          stack.push(str(i32()));
          break; // BINSTRING
        case 0x55:
          stack.push(str(u8()));
          break; // SHORT_BINSTRING
        case 0x42:
          stack.push(raw(u32()));
          break; // BINBYTES
        case 0x43:
          stack.push(raw(u8()));
          break; // SHORT_BINBYTES
        case 0x56:
          stack.push(line());
          break; // UNICODE (raw-unicode-escape; ASCII in practice)
        case 0x71:
          memo.set(u8(), top());
          break; // BINPUT
        case 0x72:
          memo.set(u32(), top());
          break; // LONG_BINPUT
        case 0x94:
          memo.set(memo.size, top());
          break; // MEMOIZE
        case 0x68:
          stack.push(memo.get(u8()));
          break; // BINGET
        case 0x6a:
          stack.push(memo.get(u32()));
          break; // LONG_BINGET
        case 0x63: {
          const module = line();
          const name = line();
          stack.push({ kind: 'global', module, name } satisfies PickleGlobal);
          break;
        } // GLOBAL
        case 0x93: {
          const name = String(pop());
          const module = String(pop());
          stack.push({ kind: 'global', module, name } satisfies PickleGlobal);
          break;
        } // STACK_GLOBAL
        case 0x74: {
          const items = popMark();
          stack.push(nest(items, items));
          break;
        } // TUPLE
        case 0x85: {
          const a = [pop()];
          stack.push(nest(a, a));
          break;
        } // TUPLE1
        case 0x86: {
          const b = pop();
          const a = pop();
          stack.push(nest([a, b], [a, b]));
          break;
        } // TUPLE2
        case 0x87: {
          const c = pop();
          const b = pop();
          const a = pop();
          stack.push(nest([a, b, c], [a, b, c]));
          break;
        } // TUPLE3
        case 0x6c: {
          const items = popMark();
          stack.push(nest(items, items));
          break;
        } // LIST
        case 0x64: {
          const kv = popMark();
          const m = new Map();
          for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
          stack.push(nest(m, kv));
          break;
        } // DICT
        case 0x61: {
          const v = pop();
          nest(list(top()), [v]).push(v);
          break;
        } // APPEND
        case 0x65: {
          const items = popMark();
          const l = nest(list(top()), items);
          for (const i of items) l.push(i);
          break;
        } // APPENDS
        case 0x90: {
          const items = popMark();
          const s = top();
          if (!(s instanceof Set)) fail('ADDITEMS to a non-set');
          items.forEach((i) => (s as Set<unknown>).add(i));
          nest(s, items);
          break;
        } // ADDITEMS
        case 0x73: {
          const v = pop();
          const k = pop();
          setItems(top(), [k, v]);
          break;
        } // SETITEM
        case 0x75: {
          const kv = popMark();
          setItems(top(), kv);
          break;
        } // SETITEMS
        case 0x51:
          stack.push(opts.persistentLoad(pop()));
          break; // BINPERSID
        case 0x52: {
          const args = pop();
          const fn = pop();
          stack.push(doReduce(fn, args));
          break;
        } // REDUCE
        case 0x81: {
          const args = pop();
          const cls = pop();
          stack.push(doReduce(cls, args));
          break;
        } // NEWOBJ
        case 0x62: {
          // BUILD: attach state; dict-like objects (OrderedDict._metadata) keep their items.
          const state = pop();
          const obj = top();
          if (obj && typeof obj === 'object' && 'kind' in obj && (obj as PickleReduce).kind === 'reduce') {
            nest(obj, [state]);
            (obj as PickleReduce).state = state;
          }
          break;
        }
        case 0x30:
          pop();
          break; // POP
        case 0x31:
          popMark();
          break; // POP_MARK
        case 0x32:
          stack.push(top());
          break; // DUP
        default:
          fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
    return fail('no STOP opcode');
  }
}

export function isGlobal(v: unknown): v is PickleGlobal {
  return typeof v === 'object' && v !== null && (v as PickleGlobal).kind === 'global';
}
