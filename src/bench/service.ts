/**
 * Service benchmark: observation-to-command latency the service adds (a zero-cost planner, so
 * planning time is excluded), in process and over a loopback Foxglove WebSocket, in lockstep and
 * in rate mode (3 Hz actions, 20 Hz twist republish, a 30 Hz camera), and 640x480 image
 * throughput through the codec (raw and JPEG) and the Foxglove transport.
 */
import { FoxgloveServer } from '../robot/foxglove-protocol.js';
import { map } from 'rxjs';
import { WebSocketServer, type WebSocket } from 'ws';
import { type BenchTable } from './table.js';
import { percentile } from '../util/stats.js';
import type { BenchOptions } from './options.js';
import type { Plan, Planner } from '../core/types.js';
import { FoxgloveLink, FOXGLOVE_SUBPROTOCOLS } from '../robot/foxglove-link.js';
import { LinkBase } from '../robot/link.js';
import {
  compressedToObservation,
  imageToObservation,
  observationToCompressed,
  observationToImage,
  type CompressedImageMsg,
  type ImageMsg,
} from '../robot/messages.js';
import { rosCodec, type RosType } from '../robot/msgs.js';
import { defaultConfig, type ServiceConfig } from '../service/config.js';
import { startService, type LatencySample } from '../service/service.js';

const zeroCostPlanner: Planner = (obs$) =>
  obs$.pipe(
    map((o): Plan => ({
      actions: [{ worldVector: [0.01, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] }],
      cost: 0,
      iterations: 0,
      candidatesEvaluated: 0,
      latencyMs: 0,
      observationStamp: o.stamp,
      safe: false,
    })),
  );

const frames = new Map<string, Uint8Array>();

/** A rendered simulator frame (JPEG sizes and timings depend on content; synthetic patterns mislead). */
async function simFrame(h: number, w: number) {
  const key = `${h}x${w}`;
  let image = frames.get(key);
  if (!image) {
    const { SimEnv } = await import('../sim/env.js');
    const env = await SimEnv.create({ task: 'drawer-place', seed: 0, imageHeight: h, imageWidth: w });
    image = env.render();
    env.close();
    frames.set(key, image);
  }
  return { image, height: h, width: w, stamp: 0 };
}

class BenchLink extends LinkBase {
  onPublish?: (topic: string) => void;
  constructor() {
    super('bench');
    this.setState('up');
  }
  inject(topic: string, type: RosType, data: Uint8Array) {
    this.deliver(topic, type, data);
  }
  publish(topic: string): boolean {
    this.onPublish?.(topic);
    return true;
  }
}

const benchConfig = (): ServiceConfig => ({ ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0 });

async function inProcessLatency(h: number, w: number, n: number, compressed: boolean): Promise<number[]> {
  const link = new BenchLink();
  const cfg = benchConfig();
  cfg.topics.useCompressed = compressed;
  const svc = startService(cfg, zeroCostPlanner, link);
  const codec = rosCodec();
  const img = await simFrame(h, w);
  const topic = compressed ? '/image_raw/compressed' : '/image_raw';
  const type: RosType = compressed ? 'sensor_msgs/msg/CompressedImage' : 'sensor_msgs/msg/Image';
  const out: number[] = [];
  let t0 = 0;
  link.onPublish = (t) => {
    if (t === '/selfflow/action') out.push(performance.now() - t0);
  };
  for (let i = 0; i < n + 5; i++) {
    const obs = { ...img, stamp: i + 1 };
    const bytes = compressed ? codec.encode(type, observationToCompressed(obs, 'cam')) : codec.encode(type, observationToImage(obs, 'cam'));
    t0 = performance.now();
    link.inject(topic, type, bytes);
  }
  await svc.shutdown();
  return out.slice(5, n + 5);
}

/** A Foxglove server that sends camera frames; `onMessage` sees every topic the service publishes. */
async function foxgloveRig(onMessage?: (topic: string) => void) {
  const codec = rosCodec();
  const server = new FoxgloveServer({ name: 'bench robot', capabilities: ['clientPublish'], supportedEncodings: ['cdr'] });
  const ch = server.addChannel({
    topic: '/image_raw',
    encoding: 'cdr',
    schemaName: 'sensor_msgs/msg/Image',
    schema: codec.schema('sensor_msgs/msg/Image').text,
    schemaEncoding: 'ros2msg',
  });
  let subscribed!: () => void;
  const ready = new Promise<void>((r) => (subscribed = r));
  server.on('subscribe', (id) => id === ch && subscribed());
  let onAction: (() => void) | undefined;
  server.on('message', (e) => {
    onMessage?.(e.channel.topic);
    if (e.channel.topic === '/selfflow/action') onAction?.();
  });
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: 64 << 20,
    handleProtocols: (p) => FOXGLOVE_SUBPROTOCOLS.find((x) => p.has(x)) ?? false,
  });
  wss.on('connection', (ws: WebSocket) => server.handleConnection(ws, 'service'));
  await new Promise<void>((r) => wss.once('listening', r));
  const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}`;
  return {
    url,
    ready,
    send: (bytes: Uint8Array) => server.sendMessage(ch, BigInt(Date.now()) * 1_000_000n, bytes as Uint8Array<ArrayBuffer>),
    waitAction: () => new Promise<void>((r) => (onAction = r)),
    close: () => new Promise<void>((r) => (wss.clients.forEach((c) => c.terminate()), wss.close(() => r()))),
  };
}

async function foxgloveLatency(h: number, w: number, n: number): Promise<number[]> {
  const rig = await foxgloveRig();
  const link = new FoxgloveLink(rig.url, { reconnectMs: 0 });
  const svc = startService(benchConfig(), zeroCostPlanner, link);
  await rig.ready;
  const codec = rosCodec();
  const img = await simFrame(h, w);
  const out: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const bytes = codec.encode('sensor_msgs/msg/Image', observationToImage({ ...img, stamp: i + 1 }, 'cam'));
    const done = rig.waitAction();
    const t0 = performance.now();
    rig.send(bytes);
    await done;
    if (i >= 5) out.push(performance.now() - t0);
  }
  await svc.shutdown();
  await rig.close();
  return out;
}

/**
 * Rate mode as on a robot: a 30 Hz 640x480 camera over loopback Foxglove, 3 Hz actions, the twist
 * republished at 20 Hz. Intervals are measured where the robot receives the messages.
 */
async function rateModeOverFoxglove(seconds: number) {
  const codec = rosCodec();
  const arrivals = { twist: [] as number[], action: [] as number[] };
  const rig = await foxgloveRig((topic) => {
    if (topic === '/servo/delta_twist_cmds') arrivals.twist.push(performance.now());
    else if (topic === '/selfflow/action') arrivals.action.push(performance.now());
  });
  const link = new FoxgloveLink(rig.url, { reconnectMs: 0 });
  const cfg: ServiceConfig = { ...defaultConfig(), controlMode: 'rate', actionHz: 3, twistHz: 20, statusHz: 0 };
  const svc = startService(cfg, zeroCostPlanner, link);
  const samples: LatencySample[] = [];
  svc.latency$.subscribe((l) => samples.push(l));
  await rig.ready;
  const img = await simFrame(480, 640);
  let stamp = 0;
  const camera = setInterval(
    () => rig.send(codec.encode('sensor_msgs/msg/Image', observationToImage({ ...img, stamp: ++stamp }, 'cam'))),
    1000 / 30,
  );
  // The first second settles (connection, first plan); measure after it.
  await new Promise((r) => setTimeout(r, 1000));
  const from = performance.now();
  const fromSample = samples.length;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(camera);
  await svc.shutdown();
  await rig.close();
  const gaps = (ts: number[]) => {
    const t = ts.filter((x) => x >= from);
    return t
      .slice(1)
      .map((x, i) => x - t[i]!)
      .sort((a, b) => a - b);
  };
  const measured = samples.slice(fromSample);
  const sorted = (f: (l: LatencySample) => number) => measured.map(f).sort((a, b) => a - b);
  return {
    twist: gaps(arrivals.twist),
    action: gaps(arrivals.action),
    service: sorted((l) => l.serviceMs),
    waits: sorted((l) => l.waitMs),
    total: sorted((l) => l.totalMs),
  };
}

async function foxgloveThroughput(h: number, w: number, n: number): Promise<number> {
  const rig = await foxgloveRig();
  const link = new FoxgloveLink(rig.url, { reconnectMs: 0 });
  link.subscribe('/image_raw', 'sensor_msgs/msg/Image');
  await rig.ready;
  const codec = rosCodec();
  let got = 0;
  let all!: () => void;
  const done = new Promise<void>((r) => (all = r));
  link.messages$.subscribe((m) => {
    imageToObservation(codec.decode<ImageMsg>('sensor_msgs/msg/Image', m.data));
    if (++got === n) all();
  });
  const bytes = codec.encode('sensor_msgs/msg/Image', observationToImage(await simFrame(h, w), 'cam'));
  const t0 = performance.now();
  for (let i = 0; i < n; i++) rig.send(bytes);
  await done;
  const s = (performance.now() - t0) / 1000;
  await link.close();
  await rig.close();
  return n / s;
}

function rate(fn: () => void, n: number): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return n / ((performance.now() - t0) / 1000);
}

export async function benchService(opts: BenchOptions): Promise<BenchTable[]> {
  const n = opts.quick ? 40 : 300;
  const latRows: (string | number)[][] = [];
  for (const [label, fn] of [
    ['in-process link, rgb8 640x480', () => inProcessLatency(480, 640, n, false)],
    ['in-process link, JPEG 640x480', () => inProcessLatency(480, 640, Math.max(20, n / 5), true)],
    ['Foxglove WebSocket (loopback), rgb8 640x480', () => foxgloveLatency(480, 640, Math.max(20, n / 3))],
  ] as const) {
    const xs = (await fn()).sort((a, b) => a - b);
    latRows.push([label, String(xs.length), percentile(xs, 50), percentile(xs, 99)]);
  }
  const rm = await rateModeOverFoxglove(opts.quick ? 3 : 15);
  const row = (label: string, xs: number[]) => [label, String(xs.length), percentile(xs, 50), percentile(xs, 99), xs.at(-1) ?? NaN];
  const rateRows = [
    row('twist interval at the robot (20 Hz: 50 ms)', rm.twist),
    row('action interval at the robot (3 Hz: 333 ms)', rm.action),
    row('latency added by the service (decode, hand-off, gate, encode)', rm.service),
    row('deliberate waits (action-rate throttle, control tick)', rm.waits),
    row('camera arrival to action sent, total', rm.total),
  ];
  const codec = rosCodec();
  const img = await simFrame(480, 640);
  const raw = codec.encode('sensor_msgs/msg/Image', observationToImage(img, 'cam'));
  const jpg = codec.encode('sensor_msgs/msg/CompressedImage', observationToCompressed(img, 'cam'));
  const m = opts.quick ? 10 : 60;
  const thrRows: (string | number)[][] = [
    [
      'rgb8 Image: encode to CDR',
      rate(() => codec.encode('sensor_msgs/msg/Image', observationToImage(img, 'cam')), m * 4),
      String(raw.length),
    ],
    [
      'rgb8 Image: decode CDR to RGB',
      rate(() => imageToObservation(codec.decode<ImageMsg>('sensor_msgs/msg/Image', raw)), m * 4),
      String(raw.length),
    ],
    [
      'CompressedImage: JPEG encode + CDR',
      rate(() => codec.encode('sensor_msgs/msg/CompressedImage', observationToCompressed(img, 'cam')), Math.max(5, m / 4)),
      String(jpg.length),
    ],
    [
      'CompressedImage: CDR + JPEG decode',
      rate(() => compressedToObservation(codec.decode<CompressedImageMsg>('sensor_msgs/msg/CompressedImage', jpg)), Math.max(5, m / 4)),
      String(jpg.length),
    ],
    ['rgb8 Image over Foxglove WebSocket (loopback), received + decoded', await foxgloveThroughput(480, 640, m * 2), String(raw.length)],
  ];
  return [
    {
      title: 'Service: observation-to-command latency added by the service (zero-cost planner)',
      columns: ['path', 'frames', 'p50 ms', 'p99 ms'],
      rows: latRows,
      notes: [
        'Camera message arrival (or, over Foxglove, the robot sending it) to the selfflow/action message leaving: decode, safety gate, encode; planning excluded.',
      ],
    },
    {
      title: 'Service: rate mode over Foxglove WebSocket (loopback), 30 Hz 640x480 camera, 3 Hz actions, 20 Hz twist (zero-cost planner)',
      columns: ['measure', 'n', 'p50 ms', 'p99 ms', 'max ms'],
      rows: rateRows,
      notes: [
        'Intervals as the robot receives them (MoveIt Servo stops after 100 ms without a twist). The service latency excludes planning and the waits, which are the rate itself: a frame waits up to one action period for the throttle and its plan up to one for the next control tick.',
      ],
    },
    {
      title: 'Service: 640x480 image throughput',
      columns: ['stage', 'frames/s', 'bytes/frame'],
      rows: thrRows,
      notes: ['A rendered 640x480 simulator frame; JPEG at quality 85 with jpeg-js (pure JavaScript).'],
    },
  ];
}
