import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import WebSocket from 'ws';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { startService, type RunningService } from '../../src/service/service.js';
import { startWsApi, type WsApi } from '../../src/server/ws-api.js';
import { decodeServer, encodeClient, SUBPROTOCOLS, type ServerMessage, type Subprotocol } from '../../src/server/protocol.js';
import { encodePng } from '../../src/image/png.js';
import { safeAction } from '../../src/core/action.js';
import type { Plan } from '../../src/core/types.js';
import { FakeLink } from '../service/fakes.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { observationToImage } from '../../src/robot/messages.js';

const TOKEN = 'test-token';
const LIMIT = 64 * 1024;
let svc: RunningService;
let api: WsApi;
let link: FakeLink;
const plans = new Subject<Plan>();

beforeAll(async () => {
  const cfg: ServiceConfig = {
    ...defaultConfig(),
    controlMode: 'lockstep',
    twistHz: 0,
    statusHz: 0,
    api: { ...defaultConfig().api, enabled: true, host: '127.0.0.1', port: 0, token: TOKEN, maxMessageBytes: LIMIT },
  };
  link = new FakeLink(() => 0);
  svc = startService(cfg, () => plans, link, { clock: () => 0 });
  api = await startWsApi(svc, cfg.api, { imaginedShape: { height: 4, width: 5 } });
});
afterAll(async () => {
  await api.close();
  await svc.shutdown();
});

interface Conn {
  ws: WebSocket;
  next(): Promise<ServerMessage>;
  closed: Promise<number>;
}

async function connect(protocol: Subprotocol | undefined): Promise<Conn> {
  const ws = new WebSocket(api.url, protocol ? [protocol] : []);
  const queue: ServerMessage[] = [];
  const waiters: ((m: ServerMessage) => void)[] = [];
  ws.on('message', (d: Buffer) => {
    const m = decodeServer(protocol ?? 'selfflow.v1.msgpack', new Uint8Array(d));
    const w = waiters.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  return { ws, closed, next: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiters.push(r))) };
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function hello(protocol: Subprotocol): Promise<Conn> {
  const c = await connect(protocol);
  const h = (await c.next()).hello;
  expect(h?.maxMessageBytes).toBe(LIMIT);
  expect(h?.version).toBe(VERSION);
  return c;
}

describe.each(SUBPROTOCOLS.map((p) => [p]))('WebSocket API over %s', (protocol) => {
  it('rejects unauthenticated, malformed, oversized and text frames with an error reply and keeps serving', async () => {
    const a = await hello(protocol);
    const b = await hello(protocol);
    a.ws.send(encodeClient(protocol, { id: 1, token: 'nope', estop: {} }));
    expect(await a.next()).toMatchObject({ id: 1, error: { message: expect.stringMatching(/unauthorized/) } });
    expect(svc.gate.estopActive).toBe(false);
    a.ws.send(encodeClient(protocol, { id: 2, token: '', getStatus: {} }));
    expect((await a.next()).error?.message).toMatch(/unauthorized/);
    a.ws.send(Uint8Array.from([0xc1, 0xff, 0xff, 0x0a, 0x99]));
    expect((await a.next()).error?.message).toMatch(/malformed|must/);
    a.ws.send(new Uint8Array(LIMIT + 10));
    expect((await a.next()).error?.message).toMatch(/exceeds the limit of 65536 bytes/);
    a.ws.send('{"op":"start"}');
    expect((await a.next()).error?.message).toMatch(/text frames/);
    a.ws.send(encodeClient(protocol, { id: 3, token: TOKEN, subscribe: { streams: ['bogus'] } } as never));
    expect((await a.next()).error?.message).toMatch(/unknown stream "bogus"/);
    // The other client never noticed.
    b.ws.send(encodeClient(protocol, { id: 9, token: TOKEN, getStatus: {} }));
    const st = await b.next();
    expect(st.id).toBe(9);
    expect(st.status).toBeDefined();
    // Far beyond the limit: this connection is closed (1009), the other one lives on.
    a.ws.send(new Uint8Array(LIMIT * 2 + 1));
    expect(await a.closed).toBe(1009);
    b.ws.send(encodeClient(protocol, { id: 10, token: TOKEN, getStatus: {} }));
    expect((await b.next()).id).toBe(10);
    b.ws.close();
  });

  it('sets a goal, starts and stops, latches e-stop and streams plans and imagined frames', async () => {
    const c = await hello(protocol);
    const png = encodePng(new Uint8Array(6 * 4 * 3).fill(200), 6, 4);
    c.ws.send(encodeClient(protocol, { id: 1, token: TOKEN, setGoal: { images: [png], instruction: 'open the drawer' } }));
    expect(await c.next()).toMatchObject({ id: 1, ack: {} });
    expect(svc.status().hasGoal).toBe(true);
    c.ws.send(encodeClient(protocol, { id: 2, token: TOKEN, setGoal: { images: [Uint8Array.from([1, 2, 3])] } }));
    expect((await c.next()).error?.message).toMatch(/setGoal.images\[0\]/);
    c.ws.send(encodeClient(protocol, { id: 3, token: TOKEN, stop: {} }));
    expect((await c.next()).ack).toBeDefined();
    expect(svc.status().running).toBe(false);
    c.ws.send(encodeClient(protocol, { id: 4, token: TOKEN, start: {} }));
    await c.next();
    expect(svc.status().running).toBe(true);
    c.ws.send(encodeClient(protocol, { id: 5, token: TOKEN, estop: {} }));
    await c.next();
    expect(svc.gate.estopSources()).toEqual(['api']);
    expect(svc.status().running).toBe(false);
    // Start is refused while the e-stop is latched; clearing it does not restart by itself.
    c.ws.send(encodeClient(protocol, { id: 51, token: TOKEN, start: {} }));
    expect(await c.next()).toMatchObject({ id: 51, error: { message: expect.stringMatching(/cannot start: e-stop latched \(api\)/) } });
    c.ws.send(encodeClient(protocol, { id: 6, token: TOKEN, clearEstop: {} }));
    await c.next();
    expect(svc.gate.estopActive).toBe(false);
    expect(svc.status().running).toBe(false);
    c.ws.send(encodeClient(protocol, { id: 61, token: TOKEN, start: {} }));
    expect(await c.next()).toMatchObject({ id: 61, ack: {} });
    expect(svc.status().running).toBe(true);
    c.ws.send(encodeClient(protocol, { id: 7, token: TOKEN, subscribe: { streams: ['plans', 'frames'] } }));
    await c.next();
    plans.next({
      actions: [safeAction()],
      cost: 1.5,
      iterations: 2,
      candidatesEvaluated: 64,
      latencyMs: 12,
      observationStamp: 42,
      safe: false,
      imagined: [new Uint8Array(4 * 5 * 3).fill(90)],
    });
    const plan = await c.next();
    expect(plan.plan).toMatchObject({ cost: 1.5, candidatesEvaluated: 64, observationStamp: 42 });
    expect((plan.plan!.actions as number[]).length).toBe(10);
    const frame = await c.next();
    expect(frame.frame).toMatchObject({ width: 5, height: 4 });
    expect(frame.frame!.index ?? 0).toBe(0); // proto3 leaves zero values out
    expect([...frame.frame!.jpeg.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    c.ws.close();
  });
});

describe('WebSocket API streams', () => {
  it('streams status changes, commands and the latency the service added', async () => {
    const c = await hello('selfflow.v1.protobuf');
    c.ws.send(encodeClient('selfflow.v1.protobuf', { id: 1, token: TOKEN, subscribe: { streams: ['status', 'commands', 'latency'] } }));
    expect((await c.next()).ack).toBeDefined();
    let stamp = -1;
    const sub = svc.observations$.subscribe((o) => (stamp = o.stamp));
    link.inject(
      '/image_raw',
      'sensor_msgs/msg/Image',
      rosCodec().encode('sensor_msgs/msg/Image', observationToImage({ image: new Uint8Array(12), height: 2, width: 2, stamp: 777 }, 'cam')),
    );
    sub.unsubscribe();
    plans.next({
      actions: [{ worldVector: [0.01, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] }],
      cost: 0,
      iterations: 1,
      candidatesEvaluated: 1,
      latencyMs: 0,
      observationStamp: stamp,
      safe: false,
    });
    const command = await c.next();
    expect(command.command!.action[0]).toBeCloseTo(0.01, 6);
    const latency = await c.next();
    expect(latency.latency).toBeDefined();
    svc.estop('api');
    // The e-stop's own zero command, then the status.
    expect((await c.next()).command).toMatchObject({ zeroed: 'e-stop (api)' });
    const status = await c.next();
    expect(status.status).toMatchObject({ estop: true, estopSources: ['api'], blocked: 'e-stop latched (api)' });
    svc.clearEstop('api');
    const cleared = (await c.next()).status!;
    expect(cleared.estop ?? false).toBe(false);
    expect(cleared.running ?? false).toBe(false);
    expect(svc.start()).toBeUndefined();
    c.ws.close();
  });
});

describe('WebSocket API connection rules', () => {
  it('refuses a connection without a selfflow subprotocol', async () => {
    const c = await connect(undefined);
    expect(await c.closed).toBe(1002);
  });

  it('answers a msgpack map that holds two operations with an error', async () => {
    const c = await hello('selfflow.v1.msgpack');
    c.ws.send(msgpackEncode({ id: 5, token: TOKEN, start: {}, stop: {} }));
    expect(await c.next()).toMatchObject({ id: 5, error: { message: expect.stringMatching(/exactly one of/) } });
    c.ws.close();
  });

  it('refuses an op payload that is a list, a byte string or a scalar, or an empty op with fields, and latches nothing', async () => {
    const c = await hello('selfflow.v1.msgpack');
    const refused: [unknown, RegExp][] = [
      [{ estop: [] }, /estop must be a map, got a list/],
      [{ estop: new Uint8Array(2) }, /estop must be a map, got a byte string/],
      [{ estop: 1 }, /estop must be a map, got number/],
      [{ start: { now: true } }, /start must be an empty map, got fields now/],
      [{ subscribe: ['status'] }, /subscribe must be a map, got a list/],
      [{ setGoal: [new Uint8Array(4)] }, /setGoal must be a map, got a list/],
    ];
    for (const [i, [op, message]] of refused.entries()) {
      c.ws.send(msgpackEncode({ id: 20 + i, token: TOKEN, ...(op as object) }));
      expect(await c.next()).toMatchObject({ id: 20 + i, error: { message: expect.stringMatching(message) } });
    }
    expect(svc.gate.estopActive).toBe(false);
    c.ws.close();
  });

  it('binds to loopback by default', () => {
    expect(defaultConfig().api.host).toBe('127.0.0.1');
    expect(api.url.startsWith('ws://127.0.0.1:')).toBe(true);
  });
});
