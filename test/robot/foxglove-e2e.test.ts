/**
 * End to end over the Foxglove WebSocket protocol, loopback only: the simulated robot behind
 * @foxglove/ws-protocol's own server, the service as a client. Actions come back and move the
 * simulated gripper; the session is recorded to MCAP and replaying it gives the same actions.
 */
import { mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist } from '../helpers/dist.js';
import { firstValueFrom, filter, take, toArray, timeout } from 'rxjs';
import { SimEnv } from '../../src/sim/env.js';
import { SimRobot } from '../../src/robot/sim-robot.js';
import { serveSimOverFoxglove } from '../../src/robot/foxglove-sim-server.js';
import { FoxgloveLink } from '../../src/robot/foxglove-link.js';
import { McapRecorder, McapReplayLink, RecordingLink, readMcap } from '../../src/robot/mcap.js';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { startService, type Command } from '../../src/service/service.js';
import { rosCodec } from '../../src/robot/msgs.js';
import type { Float32MultiArrayMsg, TwistStampedMsg } from '../../src/robot/messages.js';
import { imageDrivenPlanner } from '../service/fakes.js';

const dir = mkdtempSync(join(tmpdir(), 'selfflow-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cfg = (): ServiceConfig => ({ ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0 });
const N = 6;
const flat = (c: Command) => [...c.action.worldVector, ...c.action.rotationDelta, c.action.gripperClosedness].map((v) => Math.fround(v));

describe('service <-> simulated robot over foxglove ws-protocol', () => {
  it('drives the sim robot, records MCAP, and a replay gives the same action stream', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 3, imageHeight: 48, imageWidth: 60 });
    const robot = new SimRobot(env, 3);
    const server = await serveSimOverFoxglove(robot);
    const x0 = env.proprio()[0]!;
    const file = join(dir, 'session.mcap');
    const link = new FoxgloveLink(server.url, { reconnectMs: 0 });
    const svc = startService(cfg(), imageDrivenPlanner(), new RecordingLink(link, new McapRecorder(file)));
    const live = await firstValueFrom(svc.commands$.pipe(take(N), toArray(), timeout(60_000)));
    expect(live.every((c) => c.zeroed === undefined)).toBe(true);
    await svc.shutdown();
    await server.close();
    // Each action stepped the simulation; the planner pushes +x by 2 cm a step.
    expect(robot.steps).toBeGreaterThanOrEqual(N);
    expect(env.proprio()[0]! - x0).toBeGreaterThan(0.05);
    env.close();

    expect(existsSync(file)).toBe(true);
    const rec = readMcap(file);
    const topics = new Set(rec.map((m) => `${m.direction} ${m.topic}`));
    expect(topics).toContain('in /image_raw');
    expect(topics).toContain('out /selfflow/action');

    const replay = new McapReplayLink(file);
    const recordedActions = replay
      .outputs('/selfflow/action')
      .map((d) => Array.from(rosCodec().decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', d).data).slice(0, 7));
    const svc2 = startService(cfg(), imageDrivenPlanner(), replay);
    const replayed = await firstValueFrom(svc2.commands$.pipe(take(N), toArray(), timeout(30_000)));
    await svc2.shutdown();
    expect(replayed.map(flat)).toEqual(live.map(flat));
    expect(recordedActions.slice(0, N)).toEqual(live.map(flat));

    // Timed replay: every recorded camera frame comes out, in order, then the link closes.
    const timed = new McapReplayLink(file, { mode: 'timed', speed: 20 });
    const frames: Uint8Array[] = [];
    timed.messages$.subscribe((m) => m.topic === '/image_raw' && frames.push(m.data));
    timed.subscribe('/image_raw', 'sensor_msgs/msg/Image');
    await firstValueFrom(
      timed.state$.pipe(
        filter((s) => s === 'closed'),
        timeout(30_000),
      ),
    );
    const recordedFrames = rec.filter((m) => m.direction === 'in' && m.topic === '/image_raw').map((m) => m.data);
    expect(frames).toEqual(recordedFrames);
    await timed.close();
  });

  it('rejects a file that is not MCAP, naming it', () => {
    const bad = join(dir, 'bad.mcap');
    writeFileSync(bad, 'not an mcap file at all');
    expect(() => readMcap(bad)).toThrow(new RegExp(`${bad}: not a readable MCAP file`));
  });

  it("latches the robot's e-stop; the arm holds still, and after the release nothing moves until an explicit start", async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 4, imageHeight: 24, imageWidth: 30 });
    const robot = new SimRobot(env, 4);
    const server = await serveSimOverFoxglove(robot);
    const svc = startService(cfg(), imageDrivenPlanner(), new FoxgloveLink(server.url, { reconnectMs: 0 }));
    const sent: Command[] = [];
    svc.commands$.subscribe((c) => sent.push(c));
    await firstValueFrom(
      svc.commands$.pipe(
        filter((c) => c.zeroed === undefined),
        timeout(30_000),
      ),
    );
    server.setEstop(true);
    await firstValueFrom(
      svc.commands$.pipe(
        filter((c) => c.zeroed === 'e-stop (topic)'),
        timeout(30_000),
      ),
    );
    // An action already on the wire when the button was pressed still lands; then nothing.
    await new Promise((r) => setTimeout(r, 150));
    const held = env.proprio()[0]!;
    const count = sent.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(sent.length).toBe(count);
    expect(Math.abs(env.proprio()[0]! - held)).toBeLessThan(0.005);
    server.setEstop(false);
    await firstValueFrom(
      svc.status$.pipe(
        filter((s) => !s.safety.estop),
        timeout(30_000),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(sent.length).toBe(count);
    expect(svc.status().running).toBe(false);
    expect(svc.start()).toBeUndefined();
    await firstValueFrom(
      svc.commands$.pipe(
        filter((c) => c.zeroed === undefined),
        timeout(30_000),
      ),
    );
    expect(env.proprio()[0]! - held).toBeGreaterThan(0.005);
    await svc.shutdown();
    await server.close();
    env.close();
  });

  it('reports the link lost when the robot goes away and stops publishing', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 1, imageHeight: 24, imageWidth: 30 });
    const server = await serveSimOverFoxglove(new SimRobot(env, 1));
    const link = new FoxgloveLink(server.url, { reconnectMs: 0 });
    await link.ready();
    const lost = firstValueFrom(
      link.state$.pipe(
        filter((s) => s === 'lost'),
        timeout(10_000),
      ),
    );
    await server.close();
    await lost;
    expect(link.publish('/selfflow/action', new Uint8Array(4))).toBe(false);
    await link.close();
    env.close();
  });
});

describe('rate mode over foxglove: the twist republished between actions', () => {
  beforeAll(() => ensureDist(), 120_000);

  it('sends actions at action_hz and the twist at twist_hz, holding each action until the next without zeros between', async () => {
    // The robot in its own thread, as on hardware: its physics steps must not stall the service.
    const robot = new Worker(new URL('./fixtures/sim-robot-worker.mjs', import.meta.url), {
      workerData: { task: 'pick-can', seed: 5, height: 24, width: 30 },
    });
    const got: { topic: string; t: number; data: Uint8Array }[] = [];
    let onClosed!: (moved: number) => void;
    const closed = new Promise<number>((r) => (onClosed = r));
    const url = await new Promise<string>((resolve, reject) => {
      robot.on('error', reject);
      robot.on('message', (m: { type: string; url?: string; topic?: string; t?: number; data?: Uint8Array; moved?: number }) => {
        if (m.type === 'ready') resolve(m.url!);
        else if (m.type === 'msg') got.push({ topic: m.topic!, t: m.t!, data: m.data! });
        else if (m.type === 'closed') onClosed(m.moved!);
      });
    });
    const epochNow = () => performance.timeOrigin + performance.now();
    const rateCfg: ServiceConfig = { ...defaultConfig(), controlMode: 'rate', actionHz: 3, twistHz: 20, statusHz: 0 };
    // Send times on the service side: the robot's thread timestamps arrivals only between its
    // physics steps, so its clock would charge those steps to the service.
    const sentAt: { topic: string; t: number }[] = [];
    class TimedFoxgloveLink extends FoxgloveLink {
      override publish(topic: string, data: Uint8Array): boolean {
        const ok = super.publish(topic, data);
        if (ok) sentAt.push({ topic, t: epochNow() });
        return ok;
      }
    }
    const svc = startService(rateCfg, imageDrivenPlanner(), new TimedFoxgloveLink(url, { reconnectMs: 0 }));
    await firstValueFrom(
      svc.commands$.pipe(
        filter((c) => c.zeroed === undefined),
        timeout(30_000),
      ),
    );
    const t0 = epochNow();
    await new Promise((r) => setTimeout(r, 3000));
    const t1 = epochNow();
    await svc.shutdown();
    robot.postMessage({ type: 'close' });
    const moved = await closed;
    await robot.terminate();
    const codec = rosCodec();
    const sent = (topic: string) => sentAt.filter((m) => m.topic === topic && m.t >= t0 && m.t <= t1).map((m) => m.t);
    const sentTwists = sent('/servo/delta_twist_cmds');
    // Rates as configured (timer jitter on a shared 2-core machine allowed for).
    expect(sent('/selfflow/action').length).toBeGreaterThanOrEqual(8);
    expect(sent('/selfflow/action').length).toBeLessThanOrEqual(10);
    expect(sentTwists.length).toBeGreaterThanOrEqual(52);
    expect(sentTwists.length).toBeLessThanOrEqual(62);
    const gaps = sentTwists.slice(1).map((t, i) => t - sentTwists[i]!);
    expect(Math.max(...gaps)).toBeLessThan(100); // MoveIt Servo's command timeout
    // Everything sent during the run reached the robot (in order, one connection); its content is checked below.
    const received = (topic: string) => got.filter((g) => g.topic === topic).length;
    expect(received('/servo/delta_twist_cmds')).toBeGreaterThanOrEqual(
      sentAt.filter((m) => m.topic === '/servo/delta_twist_cmds' && m.t <= t1).length,
    );
    const inWindow = got.filter((g) => g.t >= t0 && g.t <= t1);
    const twists = inWindow
      .filter((g) => g.topic === '/servo/delta_twist_cmds')
      .map((g) => ({ t: g.t, x: codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', g.data).twist.linear.x }));
    const actions = inWindow
      .filter((g) => g.topic === '/selfflow/action')
      .map((g) => ({ t: g.t, x: codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', g.data).data[0]! }));
    expect(actions.length).toBeGreaterThanOrEqual(7);
    // Each twist carries the newest action over its period (x / (1/3 s)); no zero twist while actions move.
    for (const w of twists) {
      const a = actions.filter((c) => c.t <= w.t).at(-1);
      if (a) expect(w.x).toBeCloseTo(a.x * 3, 5);
    }
    expect(actions.every((a) => a.x > 0)).toBe(true);
    expect(twists.filter((w) => w.t > actions[0]!.t).every((w) => w.x > 0)).toBe(true);
    expect(moved).toBeGreaterThan(0.1);
  });
});
