import { describe, expect, it, vi } from 'vitest';
import { Subject, filter, firstValueFrom, take, timeout, toArray } from 'rxjs';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { clampToWorkspace, SafetyGate } from '../../src/service/safety.js';
import { startService, type Command, type LatencySample } from '../../src/service/service.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { observationToCompressed, observationToImage, type Float32MultiArrayMsg, type TwistStampedMsg } from '../../src/robot/messages.js';
import type { Goal, Observation, Plan } from '../../src/core/types.js';
import { FakeLink } from './fakes.js';

const codec = rosCodec();
const act = (x: number, yaw = 0) => ({
  worldVector: [x, 0, 0] as [number, number, number],
  rotationDelta: [0, 0, yaw] as [number, number, number],
  gripperClosedness: 0,
  terminateEpisode: [0, 1, 0] as [number, number, number],
});

function gateAt(cfg = { ...defaultConfig().safety, planDeadlineMs: 1500 }) {
  const clock = { now: 0 };
  const gate = new SafetyGate(cfg, 1 / 3, () => clock.now);
  return { gate, clock };
}

describe('SafetyGate (independent of any planner)', () => {
  it('blocks until it has seen a camera frame and a plan', () => {
    const { gate } = gateAt();
    expect(gate.filter(act(0.01)).zeroed).toBe('no camera frame yet');
    gate.onCamera();
    expect(gate.filter(act(0.01)).zeroed).toBe('no plan yet');
    gate.onPlan();
    expect(gate.filter(act(0.01)).zeroed).toBeUndefined();
  });

  it('clamps speed by norm, keeping the direction', () => {
    const { gate } = gateAt({ ...defaultConfig().safety, planDeadlineMs: 1500, maxLinearVelocity: 0.3, maxAngularVelocity: 0.9 });
    gate.onCamera();
    gate.onPlan();
    const r = gate.filter({ ...act(0), worldVector: [0.3, 0.4, 0], rotationDelta: [0, 0, 1] });
    expect(Math.hypot(...r.action.worldVector)).toBeCloseTo(0.1, 9); // 0.3 m/s over 1/3 s
    expect(r.action.worldVector[0] / r.action.worldVector[1]).toBeCloseTo(0.75, 9);
    expect(r.action.rotationDelta[2]).toBeCloseTo(0.3, 9);
    expect(r.clamped).toEqual(['linear velocity', 'angular velocity']);
  });

  it('zeroes on a stale camera frame and on a missed plan deadline', () => {
    const { gate, clock } = gateAt();
    gate.onCamera();
    gate.onPlan();
    clock.now = 501;
    expect(gate.filter(act(0.01)).zeroed).toMatch(/camera frame 501 ms old/);
    clock.now = 1501;
    gate.onCamera();
    expect(gate.filter(act(0.01)).zeroed).toMatch(/missed its deadline/);
    gate.onPlan();
    expect(gate.filter(act(0.01)).action.worldVector[0]).toBe(0.01);
  });

  it('latches e-stop per source until that source clears it, and zeroes on link loss and shutdown', () => {
    const { gate } = gateAt();
    gate.onCamera();
    gate.onPlan();
    gate.estop('api');
    gate.estop('topic');
    gate.onCamera();
    gate.onPlan();
    expect(gate.filter(act(0.01)).zeroed).toBe('e-stop latched (api, topic)');
    expect(gate.clearEstop('topic')).toBe(true);
    expect(gate.clearEstop('topic')).toBe(false);
    expect(gate.filter(act(0.01)).zeroed).toBe('e-stop latched (api)');
    gate.clearEstop('api');
    expect(gate.filter(act(0.01)).zeroed).toBeUndefined();
    gate.setLinkUp(false);
    expect(gate.filter(act(0.01)).zeroed).toBe('robot link lost');
    gate.setLinkUp(true);
    gate.shutdown();
    expect(gate.filter(act(0.01)).action.worldVector).toEqual([0, 0, 0]);
  });

  it('keeps the end effector in the workspace and needs a fresh pose to move', () => {
    const box = { x: [0.2, 0.9], y: [-0.4, 0.4], z: [0.02, 0.4] } as ServiceConfig['safety']['workspace'];
    const { gate, clock } = gateAt({ ...defaultConfig().safety, planDeadlineMs: 1500, workspace: box });
    gate.onCamera();
    gate.onPlan();
    expect(gate.filter(act(0.01)).zeroed).toMatch(/no end-effector pose/);
    gate.onPose([0.88, 0, 0.3]);
    const r = gate.filter(act(0.05));
    expect(r.action.worldVector[0]).toBeCloseTo(0.02, 9);
    expect(r.clamped).toContain('workspace');
    clock.now = 600;
    gate.onCamera();
    gate.onPlan();
    expect(gate.filter(act(0.01)).zeroed).toMatch(/pose 600 ms old/);
    // Outside the box only motion back in passes; the gate adds none of its own.
    expect(clampToWorkspace([1.0, 0, 0.3], [0.01, 0, 0], box!)).toEqual([0, 0, 0]);
    expect(clampToWorkspace([1.0, 0, 0.3], [-0.01, 0, 0], box!)).toEqual([-0.01, 0, 0]);
  });
});

function setup(overrides: Partial<ServiceConfig> = {}, wall = { now: 1_000_000 }) {
  const clock = { now: 0 };
  const link = new FakeLink(() => clock.now);
  const cfg: ServiceConfig = { ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0, ...overrides };
  const plans = new Subject<Plan>();
  const seen: Observation[] = [];
  const goals: Goal[] = [];
  const svc = startService(
    cfg,
    (obs$, goals$) => {
      obs$.subscribe((o) => seen.push(o));
      goals$.subscribe((g) => goals.push(g));
      return plans;
    },
    link,
    { clock: () => clock.now, wallClock: () => wall.now },
  );
  const commands: Command[] = [];
  const latencies: LatencySample[] = [];
  svc.commands$.subscribe((c) => commands.push(c));
  svc.latency$.subscribe((l) => latencies.push(l));
  let header = 0;
  /** A camera frame; `stamp` is its header stamp (default: one more than the last). */
  const frame = (stamp = ++header) => {
    link.inject(
      '/image_raw',
      'sensor_msgs/msg/Image',
      codec.encode('sensor_msgs/msg/Image', observationToImage({ image: new Uint8Array(12), height: 2, width: 2, stamp }, 'cam')),
    );
  };
  /** A plan of `steps` actions for the newest frame the planner saw. */
  const plan = (x: number, safe = false, latencyMs = 0, steps = 1): void =>
    plans.next({
      actions: Array.from({ length: steps }, () => act(x)),
      cost: 0,
      iterations: 1,
      candidatesEvaluated: 1,
      latencyMs,
      observationStamp: seen.at(-1)?.stamp ?? -1,
      safe,
      reason: safe ? 'deadline missed' : undefined,
    });
  const bool = (topic: string, data: boolean) => link.inject(topic, 'std_msgs/msg/Bool', codec.encode('std_msgs/msg/Bool', { data }));
  const lastAction = () =>
    Array.from(codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', link.on('/selfflow/action').at(-1)!).data);
  return { clock, wall, link, svc, commands, latencies, seen, goals, frame, plan, plans, bool, lastAction };
}

describe('the service applies the safety layer between planner and robot', () => {
  it('publishes clamped actions in the RT-1 layout', () => {
    const s = setup();
    s.frame();
    s.plan(0.5);
    expect(s.commands[0]!.clamped).toEqual(['linear velocity']);
    expect(s.lastAction()[0]).toBeCloseTo(0.25 / 3, 6);
    expect(s.lastAction()[8]).toBe(1); // terminate_episode.continue
  });

  it('zeroes the commands of a rate-mode robot whose camera has gone stale', async () => {
    // Rate mode ticks on real timers (50 Hz here); the fake clock says how old the frame is.
    const s = setup({ controlMode: 'rate', actionHz: 50 });
    s.frame();
    s.plan(0.001); // under the 0.25 m/s limit over a 20 ms step
    await firstValueFrom(
      s.svc.commands$.pipe(
        filter((c) => c.zeroed === undefined),
        timeout(5000),
      ),
    );
    expect(s.lastAction()[0]).toBeCloseTo(0.001, 6);
    s.clock.now = 700;
    const stale = await firstValueFrom(s.svc.commands$.pipe(timeout(5000)));
    expect(stale.zeroed).toMatch(/camera frame 700 ms old/);
    expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    await s.svc.shutdown();
  });

  it('in rate mode, stop, e-stop and link loss discard the plan in hand: after a restart only a plan from a newer frame moves the robot', async () => {
    // Real 50 Hz ticks; the fake clock stands still, so the frame and plan stay fresh for the gate.
    // The link returning counts as the restart here (safety.resume_after_link_loss opts into that).
    const s = setup({ controlMode: 'rate', actionHz: 50, safety: { ...defaultConfig().safety, resumeAfterLinkLoss: true } });
    const ticks = (n: number) => firstValueFrom(s.svc.commands$.pipe(take(n), toArray(), timeout(5000)));
    const moved = (cs: Command[]) => cs.map((c) => c.action.worldVector[0]);
    s.frame();
    s.plan(0.001, false, 0, 100);
    await firstValueFrom(
      s.svc.commands$.pipe(
        filter((c) => c.action.worldVector[0] > 0),
        timeout(5000),
      ),
    );
    const restarts: [string, () => void][] = [
      ['e-stop', () => (s.svc.estop('api'), s.svc.clearEstop('api'), s.svc.start())],
      ['stop', () => (s.svc.stop(), s.svc.start())],
      ['link loss', () => (s.link.drop(), s.link.restore())],
    ];
    for (const [i, [what, restart]] of restarts.entries()) {
      restart();
      expect(moved(await ticks(4)), `${what}: the old plan resumed`).toEqual([0, 0, 0, 0]);
      // A plan still being computed from a frame of before the restart arrives: not executed either.
      s.plan(0.002, false, 0, 100);
      expect(moved(await ticks(4)), `${what}: a plan from an old frame was executed`).toEqual([0, 0, 0, 0]);
      expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
      // A frame taken after the restart, and its plan: motion again.
      s.frame();
      const x = 0.003 + i * 0.001;
      s.plan(x, false, 0, 100);
      await firstValueFrom(
        s.svc.commands$.pipe(
          filter((c) => c.action.worldVector[0] > 0),
          timeout(5000),
        ),
      );
      expect(s.lastAction()[0]).toBeCloseTo(x, 6);
    }
    await s.svc.shutdown();
  });

  it('does not age frames in lockstep mode, where the robot waits for each command', () => {
    const s = setup();
    s.frame();
    s.clock.now = 700;
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
  });

  it('sends the safe action for a missed deadline and zeroes once plans stop', () => {
    const s = setup();
    s.frame();
    s.plan(0.01);
    s.clock.now = 400;
    s.frame();
    s.plan(0.01, true);
    expect(s.lastAction()[0]).toBe(0);
    s.clock.now = 1600;
    s.frame();
    s.plan(0.01, true);
    expect(s.commands.at(-1)!.zeroed).toMatch(/missed its deadline/);
  });

  it('latches e-stop per source: the topic releases only its own latch, and nothing restarts without start', () => {
    const s = setup();
    s.frame();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
    s.bool('/selfflow/estop', true);
    expect(s.commands.at(-1)!.zeroed).toBe('e-stop (topic)');
    expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(s.svc.status()).toMatchObject({ running: false, safety: { estop: true, estopSources: ['topic'] } });
    s.svc.estop('api');
    const sent = s.commands.length;
    s.frame();
    s.plan(0.01);
    expect(s.commands.length).toBe(sent); // stopped: no command from a plan
    // The robot's button released: the operator's API e-stop stays.
    s.bool('/selfflow/estop', false);
    expect(s.svc.status().safety.estopSources).toEqual(['api']);
    expect(s.svc.start()).toMatch(/cannot start: e-stop latched \(api\)/);
    s.bool('/selfflow/run', true);
    expect(s.svc.status().running).toBe(false);
    expect(s.svc.status().lastError).toMatch(/\/selfflow\/run: cannot start: e-stop latched \(api\)/);
    // Every latch released: still stopped until an explicit start.
    s.svc.clearEstop('api');
    expect(s.svc.status()).toMatchObject({ running: false, safety: { estop: false, estopSources: [] } });
    s.frame();
    s.plan(0.01);
    expect(s.commands.length).toBe(sent);
    expect(s.svc.start()).toBeUndefined();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
    expect(s.lastAction()[0]).toBeCloseTo(0.01, 6);
    // selfflow/run false stops with one zero command; true starts again.
    s.bool('/selfflow/run', false);
    expect(s.commands.at(-1)!.zeroed).toBe('stopped');
    s.bool('/selfflow/run', true);
    expect(s.svc.status().running).toBe(true);
  });

  it('stamps every frame itself, so a camera with zero or repeated header stamps still gets one plan and one latency sample per frame', () => {
    const s = setup();
    for (let i = 0; i < 4; i++) {
      s.clock.now = i * 100;
      s.frame(0);
      s.clock.now += 7;
      s.plan(0.01, false, 5);
    }
    const stamps = s.seen.map((o) => o.stamp);
    expect(stamps).toEqual([0, 100, 200, 300]);
    expect(s.commands.filter((c) => c.zeroed === undefined)).toHaveLength(4);
    expect(s.latencies).toHaveLength(4);
    for (const l of s.latencies) {
      expect(l.totalMs).toBe(7);
      expect(l.planningMs).toBe(5);
      // 2 ms in the planner that its own latency does not cover count as waiting for it.
      expect(l.waitMs).toBe(2);
      expect(l.serviceMs).toBe(0);
    }
    // Two frames in the same millisecond still get distinct, increasing stamps.
    s.frame(0);
    s.frame(0);
    const [a, b] = s.seen.slice(-2).map((o) => o.stamp);
    expect(b!).toBeGreaterThan(a!);
  });

  it('checks the header-stamp age only when safety.max_header_age_ms is set', () => {
    const wall = { now: 50_000 };
    const s = setup({ controlMode: 'rate', twistHz: 0, safety: { ...defaultConfig().safety, maxHeaderAgeMs: 300 } }, wall);
    s.frame(49_900); // stamped 100 ms ago
    s.plan(0.01);
    expect(s.svc.gate.blockReason()).toBeUndefined();
    s.clock.now = 250; // 350 ms after its stamp
    expect(s.svc.gate.blockReason()).toMatch(/camera frame stamped 350 ms ago \(header stamp; limit 300 ms\)/);
    s.frame(0); // a zero stamp is decades old by the wall clock
    s.plan(0.01);
    expect(s.svc.gate.blockReason()).toMatch(/header stamp/);
    const off = setup({ controlMode: 'rate', twistHz: 0 }, wall);
    off.frame(0);
    off.plan(0.01);
    expect(off.svc.gate.blockReason()).toBeUndefined();
    expect(off.svc.status().safety.headerAgeMs).toBeNull();
    void s.svc.shutdown();
    void off.svc.shutdown();
  });

  it('zeroes while the link is lost and the twist stops with a stale frame', () => {
    const s = setup({ twistHz: 20, safety: { ...defaultConfig().safety, resumeAfterLinkLoss: true } });
    s.frame();
    s.plan(0.01);
    const twist = () =>
      codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', s.link.on('/servo/delta_twist_cmds').at(-1)!).twist.linear.x;
    s.svc.publishTwist();
    expect(twist()).toBeCloseTo(0.03, 6); // 0.01 m over 1/3 s
    s.clock.now = 501;
    s.svc.publishTwist();
    expect(twist()).toBe(0);
    s.link.drop();
    s.frame();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBe('robot link lost');
    s.link.restore();
    s.frame();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
  });

  it('holds the twist through a late control tick instead of a spurious zero between actions', () => {
    const s = setup({ twistHz: 20 });
    const twist = () =>
      codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', s.link.on('/servo/delta_twist_cmds').at(-1)!).twist.linear.x;
    s.frame();
    s.plan(0.01);
    // The next action is due at 333 ms; a tick 7 ms late must not see a zero twist in between.
    s.clock.now = 340;
    s.svc.publishTwist();
    expect(twist()).toBeCloseTo(0.03, 6);
    s.clock.now = 380;
    s.svc.publishTwist();
    expect(twist()).toBeCloseTo(0.03, 6);
    // No action for a period plus one twist period: zero.
    s.clock.now = 384;
    s.svc.publishTwist();
    expect(twist()).toBe(0);
  });

  it('takes the goal as sensor_msgs/CompressedImage too', async () => {
    const s = setup();
    const img = { image: new Uint8Array(4 * 6 * 3).fill(200), height: 4, width: 6, stamp: 0 };
    s.link.inject(
      '/selfflow/goal_image/compressed',
      'sensor_msgs/msg/CompressedImage',
      codec.encode('sensor_msgs/msg/CompressedImage', observationToCompressed(img, 'cam')),
    );
    // Compressed goals are decoded off the service's thread: the goal is set once that finishes.
    await vi.waitFor(() => expect(s.goals).toHaveLength(1), { timeout: 10_000 });
    expect(s.svc.status().hasGoal).toBe(true);
    expect(s.goals).toHaveLength(1);
    expect(s.goals[0]!.images[0]).toMatchObject({ height: 4, width: 6 });
    expect(Math.abs(s.goals[0]!.images[0]!.image[0]! - 200)).toBeLessThan(8);
  });

  it('drops a compressed camera frame that declares more than camera.max_pixels before decoding it', async () => {
    const { pngHeader } = await import('../helpers/crafted.js');
    const s = setup({ topics: { ...defaultConfig().topics, useCompressed: true }, camera: { maxPixels: 64 * 48 } });
    const frame = (data: Uint8Array) =>
      s.link.inject(
        '/image_raw/compressed',
        'sensor_msgs/msg/CompressedImage',
        codec.encode('sensor_msgs/msg/CompressedImage', {
          header: { stamp: { sec: 0, nanosec: 1 }, frame_id: 'cam' },
          format: 'png',
          data,
        }),
      );
    frame(pngHeader(4000, 3000));
    expect(s.seen).toHaveLength(0);
    expect(s.svc.status().decodeErrors).toBe(1);
    expect(s.svc.status().lastError).toMatch(
      /image declares 4000x3000 pixels \(12000000\), over the limit of 3072 pixels; it was not decoded/,
    );
    const small = observationToCompressed({ image: new Uint8Array(48 * 64 * 3).fill(90), height: 48, width: 64, stamp: 1 }, 'cam');
    frame(small.data);
    expect(s.seen).toHaveLength(1);
  });

  it('survives malformed messages and sends the zero command on shutdown', async () => {
    const s = setup({ twistHz: 20 });
    s.link.inject('/image_raw', 'sensor_msgs/msg/Image', Uint8Array.from([0, 1, 0, 0, 9, 9]));
    expect(s.svc.status().decodeErrors).toBe(1);
    expect(s.svc.status().lastError).toMatch(/\/image_raw: malformed/);
    s.frame();
    s.plan(0.02);
    expect(s.lastAction()[0]).toBeCloseTo(0.02, 6);
    await s.svc.shutdown();
    expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    const t = codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', s.link.on('/servo/delta_twist_cmds').at(-1)!);
    expect(t.twist.linear.x).toBe(0);
    expect(s.link.state).toBe('closed');
  });
});

describe('no stale plan moves the robot, and a link loss needs an explicit start', () => {
  const act2 = (x: number, stamp: number, steps = 100): Plan => ({
    actions: Array.from({ length: steps }, () => act(x)),
    cost: 0,
    iterations: 1,
    candidatesEvaluated: 1,
    latencyMs: 0,
    observationStamp: stamp,
    safe: false,
  });

  it('in rate mode, frames resuming after a camera freeze void the plan in hand and plans still computed from pre-freeze frames', async () => {
    // Real 50 Hz ticks; the fake clock says how long the camera was silent.
    const s = setup({ controlMode: 'rate', actionHz: 50 });
    const after = (n: number) => firstValueFrom(s.svc.commands$.pipe(take(n), toArray(), timeout(5000)));
    s.frame();
    const before = s.seen.at(-1)!.stamp;
    s.plans.next(act2(0.001, before));
    await firstValueFrom(
      s.svc.commands$.pipe(
        filter((c) => c.action.worldVector[0] > 0),
        timeout(5000),
      ),
    );
    // The camera freezes for longer than safety.max_image_age_ms (500 ms): the gate zeroes.
    s.clock.now = 800;
    expect((await after(1))[0]!.zeroed).toMatch(/camera frame 800 ms old/);
    // A plan from the pre-freeze frame arrives during the freeze and becomes the plan in hand.
    s.plans.next(act2(0.002, before));
    const sent: Command[] = [];
    const sub = s.svc.commands$.subscribe((c) => sent.push(c));
    // Frames come back: neither the plan in hand nor a late plan from before the freeze moves the robot.
    s.frame();
    expect(s.svc.status().safety.blocked).toBeUndefined();
    await after(4);
    s.plans.next(act2(0.003, before));
    await after(4);
    expect(sent.map((c) => c.action.worldVector[0]).filter((x) => x !== 0)).toEqual([]);
    expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
    // A plan from a frame taken after the freeze moves it again.
    s.plans.next(act2(0.004, s.seen.at(-1)!.stamp));
    await firstValueFrom(
      s.svc.commands$.pipe(
        filter((c) => c.action.worldVector[0] > 0),
        timeout(5000),
      ),
    );
    expect(s.lastAction()[0]).toBeCloseTo(0.004, 6);
    sub.unsubscribe();
    await s.svc.shutdown();
  });

  it('after a link loss stays stopped, saying why, until an explicit start', () => {
    const s = setup();
    s.frame();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
    s.link.drop();
    expect(s.commands.at(-1)!.zeroed).toBe('robot link lost: stopped until start');
    expect(s.svc.status()).toMatchObject({ running: false, waiting: expect.stringMatching(/robot link lost: waiting for start/) });
    s.link.restore();
    const sent = s.commands.length;
    s.frame();
    s.plan(0.01);
    expect(s.commands.length).toBe(sent); // the link is back, yet nothing moves by itself
    expect(s.svc.status()).toMatchObject({ running: false, link: 'up', waiting: expect.stringMatching(/robot link lost/) });
    // The run topic's start (or the API's) restarts motion from the newest frame.
    s.bool('/selfflow/run', true);
    expect(s.svc.status().running).toBe(true);
    expect(s.svc.status().waiting).toBeUndefined();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
    expect(s.lastAction()[0]).toBeCloseTo(0.01, 6);
  });

  it('with safety.resume_after_link_loss, resumes from a new frame once the link is back', () => {
    const s = setup({ safety: { ...defaultConfig().safety, resumeAfterLinkLoss: true } });
    s.frame();
    s.plan(0.01);
    s.link.drop();
    expect(s.svc.status()).toMatchObject({ running: true });
    expect(s.svc.status().waiting).toBeUndefined();
    s.link.restore();
    s.frame();
    s.plan(0.02);
    expect(s.commands.at(-1)!.zeroed).toBeUndefined();
    expect(s.lastAction()[0]).toBeCloseTo(0.02, 6);
  });
});
