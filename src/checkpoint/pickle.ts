/**
 * A pickle virtual machine for the subset of opcodes that torch.save emits (protocols 2-5).
 * It never executes code: globals become descriptors and only a whitelist of torch
 * rebuild functions is interpreted, so an untrusted checkpoint cannot run anything.
 */

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

export interface PickleOptions {
  /** Turns a persistent id (BINPERSID) into an object, e.g. a torch storage reference. */
  persistentLoad(pid: unknown): unknown;
  /** Interprets REDUCE/NEWOBJ of a global; return undefined to keep a generic PickleReduce. */
  reduce?(fn: PickleGlobal, args: unknown[]): unknown;
}

class Mark {}
const MARK = new Mark();

export function unpickle(bytes: Uint8Array, opts: PickleOptions, source = 'pickle'): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg} at byte ${p}`);
  };
  const u8 = () => bytes[p++]!;
  const u16 = () => ((p += 2), view.getUint16(p - 2, true));
  const u32 = () => ((p += 4), view.getUint32(p - 4, true));
  const i32 = () => ((p += 4), view.getInt32(p - 4, true));
  const str = (n: number) => ((p += n), text.decode(bytes.subarray(p - n, p)));
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) fail('unterminated text line');
    const s = text.decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i] === MARK) return stack.splice(i).slice(1);
    }
    return fail('MARK not found');
  };
  const top = () => stack[stack.length - 1];
  const doReduce = (fn: unknown, args: unknown[]) => {
    if (!isGlobal(fn)) return fail('REDUCE of a non-global callable');
    const r = opts.reduce?.(fn, args);
    return r !== undefined ? r : ({ kind: 'reduce', fn, args } satisfies PickleReduce);
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (!(target instanceof Map)) fail('SETITEM(S) on a non-dict');
    for (let i = 0; i + 1 < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const readLong = (n: number): number | bigint => {
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[p + i]!);
    if (bytes[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    p += n;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  while (p < bytes.byteLength) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: p += 8; break; // FRAME
      case 0x2e: return stack.pop(); // STOP
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x28: stack.push(MARK); break; // MARK
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: stack.push(readLong(u8())); break; // LONG1
      case 0x8b: stack.push(readLong(u32())); break; // LONG4
      case 0x47: stack.push(((p += 8), view.getFloat64(p - 8, false))); break; // BINFLOAT (big-endian)
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number(s)); break; } // INT
      case 0x4c: stack.push(Number(line().replace(/L$/, ''))); break; // LONG
      case 0x46: stack.push(Number(line())); break; // FLOAT
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(Number(((p += 8), view.getBigUint64(p - 8, true))))); break; // BINUNICODE8
      case 0x54: stack.push(str(i32())); break; // BINSTRING
      case 0x55: stack.push(str(u8())); break; // SHORT_BINSTRING
      case 0x42: { const n = u32(); stack.push(bytes.slice(p, (p += n))); break; } // BINBYTES
      case 0x43: { const n = u8(); stack.push(bytes.slice(p, (p += n))); break; } // SHORT_BINBYTES
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; ASCII in practice)
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memo.get(u8())); break; // BINGET
      case 0x6a: stack.push(memo.get(u32())); break; // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push({ kind: 'global', module, name } satisfies PickleGlobal); break; } // GLOBAL
      case 0x93: { const name = stack.pop() as string; const module = stack.pop() as string; stack.push({ kind: 'global', module, name } satisfies PickleGlobal); break; } // STACK_GLOBAL
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); const a = stack.pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); const a = stack.pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x64: { const kv = popMark(); const m = new Map(); for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i], kv[i + 1]); stack.push(m); break; } // DICT
      case 0x61: { const v = stack.pop(); (top() as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); (top() as unknown[]).push(...items); break; } // APPENDS
      case 0x90: { const items = popMark(); const s = top() as Set<unknown>; items.forEach((i) => s.add(i)); break; } // ADDITEMS
      case 0x73: { const v = stack.pop(); const k = stack.pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x51: stack.push(opts.persistentLoad(stack.pop())); break; // BINPERSID
      case 0x52: { const args = stack.pop() as unknown[]; const fn = stack.pop(); stack.push(doReduce(fn, args)); break; } // REDUCE
      case 0x81: { const args = stack.pop() as unknown[]; const cls = stack.pop(); stack.push(doReduce(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD: attach state; dict-like objects (OrderedDict._metadata) keep their items.
        const state = stack.pop();
        const obj = top();
        if (obj && typeof obj === 'object' && 'kind' in obj && (obj as PickleReduce).kind === 'reduce') (obj as PickleReduce).state = state;
        break;
      }
      case 0x30: stack.pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)}`);
    }
  }
  return fail('no STOP opcode');
}

export function isGlobal(v: unknown): v is PickleGlobal {
  return typeof v === 'object' && v !== null && (v as PickleGlobal).kind === 'global';
}
