/**
 * The simulated robot behind a Foxglove WebSocket server (what foxglove_bridge offers on a real
 * robot): sensor topics as `cdr` channels with `ros2msg` schemas, client publishing enabled so
 * the service can send actions. Every action message steps the simulation and the new sensor
 * messages go to their subscribers.
 */
import { FoxgloveServer } from './foxglove-protocol.js';
import { WebSocketServer, type WebSocket } from 'ws';
import { errorMessage } from '../core/errors.js';
import { FOXGLOVE_SUBPROTOCOLS } from './foxglove-link.js';
import { resolveTopic } from './link.js';
import { rosCodec } from './msgs.js';
import type { OutMessage, SimRobot } from './sim-robot.js';

export interface FoxgloveSimServer {
  port: number;
  url: string;
  /** The robot's e-stop button: publishes std_msgs/Bool on `selfflow/estop` (true presses, false releases). */
  setEstop(pressed: boolean): void;
  close(): Promise<void>;
}

export interface FoxgloveSimServerOptions {
  host?: string;
  port?: number;
  namespace?: string;
  log?: (line: string) => void;
  /** Every message a client publishes (the twist and gripper too), as it arrives. */
  onClientMessage?: (topic: string, data: Uint8Array) => void;
}

export async function serveSimOverFoxglove(robot: SimRobot, opts: FoxgloveSimServerOptions = {}): Promise<FoxgloveSimServer> {
  const log = opts.log ?? (() => {});
  const host = opts.host ?? '127.0.0.1';
  const server = new FoxgloveServer({ name: 'selfflow-wm sim robot', capabilities: ['clientPublish'], supportedEncodings: ['cdr'] });
  const codec = rosCodec();
  const channelOf = new Map<string, number>();
  for (const { topic, type } of robot.offered()) {
    channelOf.set(
      topic,
      server.addChannel({ topic, encoding: 'cdr', schemaName: type, schema: codec.schema(type).text, schemaEncoding: 'ros2msg' }),
    );
  }
  const estopTopic = resolveTopic(opts.namespace ?? '', 'selfflow/estop');
  const estopChannel = server.addChannel({
    topic: estopTopic,
    encoding: 'cdr',
    schemaName: 'std_msgs/msg/Bool',
    schema: codec.schema('std_msgs/msg/Bool').text,
    schemaEncoding: 'ros2msg',
  });
  const subscribed = new Set<number>();
  const wanted = (topic: string) => subscribed.has(channelOf.get(topic) ?? -1);
  const send = (msgs: OutMessage[]) => {
    const ts = BigInt(Date.now()) * 1_000_000n;
    for (const m of msgs) {
      const id = channelOf.get(m.topic);
      if (id !== undefined && subscribed.has(id)) server.sendMessage(id, ts, m.data as Uint8Array<ArrayBuffer>);
    }
  };
  server.on('subscribe', (id) => {
    subscribed.add(id);
    const topic = [...channelOf].find(([, c]) => c === id)?.[0];
    // A new subscriber gets the current state at once, as a latched topic would.
    if (topic) send(robot.snapshot((t) => t === topic));
  });
  server.on('unsubscribe', (id) => subscribed.delete(id));
  server.on('message', (e) => {
    try {
      const d = e.data;
      const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
      opts.onClientMessage?.(e.channel.topic, bytes);
      send(robot.handle(e.channel.topic, bytes, wanted));
    } catch (err) {
      log(`sim robot: ${errorMessage(err)}`);
    }
  });
  server.on('error', (e) => log(`sim robot: ${errorMessage(e)}`));

  const wss = new WebSocketServer({
    host,
    port: opts.port ?? 0,
    // The library's server only names v1; accept both so clients offering either connect.
    handleProtocols: (protocols) => FOXGLOVE_SUBPROTOCOLS.find((p) => protocols.has(p)) ?? false,
  });
  let n = 0;
  wss.on('connection', (ws: WebSocket) => server.handleConnection(ws, `client ${++n}`));
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  const port = (wss.address() as { port: number }).port;
  return {
    port,
    url: `ws://${host}:${port}`,
    setEstop: (pressed) =>
      server.sendMessage(
        estopChannel,
        BigInt(Date.now()) * 1_000_000n,
        codec.encode('std_msgs/msg/Bool', { data: pressed }) as Uint8Array<ArrayBuffer>,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
