/**
 * Abuse benchmark (`bench --only abuse`): the targets of a hostile but fair user.
 *
 * 1. E-stop under a flood. `serve --robot sim --policy expert` runs as a child process with a
 *    token and the API on a free loopback port. A flooder sends one-byte invalid binary frames as
 *    fast as it can without reading its replies (reconnecting whenever it is closed) until it has
 *    sent SELFFLOW_ABUSE_FRAMES frames (default 1,000,000; --quick 20,000) or 60 s have passed;
 *    another client sends one setGoal with a PNG that declares 16000x16000 pixels. Meanwhile an
 *    operator client sends `estop` 20 times (clearEstop + start in between) and measures the ack
 *    and the zero command it sees on the `commands` stream (published to the robot just before).
 *    The same 20 e-stops without the flood are the baseline. The service's peak RSS is its VmHWM.
 * 2. Camera freeze and resume, in process: a rate-mode service, a 30 Hz camera, a planner that
 *    takes 50-860 ms per plan (so some plans from pre-freeze frames arrive during the freeze and
 *    some after it); the camera stops for 700 ms (over the 500 ms stale limit) and
 *    resumes. Counted: commands computed from frames taken before the freeze that reach the robot
 *    after it (target 0).
 *
 * Traffic goes to 127.0.0.1 only; counts and times are bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, createDeflate } from 'node:zlib';
import { exhaustMap, map, timer } from 'rxjs';
import WebSocket from 'ws';
import type { Plan, Planner } from '../core/types.js';
import type { Rt1Action } from '../core/action.js';
import { LinkBase } from '../robot/link.js';
import { observationToImage } from '../robot/messages.js';
import { rosCodec, type RosType } from '../robot/msgs.js';
import { decodeServer, encodeClient, type ServerMessage } from '../server/protocol.js';
import { defaultConfig, type ServiceConfig } from '../service/config.js';
import { startService, type Command } from '../service/service.js';
import { packageRoot } from '../util/package-root.js';
import type { BenchOptions } from './options.js';
import { type BenchTable } from './table.js';
import { percentile } from '../util/stats.js';

const P = 'selfflow.v1.msgpack';
const TOKEN = 'abuse-bench-token';
const FLOOD_SECONDS = 60;
const ESTOPS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A PNG that declares w x h RGB pixels of zeros, deflated row by row (never held whole). */
async function pngDeclaring(w: number, h: number): Promise<Uint8Array> {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    td.copy(out, 4);
    out.writeUInt32BE(crc(td), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const deflate = createDeflate({ level: constants.Z_BEST_COMPRESSION });
  const parts: Buffer[] = [];
  deflate.on('data', (d: Buffer) => parts.push(d));
  const done = new Promise((r) => deflate.on('end', r));
  const row = Buffer.alloc(w * 3 + 1);
  for (let y = 0; y < h; y++) if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  deflate.end();
  await done;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.concat(parts)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `serve --robot sim` as a child; resolves with its API URL. */
async function startServe(): Promise<{ child: ChildProcess; url: string }> {
  const bin = join(packageRoot(), 'bin', 'selfflow-wm.js');
  const child = spawn(
    process.execPath,
    [bin, 'serve', '--robot', 'sim', '--policy', 'expert', '--image-size', '64x80', '--api-port', '0', '--api-token', TOKEN],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`serve did not start its API within 60 s: ${err.slice(-500)}`)), 60_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /WebSocket API on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => (clearTimeout(t), reject(new Error(`serve exited (${code}): ${err.slice(-500)}`))));
  });
  child.stderr.resume();
  return { child, url };
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Client {
  ws: WebSocket;
  replies: (ServerMessage & { at: number })[];
  closed: Promise<{ code: number; reason: string }>;
}

async function connect(url: string, read = true): Promise<Client> {
  const ws = new WebSocket(url, [P]);
  const replies: Client['replies'] = [];
  ws.on('message', (d: Buffer) => replies.push({ ...decodeServer(P, new Uint8Array(d)), at: performance.now() }));
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  if (!read) ws.pause();
  return { ws, replies, closed };
}

/** Floods until `total` frames are sent, `stop()` is called or the time is up; reconnects when closed. */
function flooder(url: string, total: number) {
  const stats = { sent: 0, connections: 0, closes: new Map<string, number>(), ms: 0 };
  let stopped = false;
  const junk = Uint8Array.from([0xc1]);
  const run = (async () => {
    const start = performance.now();
    const until = start + FLOOD_SECONDS * 1000;
    while (!stopped && stats.sent < total && performance.now() < until) {
      let c: Client;
      try {
        c = await connect(url, false);
      } catch {
        await sleep(10);
        continue;
      }
      stats.connections++;
      void c.closed.then(({ code, reason }) => {
        const k = `${code} ${reason}`;
        stats.closes.set(k, (stats.closes.get(k) ?? 0) + 1);
      });
      while (!stopped && c.ws.readyState === c.ws.OPEN && stats.sent < total && performance.now() < until) {
        for (let i = 0; i < 1000; i++) c.ws.send(junk);
        stats.sent += 1000;
        await new Promise((r) => setImmediate(r));
      }
      c.ws.terminate();
    }
    stats.ms = performance.now() - start;
  })();
  return { stats, stop: () => ((stopped = true), run), done: run };
}

/** `n` e-stops: ack and zero-command times (ms from sending), clearEstop + start between them. */
async function estops(op: Client, n: number, idBase: number): Promise<{ ack: number[]; zero: number[] }> {
  const ack: number[] = [];
  const zero: number[] = [];
  const waitFor = async (pred: (m: ServerMessage) => boolean, from: number) => {
    const t0 = performance.now();
    for (;;) {
      const m = op.replies.slice(from).find(pred);
      if (m) return m;
      if (performance.now() - t0 > 30_000) throw new Error('abuse bench: no reply within 30 s');
      await sleep(1);
    }
  };
  for (let i = 0; i < n; i++) {
    const id = idBase + i * 3;
    const from = op.replies.length;
    const t0 = performance.now();
    op.ws.send(encodeClient(P, { id, token: TOKEN, estop: {} }));
    const a = await waitFor((m) => m.id === id, from);
    const z = await waitFor((m) => /^e-stop/.test(m.command?.zeroed ?? ''), from);
    ack.push(a.at - t0);
    zero.push(z.at - t0);
    op.ws.send(encodeClient(P, { id: id + 1, token: TOKEN, clearEstop: {} }));
    op.ws.send(encodeClient(P, { id: id + 2, token: TOKEN, start: {} }));
    await waitFor((m) => m.id === id + 2, from);
    await sleep(200);
  }
  return { ack: ack.sort((a, b) => a - b), zero: zero.sort((a, b) => a - b) };
}

async function estopUnderFlood(frames: number): Promise<BenchTable> {
  const { child, url } = await startServe();
  try {
    const op = await connect(url);
    op.ws.send(encodeClient(P, { id: 1, token: TOKEN, subscribe: { streams: ['commands'] } }));
    await sleep(1000);
    const baseline = await estops(op, ESTOPS, 1000);
    const flood = flooder(url, frames);
    const goalClient = await connect(url);
    const png = await pngDeclaring(16000, 16000);
    const t0 = performance.now();
    goalClient.ws.send(encodeClient(P, { id: 5, token: TOKEN, setGoal: { images: [png] } }));
    await sleep(500);
    const underFlood = await estops(op, ESTOPS, 2000);
    const estopsEndMs = performance.now() - t0;
    const goalReply = goalClient.replies.find((m) => m.id === 5);
    await flood.done;
    const rss = peakRssMb(child.pid!);
    const row = (label: string, r: { ack: number[]; zero: number[] }) => [
      label,
      String(r.ack.length),
      percentile(r.ack, 50),
      percentile(r.ack, 99),
      percentile(r.zero, 50),
      percentile(r.zero, 99),
    ];
    const closes = [...flood.stats.closes].map(([k, v]) => `${v} x ${k}`).join('; ');
    return {
      title: 'Abuse: API e-stop while another client floods invalid frames (serve --robot sim --policy expert, child process)',
      columns: ['condition', 'e-stops', 'ack p50 ms', 'ack p99 ms', 'zero command p50 ms', 'zero command p99 ms'],
      rows: [
        row('no flood (baseline)', baseline),
        row(
          `flood: ${flood.stats.sent.toLocaleString('en-US')} one-byte invalid frames, unread replies, + a 16000x16000 PNG setGoal`,
          underFlood,
        ),
      ],
      notes: [
        `Service peak RSS (VmHWM): ${rss.toFixed(0)} MB. Flooder: ${flood.stats.connections} connections over ${(flood.stats.ms / 1000).toFixed(1)} s (the e-stops ran from 0.5 s to ${(estopsEndMs / 1000).toFixed(1)} s after it began); closes seen: ${closes || 'none'}.`,
        `The 16000x16000 setGoal got ${goalReply ? (goalReply.error ? `an error reply after ${(goalReply.at - t0).toFixed(0)} ms: ${goalReply.error.message}` : 'an ack') : 'no reply before the e-stops ended'}.`,
        "Zero command: the `command` stream message of the e-stop's zero command, which the service publishes to the robot just before. With --robot sim the physics of each lockstep action runs on the service thread too.",
      ],
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

class BenchLink extends LinkBase {
  constructor() {
    super('bench');
    this.setState('up');
  }
  inject(topic: string, type: RosType, data: Uint8Array) {
    this.deliver(topic, type, data);
  }
  publish(): boolean {
    return true;
  }
}

/** One freeze-and-resume trial; counts commands from pre-freeze frames sent after the resume. */
async function freezeTrial(planMs: number): Promise<{ stale: number; moved: number; latePlans: number }> {
  const codec = rosCodec();
  const link = new BenchLink();
  const source = new WeakMap<Rt1Action, number>();
  const planner: Planner = (obs$) =>
    obs$.pipe(
      exhaustMap((o) =>
        timer(planMs).pipe(
          map((): Plan => {
            const actions = Array.from({ length: 30 }, (): Rt1Action => ({
              worldVector: [0.005, 0, 0],
              rotationDelta: [0, 0, 0],
              gripperClosedness: 0,
              terminateEpisode: [0, 1, 0],
            }));
            for (const a of actions) source.set(a, o.stamp);
            return { actions, cost: 0, iterations: 1, candidatesEvaluated: 1, latencyMs: planMs, observationStamp: o.stamp, safe: false };
          }),
        ),
      ),
    );
  const cfg: ServiceConfig = {
    ...defaultConfig(),
    controlMode: 'rate',
    actionHz: 10,
    twistHz: 0,
    statusHz: 0,
    safety: { ...defaultConfig().safety, planDeadlineMs: 5000 },
  };
  const svc = startService(cfg, planner, link);
  let lastPreFreeze = -Infinity;
  let frozen = false;
  let resumed = false;
  let latePlans = 0;
  const sent: Command[] = [];
  svc.plans$.subscribe((p) => {
    if (frozen && p.observationStamp <= lastPreFreeze) latePlans++;
  });
  svc.commands$.subscribe((c) => resumed && sent.push(c));
  const image = new Uint8Array(32 * 40 * 3).fill(90);
  let stamp = 0;
  let camera: NodeJS.Timeout | undefined;
  const stream = () =>
    (camera = setInterval(
      () =>
        link.inject(
          '/image_raw',
          'sensor_msgs/msg/Image',
          codec.encode('sensor_msgs/msg/Image', observationToImage({ image, height: 32, width: 40, stamp: ++stamp }, 'cam')),
        ),
      1000 / 30,
    ));
  svc.observations$.subscribe((o) => {
    if (!frozen) lastPreFreeze = o.stamp;
  });
  stream();
  await sleep(900);
  clearInterval(camera);
  frozen = true;
  await sleep(700);
  resumed = true;
  stream();
  await sleep(1000);
  clearInterval(camera);
  await svc.shutdown();
  const moving = sent.filter((c) => c.zeroed === undefined && c.action.worldVector[0] !== 0);
  return { stale: moving.filter((c) => (source.get(c.requested) ?? Infinity) <= lastPreFreeze).length, moved: moving.length, latePlans };
}

async function freezeAndResume(trials: number): Promise<BenchTable> {
  let stale = 0;
  let moved = 0;
  let latePlans = 0;
  for (let i = 0; i < trials; i++) {
    const r = await freezeTrial(50 + (i % 10) * 90);
    stale += r.stale;
    moved += r.moved;
    latePlans += r.latePlans;
  }
  return {
    title: 'Abuse: camera freeze (700 ms, stale limit 500 ms) and resume, rate mode, in process',
    columns: [
      'trials',
      'plans from pre-freeze frames arriving during the freeze or after it',
      'moving commands after the resume',
      'of them computed from pre-freeze frames',
    ],
    rows: [[String(trials), String(latePlans), String(moved), String(stale)]],
    notes: ['30 Hz camera, 10 Hz actions, a planner taking 50-860 ms per plan (latest-only); target: 0 commands from pre-freeze frames.'],
  };
}

export async function benchAbuse(opts: BenchOptions): Promise<BenchTable[]> {
  const frames = Number(process.env.SELFFLOW_ABUSE_FRAMES ?? (opts.quick ? 20_000 : 1_000_000));
  if (!(Number.isInteger(frames) && frames > 0))
    throw new Error(`SELFFLOW_ABUSE_FRAMES must be a positive integer, got ${process.env.SELFFLOW_ABUSE_FRAMES}`);
  return [await estopUnderFlood(frames), await freezeAndResume(opts.quick ? 5 : 20)];
}
