/**
 * The WebSocket API's two encodings of one message set (proto/selfflow_v1.proto): protobuf, and
 * msgpack maps with the same camelCase field names. Decoding validates the shape, so the server
 * only ever sees well-formed requests.
 */
import { join } from 'node:path';
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import protobuf from 'protobufjs';
import { packageRoot } from '../util/package-root.js';

export const SUBPROTOCOLS = ['selfflow.v1.protobuf', 'selfflow.v1.msgpack'] as const;
export type Subprotocol = (typeof SUBPROTOCOLS)[number];
export const STREAMS = ['status', 'plans', 'frames', 'latency', 'commands'] as const;
export type StreamName = (typeof STREAMS)[number];

export const CLIENT_OPS = ['setGoal', 'start', 'stop', 'subscribe', 'estop', 'clearEstop', 'getStatus'] as const;
export type ClientOp = (typeof CLIENT_OPS)[number];

export interface ClientMessage {
  id: number;
  token: string;
  op: ClientOp;
  setGoal?: { images: Uint8Array[]; instruction?: string };
  subscribe?: { streams: StreamName[] };
}

/** Server messages in the protobufjs object form (one op key set). */
export interface ServerMessage {
  id?: number;
  hello?: { service: string; version: string; streams: string[]; maxMessageBytes: number };
  ack?: Record<string, never>;
  error?: { message: string };
  status?: Record<string, unknown>;
  plan?: Record<string, unknown>;
  frame?: { observationStamp: number; index: number; width: number; height: number; jpeg: Uint8Array };
  latency?: { totalMs: number; planningMs: number; serviceMs: number; waitMs: number };
  command?: { action: number[]; zeroed: string; clamped: string[] };
}

export class ProtocolError extends Error {
  /** The request id, when the frame got far enough to have one (echoed in the error reply). */
  id?: number;
}

let root: protobuf.Root | undefined;
function types(): { client: protobuf.Type; server: protobuf.Type } {
  root ??= protobuf.loadSync(join(packageRoot(), 'proto', 'selfflow_v1.proto'));
  return { client: root.lookupType('selfflow.v1.ClientMessage'), server: root.lookupType('selfflow.v1.ServerMessage') };
}

/** Checks a decoded message (either encoding) and returns the request it makes. */
export function validateClient(raw: unknown): ClientMessage {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ProtocolError('message must be a map');
  const m = raw as Record<string, unknown>;
  const id = m.id ?? 0;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff)
    throw new ProtocolError('field id must be an unsigned 32-bit integer');
  try {
    return validateFields(m, id);
  } catch (e) {
    if (e instanceof ProtocolError) e.id = id;
    throw e;
  }
}

function validateFields(m: Record<string, unknown>, id: number): ClientMessage {
  const token = m.token ?? '';
  if (typeof token !== 'string') throw new ProtocolError('field token must be a string');
  const ops = CLIENT_OPS.filter((k) => m[k] !== undefined && m[k] !== null);
  if (ops.length !== 1)
    throw new ProtocolError(`message must hold exactly one of ${CLIENT_OPS.join(', ')} (found ${ops.length ? ops.join(', ') : 'none'})`);
  const op = ops[0]!;
  const out: ClientMessage = { id, token, op };
  // Every payload is a map: a list, a byte string or a scalar in its place is refused, whichever the op.
  if (!isMap(m[op])) throw new ProtocolError(`${op} must be a map, got ${kindOf(m[op])}`);
  if (op === 'setGoal') {
    const g = m.setGoal as Record<string, unknown>;
    if (!Array.isArray(g.images) || g.images.length === 0 || !g.images.every((b) => b instanceof Uint8Array)) {
      throw new ProtocolError('setGoal.images must be a non-empty list of JPEG/PNG byte strings');
    }
    if (g.instruction !== undefined && typeof g.instruction !== 'string') throw new ProtocolError('setGoal.instruction must be a string');
    out.setGoal = { images: g.images, instruction: g.instruction || undefined };
  } else if (op === 'subscribe') {
    const s = m.subscribe as Record<string, unknown>;
    const streams = s.streams ?? [];
    if (!Array.isArray(streams)) throw new ProtocolError('subscribe.streams must be a list of stream names');
    for (const n of streams)
      if (!(STREAMS as readonly unknown[]).includes(n))
        throw new ProtocolError(`unknown stream ${JSON.stringify(n)} (streams: ${STREAMS.join(', ')})`);
    out.subscribe = { streams: streams as StreamName[] };
  } else if (Object.keys(m[op] as object).length)
    throw new ProtocolError(
      `${op} must be an empty map, got fields ${Object.keys(m[op] as object)
        .slice(0, 8)
        .join(', ')}`,
    );
  return out;
}

/** A decoded map (msgpack) or message object (protobuf): not null, a list or a byte string. */
function isMap(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && !(v instanceof Map);
}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (ArrayBuffer.isView(v)) return 'a byte string';
  return typeof v;
}

export function decodeClient(protocol: Subprotocol, bytes: Uint8Array): ClientMessage {
  let raw: unknown;
  try {
    if (protocol === 'selfflow.v1.protobuf') {
      const t = types().client;
      const msg = t.decode(bytes);
      raw = t.toObject(msg, { longs: Number, defaults: false, oneofs: false });
    } else raw = msgpackDecode(bytes, { maxStrLength: bytes.length, maxBinLength: bytes.length, maxArrayLength: 1024, maxMapLength: 64 });
  } catch (e) {
    throw new ProtocolError(`malformed ${protocol} frame: ${(e as Error).message}`);
  }
  return validateClient(raw);
}

export function encodeServer(protocol: Subprotocol, msg: ServerMessage): Uint8Array {
  if (protocol === 'selfflow.v1.protobuf') {
    const t = types().server;
    return t.encode(t.fromObject(msg)).finish();
  }
  return msgpackEncode(msg, { ignoreUndefined: true });
}

export function decodeServer(protocol: Subprotocol, bytes: Uint8Array): ServerMessage {
  if (protocol === 'selfflow.v1.protobuf') {
    const t = types().server;
    return t.toObject(t.decode(bytes), { longs: Number, defaults: false });
  }
  return msgpackDecode(bytes) as ServerMessage;
}

export function encodeClient(protocol: Subprotocol, msg: Omit<ClientMessage, 'op'> & Partial<Record<ClientOp, unknown>>): Uint8Array {
  const obj: Record<string, unknown> = { ...msg };
  delete obj.op;
  if (protocol === 'selfflow.v1.protobuf') {
    const t = types().client;
    return t.encode(t.fromObject(obj)).finish();
  }
  return msgpackEncode(obj, { ignoreUndefined: true });
}
