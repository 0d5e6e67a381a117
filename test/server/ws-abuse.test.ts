/**
 * A hostile client at small scale: a few thousand invalid frames sent without reading the replies.
 * The flooder is closed (1008, the reason naming the limit) and another client's e-stop is still
 * acknowledged; a client that reads nothing is closed once its unsent replies pass
 * api.max_pending_bytes; connections beyond api.max_clients are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import WebSocket from 'ws';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { startService, type RunningService } from '../../src/service/service.js';
import { startWsApi, type WsApi } from '../../src/server/ws-api.js';
import { decodeServer, encodeClient, type ServerMessage } from '../../src/server/protocol.js';
import type { Plan } from '../../src/core/types.js';
import { FakeLink } from '../service/fakes.js';

const TOKEN = 'abuse-token';
const P = 'selfflow.v1.msgpack';
let open: { svc: RunningService; api: WsApi }[] = [];

afterEach(async () => {
  for (const { svc, api } of open) {
    await api.close();
    await svc.shutdown();
  }
  open = [];
});

async function serve(api: Partial<ServiceConfig['api']>) {
  const cfg: ServiceConfig = {
    ...defaultConfig(),
    controlMode: 'lockstep',
    twistHz: 0,
    statusHz: 0,
    api: { ...defaultConfig().api, port: 0, token: TOKEN, ...api },
  };
  const svc = startService(cfg, () => new Subject<Plan>(), new FakeLink(() => 0), { clock: () => 0 });
  const w = await startWsApi(svc, cfg.api);
  open.push({ svc, api: w });
  return { svc, api: w };
}

interface Conn {
  ws: WebSocket;
  replies: ServerMessage[];
  closed: Promise<{ code: number; reason: string }>;
}

async function connect(url: string): Promise<Conn> {
  const ws = new WebSocket(url, [P]);
  const replies: ServerMessage[] = [];
  ws.on('message', (d: Buffer) => replies.push(decodeServer(P, new Uint8Array(d))));
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  return { ws, replies, closed };
}

const until = async (cond: () => boolean, ms: number) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Sends `n` one-byte invalid frames as fast as the socket takes them, stopping when closed. */
function flood(ws: WebSocket, n: number): void {
  const junk = Uint8Array.from([0xc1]);
  for (let i = 0; i < n && ws.readyState === ws.OPEN; i++) ws.send(junk);
}

describe('WebSocket API under a flood', () => {
  it("closes a client that floods invalid frames (1008) and still acknowledges another client's e-stop", async () => {
    const { svc, api } = await serve({ maxMessagesPerSecond: 100 });
    const flooder = await connect(api.url);
    const operator = await connect(api.url);
    await until(() => operator.replies.length === 1, 5000); // hello
    flooder.ws.pause(); // never reads its replies
    flood(flooder.ws, 3000);
    operator.ws.send(encodeClient(P, { id: 7, token: TOKEN, estop: {} }));
    await until(() => operator.replies.some((m) => m.id === 7), 10_000);
    expect(operator.replies.find((m) => m.id === 7)).toMatchObject({ ack: {} });
    expect(svc.gate.estopSources()).toEqual(['api']);
    flooder.ws.resume();
    const closed = await flooder.closed;
    expect(closed.code).toBe(1008);
    expect(closed.reason).toMatch(/api\.max_messages_per_second \(100 frames\/s\)/);
    // Error replies only for the frames the rate allowed (a burst of one second's worth, plus the
    // refill while they were read), not one per frame sent.
    expect(flooder.replies.filter((m) => m.error).length).toBeLessThan(200);
    // The operator's connection carries on.
    operator.ws.send(encodeClient(P, { id: 8, token: TOKEN, getStatus: {} }));
    await until(() => operator.replies.some((m) => m.id === 8), 10_000);
    expect(api.clientCount()).toBe(1);
  });

  it('acts on an authenticated e-stop even in the frame that gets its sender closed for its rate', async () => {
    const { svc, api } = await serve({ maxMessagesPerSecond: 5 });
    const c = await connect(api.url);
    for (let i = 0; i < 5; i++) c.ws.send(encodeClient(P, { id: i, token: TOKEN, getStatus: {} }));
    c.ws.send(encodeClient(P, { id: 99, token: TOKEN, estop: {} }));
    expect((await c.closed).code).toBe(1008);
    expect(svc.gate.estopSources()).toEqual(['api']);
  });

  it('closes a client whose unsent replies pass api.max_pending_bytes', async () => {
    const { api } = await serve({ maxMessagesPerSecond: 100_000, maxPendingBytes: 1024 });
    const c = await connect(api.url);
    c.ws.pause();
    // Each getStatus earns a status reply; unread, they fill the socket buffers, then ws's queue.
    const req = encodeClient(P, { id: 1, token: TOKEN, getStatus: {} });
    for (let round = 0; round < 100 && c.ws.readyState === c.ws.OPEN && api.clientCount() > 0; round++) {
      for (let i = 0; i < 500; i++) c.ws.send(req);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(api.clientCount()).toBe(0);
    c.ws.resume();
    const closed = await c.closed;
    expect([1008, 1006]).toContain(closed.code); // 1006 if the socket was destroyed before the close frame got through the backlog
  });

  it('refuses connections beyond api.max_clients (1013)', async () => {
    const { api } = await serve({ maxClients: 2 });
    await connect(api.url);
    await connect(api.url);
    const third = await connect(api.url);
    const closed = await third.closed;
    expect(closed.code).toBe(1013);
    expect(closed.reason).toMatch(/api\.max_clients 2/);
  });
});
