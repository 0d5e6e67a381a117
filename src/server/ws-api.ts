/**
 * The WebSocket API for clients and dashboards: ws://HOST:PORT/v1 with subprotocol
 * `selfflow.v1.protobuf` or `selfflow.v1.msgpack`. Bound to loopback unless configured; every
 * client message must carry the token; frames over the size limit, malformed or unauthenticated
 * ones get an error reply on that connection only, never touching the service or other clients.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { decodeImage } from '../image/decode.js';
import type { Plan } from '../core/types.js';
import { flattenAction } from '../core/action.js';
import { encodeJpeg } from '../robot/messages.js';
import type { ServiceConfig } from '../service/config.js';
import type { RunningService, ServiceStatus } from '../service/service.js';
import { errorMessage, UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';
import { decodeClient, encodeServer, ProtocolError, STREAMS, SUBPROTOCOLS, type ClientMessage, type ServerMessage, type StreamName, type Subprotocol } from './protocol.js';

export interface WsApiOptions {
  /** Height x width of the planner's imagined frames (Plan.imagined holds bare RGB). */
  imaginedShape?: { height: number; width: number };
  log?: (line: string) => void;
  /** hello.version; default the package's version. */
  version?: string;
}

let pkgVersion: string | undefined;
function packageVersion(): string {
  pkgVersion ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return pkgVersion;
}

export interface WsApi {
  port: number;
  url: string;
  clientCount(): number;
  close(): Promise<void>;
}

interface Client {
  ws: WebSocket;
  protocol: Subprotocol;
  streams: Set<StreamName>;
}

/** Frames a slow client has not taken yet beyond this are dropped for it (frames, plans), never queued without bound. */
const MAX_BUFFERED = 8 * 1024 * 1024;

export function statusMessage(s: ServiceStatus): Record<string, unknown> {
  return {
    running: s.running,
    link: s.link,
    estop: s.safety.estop,
    blocked: s.safety.blocked ?? '',
    observations: s.observations,
    plans: s.plans,
    safePlans: s.safePlans,
    commands: s.commands,
    zeroedCommands: s.zeroedCommands,
    decodeErrors: s.decodeErrors,
    hasGoal: s.hasGoal,
    lastError: s.lastError ?? '',
    cameraAgeMs: s.safety.cameraAgeMs ?? -1,
    planAgeMs: s.safety.planAgeMs ?? -1,
    estopSources: s.safety.estopSources,
    headerAgeMs: s.safety.headerAgeMs ?? -1,
    planDeadlineMs: s.planDeadlineMs,
  };
}

function planMessage(p: Plan): Record<string, unknown> {
  const actions: number[] = [];
  for (const a of p.actions) actions.push(...flattenAction(a));
  return { cost: Number.isFinite(p.cost) ? p.cost : -1, latencyMs: p.latencyMs, safe: p.safe, reason: p.reason ?? '', observationStamp: p.observationStamp, iterations: p.iterations, candidatesEvaluated: p.candidatesEvaluated, actions };
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return expected.length > 0 && a.length === b.length && timingSafeEqual(a, b);
}

export async function startWsApi(service: RunningService, cfg: ServiceConfig['api'], opts: WsApiOptions = {}): Promise<WsApi> {
  const log = opts.log ?? (() => {});
  const clients = new Set<Client>();
  const wss = new WebSocketServer({
    host: cfg.host,
    port: cfg.port,
    path: '/v1',
    // Frames up to twice the limit are read and answered with an error; beyond that ws closes the connection (1009).
    maxPayload: cfg.maxMessageBytes * 2,
    handleProtocols: (offered) => SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', (e) => {
      wss.close();
      reject(new UserError(`WebSocket API: cannot listen on ${cfg.host}:${cfg.port} (api.host, api.port; --api-port, or --no-api): ${errorMessage(e)}`, { cause: e }));
    });
  });
  wss.on('error', (e) => log(`ws api: ${errorMessage(e)}`));

  const send = (c: Client, msg: ServerMessage, droppable = false) => {
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (droppable && c.ws.bufferedAmount > MAX_BUFFERED) return;
    try {
      c.ws.send(encodeServer(c.protocol, msg));
    } catch (e) {
      log(`ws api: cannot send to a client: ${errorMessage(e)}`);
    }
  };
  const broadcast = (stream: StreamName, make: () => ServerMessage[]) => {
    let msgs: ServerMessage[] | undefined;
    for (const c of clients) {
      if (!c.streams.has(stream)) continue;
      msgs ??= make();
      for (const m of msgs) send(c, m, stream !== 'status');
    }
  };

  const subs = [
    service.status$.subscribe((s) => broadcast('status', () => [{ status: statusMessage(s) }])),
    service.plans$.subscribe((p) => {
      broadcast('plans', () => [{ plan: planMessage(p) }]);
      const shape = opts.imaginedShape;
      if (p.imagined?.length && shape) {
        broadcast('frames', () =>
          p.imagined!.filter((f) => f.length === shape.height * shape.width * 3).map((f, index) => ({ frame: { observationStamp: p.observationStamp, index, width: shape.width, height: shape.height, jpeg: encodeJpeg(f, shape.width, shape.height, 80) } })),
        );
      }
    }),
    service.latency$.subscribe((l) => broadcast('latency', () => [{ latency: { totalMs: l.totalMs, planningMs: l.planningMs, serviceMs: l.serviceMs, waitMs: l.waitMs } }])),
    service.commands$.subscribe((c) => broadcast('commands', () => [{ command: { action: Array.from(flattenAction(c.action)), zeroed: c.zeroed ?? '', clamped: c.clamped } }])),
  ];

  const handle = (c: Client, req: ClientMessage): ServerMessage => {
    switch (req.op) {
      case 'setGoal': {
        const images = req.setGoal!.images.map((b, i) => {
          try {
            const img = decodeImage(b, `setGoal.images[${i}]`);
            return { image: img.data, height: img.height, width: img.width, stamp: Date.now() };
          } catch (e) {
            throw new ProtocolError(errorMessage(e));
          }
        });
        service.setGoal({ images, instruction: req.setGoal!.instruction });
        break;
      }
      case 'start': {
        const refused = service.start();
        if (refused) throw new ProtocolError(refused);
        break;
      }
      case 'stop':
        service.stop();
        break;
      case 'estop':
        service.estop('api');
        break;
      case 'clearEstop':
        service.clearEstop('api');
        break;
      case 'subscribe':
        c.streams = new Set(req.subscribe!.streams);
        break;
      case 'getStatus':
        return { id: req.id, status: statusMessage(service.status()) };
    }
    return { id: req.id, ack: {} };
  };

  const onMessage = (c: Client, data: RawData, isBinary: boolean) => {
    let id: number | undefined;
    try {
      if (!isBinary) throw new ProtocolError(`text frames are not accepted; send binary ${c.protocol} frames`);
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (bytes.length > cfg.maxMessageBytes) throw new ProtocolError(`frame of ${bytes.length} bytes exceeds the limit of ${cfg.maxMessageBytes} bytes`);
      const req = decodeClient(c.protocol, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      id = req.id;
      if (!tokenMatches(req.token, cfg.token)) throw new ProtocolError(cfg.token ? 'unauthorized: wrong or missing token' : 'unauthorized: the service has no API token configured');
      send(c, handle(c, req));
    } catch (e) {
      if (e instanceof ProtocolError && e.id !== undefined) id = e.id;
      // Any failure is this client's problem: reply and carry on.
      send(c, { ...(id !== undefined ? { id } : {}), error: { message: e instanceof ProtocolError ? e.message : `internal error: ${errorMessage(e)}` } });
    }
  };

  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    const protocol = ws.protocol as Subprotocol;
    if (!(SUBPROTOCOLS as readonly string[]).includes(protocol)) {
      ws.close(1002, `subprotocol required: ${SUBPROTOCOLS.join(' or ')}`);
      return;
    }
    const c: Client = { ws, protocol, streams: new Set() };
    clients.add(c);
    ws.on('message', (data, isBinary) => onMessage(c, data, isBinary));
    ws.on('close', () => clients.delete(c));
    ws.on('error', (e) => log(`ws api client: ${errorMessage(e)}`));
    send(c, { hello: { service: 'selfflow-wm', version: opts.version ?? packageVersion(), streams: [...STREAMS], maxMessageBytes: cfg.maxMessageBytes } });
  });

  const port = (wss.address() as { port: number }).port;
  return {
    port,
    url: `ws://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}/v1`,
    clientCount: () => clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of subs) s.unsubscribe();
        for (const c of clients) c.ws.terminate();
        wss.close(() => resolve());
      }),
  };
}
