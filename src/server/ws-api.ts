/**
 * The WebSocket API for clients and dashboards: ws://HOST:PORT/v1 with subprotocol
 * `selfflow.v1.protobuf` or `selfflow.v1.msgpack`. Bound to loopback unless configured; every
 * client message must carry the token; frames over the size limit, malformed or unauthenticated
 * ones get an error reply on that connection only, never touching the service or other clients.
 *
 * Every per-client queue is bounded, so no client can make the service's thread (which also runs
 * the safety gate and e-stop) fall behind: a client that sends more than api.max_messages_per_second
 * frames, or whose unsent data exceeds api.max_pending_bytes, is closed (1008, the reason says
 * which); past that frame nothing it sends is read. Stream messages are skipped for a client over
 * the bound rather than queued. Connections beyond api.max_clients are refused (1013). Goal images
 * are decoded in a worker thread (RunningService.decodeGoal), newest goal wins.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Plan } from '../core/types.js';
import { flattenAction } from '../core/action.js';
import { encodeJpeg } from '../image/jpeg.js';
import type { ServiceConfig } from '../service/config.js';
import type { RunningService, ServiceStatus } from '../service/service.js';
import { errorMessage, UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';
import {
  decodeClient,
  encodeServer,
  ProtocolError,
  STREAMS,
  SUBPROTOCOLS,
  type ClientMessage,
  type ServerMessage,
  type StreamName,
  type Subprotocol,
} from './protocol.js';

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
  /** Rate limit: frames this client may still send now (token bucket of one second's worth). */
  allowance: number;
  refilledMs: number;
  /** Being closed for breaking a limit: nothing more is read from it or sent to it. */
  dropped: boolean;
}

/** A dropped client gets this long for the close frame to leave before its socket is destroyed. */
const DROP_GRACE_MS = 500;

/** Close code for a client that broke the rate or backlog limit (policy violation). */
export const CLOSE_POLICY = 1008;
/** Close code for a connection over api.max_clients (try again later). */
export const CLOSE_TRY_LATER = 1013;

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
    waiting: s.waiting ?? '',
  };
}

function planMessage(p: Plan): Record<string, unknown> {
  const actions: number[] = [];
  for (const a of p.actions) actions.push(...flattenAction(a));
  return {
    cost: Number.isFinite(p.cost) ? p.cost : -1,
    latencyMs: p.latencyMs,
    safe: p.safe,
    reason: p.reason ?? '',
    observationStamp: p.observationStamp,
    iterations: p.iterations,
    candidatesEvaluated: p.candidatesEvaluated,
    actions,
  };
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
      reject(
        new UserError(
          `WebSocket API: cannot listen on ${cfg.host}:${cfg.port} (api.host, api.port; --api-port, or --no-api): ${errorMessage(e)}`,
          { cause: e },
        ),
      );
    });
  });
  wss.on('error', (e) => log(`ws api: ${errorMessage(e)}`));

  /** Closes a client that broke a limit: close frame with the reason, reading stops, the socket goes after a grace period. */
  const drop = (c: Client, reason: string) => {
    if (c.dropped) return;
    c.dropped = true;
    clients.delete(c);
    log(`ws api: closing a client: ${reason}`);
    try {
      c.ws.close(CLOSE_POLICY, reason);
    } catch {
      // a socket already failing is terminated below
    }
    c.ws.pause();
    setTimeout(() => c.ws.terminate(), DROP_GRACE_MS).unref();
  };
  const backlogReason = () => `unsent replies over api.max_pending_bytes (${cfg.maxPendingBytes} bytes)`;

  const send = (c: Client, msg: ServerMessage, droppable = false) => {
    if (c.dropped || c.ws.readyState !== c.ws.OPEN) return;
    if (c.ws.bufferedAmount > cfg.maxPendingBytes) {
      // Streams wait for the client to catch up; a reply it has not read room for means it does not read.
      if (!droppable) drop(c, backlogReason());
      return;
    }
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
          p
            .imagined!.filter((f) => f.length === shape.height * shape.width * 3)
            .map((f, index) => ({
              frame: {
                observationStamp: p.observationStamp,
                index,
                width: shape.width,
                height: shape.height,
                jpeg: encodeJpeg(f, shape.width, shape.height, 80),
              },
            })),
        );
      }
    }),
    service.latency$.subscribe((l) =>
      broadcast('latency', () => [{ latency: { totalMs: l.totalMs, planningMs: l.planningMs, serviceMs: l.serviceMs, waitMs: l.waitMs } }]),
    ),
    service.commands$.subscribe((c) =>
      broadcast('commands', () => [
        { command: { action: Array.from(flattenAction(c.action)), zeroed: c.zeroed ?? '', clamped: c.clamped } },
      ]),
    ),
  ];

  /** The reply to a request; setGoal's comes once its images are decoded (in a worker thread). */
  const handle = (c: Client, req: ClientMessage): ServerMessage | Promise<ServerMessage> => {
    switch (req.op) {
      case 'setGoal':
        return service
          .decodeGoal({
            images: req.setGoal!.images.map((bytes, i) => ({ bytes, where: `setGoal.images[${i}]` })),
            instruction: req.setGoal!.instruction,
          })
          .then(
            (): ServerMessage => ({ id: req.id, ack: {} }),
            (e: unknown) => {
              throw new ProtocolError(errorMessage(e));
            },
          );
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

  const errorReply = (id: number | undefined, e: unknown): ServerMessage => ({
    ...(id !== undefined ? { id } : {}),
    error: { message: e instanceof ProtocolError ? e.message : `internal error: ${errorMessage(e)}` },
  });

  /** Token bucket: true when the client may send this frame; it holds one second's worth of frames. */
  const withinRate = (c: Client): boolean => {
    const now = performance.now();
    const rate = cfg.maxMessagesPerSecond;
    c.allowance = Math.min(rate, c.allowance + ((now - c.refilledMs) * rate) / 1000);
    c.refilledMs = now;
    if (c.allowance < 1) return false;
    c.allowance -= 1;
    return true;
  };

  /** An authenticated e-stop is acted on even in the frame that gets its sender closed. */
  const estopInFrame = (c: Client, data: RawData, isBinary: boolean) => {
    if (!isBinary || !Buffer.isBuffer(data) || data.length > cfg.maxMessageBytes) return;
    try {
      const req = decodeClient(c.protocol, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (req.op === 'estop' && tokenMatches(req.token, cfg.token)) service.estop('api');
    } catch {
      // not an e-stop
    }
  };

  const onMessage = (c: Client, data: RawData, isBinary: boolean) => {
    // A dropped client's frames still in the socket's last read are ignored unread.
    if (c.dropped) return;
    if (!withinRate(c)) {
      estopInFrame(c, data, isBinary);
      drop(c, `over api.max_messages_per_second (${cfg.maxMessagesPerSecond} frames/s)`);
      return;
    }
    if (c.ws.bufferedAmount > cfg.maxPendingBytes) {
      estopInFrame(c, data, isBinary);
      drop(c, backlogReason());
      return;
    }
    let id: number | undefined;
    try {
      if (!isBinary) throw new ProtocolError(`text frames are not accepted; send binary ${c.protocol} frames`);
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (bytes.length > cfg.maxMessageBytes)
        throw new ProtocolError(`frame of ${bytes.length} bytes exceeds the limit of ${cfg.maxMessageBytes} bytes`);
      const req = decodeClient(c.protocol, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      id = req.id;
      if (!tokenMatches(req.token, cfg.token))
        throw new ProtocolError(
          cfg.token ? 'unauthorized: wrong or missing token' : 'unauthorized: the service has no API token configured',
        );
      const reply = handle(c, req);
      if (reply instanceof Promise) {
        const replyId = id;
        reply.then(
          (m) => send(c, m),
          (e: unknown) => send(c, errorReply(replyId, e)),
        );
      } else send(c, reply);
    } catch (e) {
      if (e instanceof ProtocolError && e.id !== undefined) id = e.id;
      // Any failure is this client's problem: reply and carry on.
      send(c, errorReply(id, e));
    }
  };

  wss.on('connection', (ws: WebSocket, _req: IncomingMessage) => {
    const protocol = ws.protocol as Subprotocol;
    if (!(SUBPROTOCOLS as readonly string[]).includes(protocol)) {
      ws.close(1002, `subprotocol required: ${SUBPROTOCOLS.join(' or ')}`);
      return;
    }
    if (clients.size >= cfg.maxClients) {
      ws.close(CLOSE_TRY_LATER, `too many clients (api.max_clients ${cfg.maxClients})`);
      return;
    }
    const c: Client = {
      ws,
      protocol,
      streams: new Set(),
      allowance: cfg.maxMessagesPerSecond,
      refilledMs: performance.now(),
      dropped: false,
    };
    clients.add(c);
    ws.on('message', (data, isBinary) => onMessage(c, data, isBinary));
    ws.on('close', () => clients.delete(c));
    ws.on('error', (e) => log(`ws api client: ${errorMessage(e)}`));
    send(c, {
      hello: {
        service: 'selfflow-wm',
        version: opts.version ?? packageVersion(),
        streams: [...STREAMS],
        maxMessageBytes: cfg.maxMessageBytes,
      },
    });
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
