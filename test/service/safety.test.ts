import { describe, expect, it } from 'vitest';
import { Subject, filter, firstValueFrom, timeout } from 'rxjs';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { clampToWorkspace, SafetyGate } from '../../src/service/safety.js';
import { startService, type Command } from '../../src/service/service.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { observationToImage, type Float32MultiArrayMsg, type TwistStampedMsg } from '../../src/robot/messages.js';
import type { Plan } from '../../src/planner/types.js';
import { FakeLink } from './fakes.js';

const codec = rosCodec();
const act = (x: number, yaw = 0) => ({ worldVector: [x, 0, 0] as [number, number, number], rotationDelta: [0, 0, yaw] as [number, number, number], gripperClosedness: 0, terminateEpisode: [0, 1, 0] as [number, number, number] });

function gateAt(cfg = defaultConfig().safety) {
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
    const { gate } = gateAt({ ...defaultConfig().safety, maxLinearVelocity: 0.3, maxAngularVelocity: 0.9 });
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

  it('latches e-stop until cleared, and zeroes on link loss and shutdown', () => {
    const { gate } = gateAt();
    gate.onCamera();
    gate.onPlan();
    gate.estop();
    gate.onCamera();
    gate.onPlan();
    expect(gate.filter(act(0.01)).zeroed).toBe('e-stop latched');
    gate.clearEstop();
    expect(gate.filter(act(0.01)).zeroed).toBeUndefined();
    gate.setLinkUp(false);
    expect(gate.filter(act(0.01)).zeroed).toBe('robot link lost');
    gate.setLinkUp(true);
    gate.shutdown();
    expect(gate.filter(act(0.01)).action.worldVector).toEqual([0, 0, 0]);
  });

  it('keeps the end effector in the workspace and needs a fresh pose to move', () => {
    const box = { x: [0.2, 0.9], y: [-0.4, 0.4], z: [0.02, 0.4] } as ServiceConfig['safety']['workspace'];
    const { gate, clock } = gateAt({ ...defaultConfig().safety, workspace: box });
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

function setup(overrides: Partial<ServiceConfig> = {}) {
  const clock = { now: 0 };
  const link = new FakeLink(() => clock.now);
  const cfg: ServiceConfig = { ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0, ...overrides };
  const plans = new Subject<Plan>();
  const svc = startService(cfg, () => plans, link, { clock: () => clock.now });
  const commands: Command[] = [];
  svc.commands$.subscribe((c) => commands.push(c));
  let stamp = 0;
  const frame = () => {
    stamp += 1;
    link.inject('/image_raw', 'sensor_msgs/msg/Image', codec.encode('sensor_msgs/msg/Image', observationToImage({ image: new Uint8Array(12), height: 2, width: 2, stamp }, 'cam')));
    return stamp;
  };
  const plan = (x: number, safe = false): void =>
    plans.next({ actions: [act(x)], cost: 0, iterations: 1, candidatesEvaluated: 1, latencyMs: 0, observationStamp: stamp, safe, reason: safe ? 'deadline missed' : undefined });
  const lastAction = () => Array.from(codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', link.on('/selfflow/action').at(-1)!).data);
  return { clock, link, svc, commands, frame, plan, lastAction };
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
    await firstValueFrom(s.svc.commands$.pipe(filter((c) => c.zeroed === undefined), timeout(5000)));
    expect(s.lastAction()[0]).toBeCloseTo(0.001, 6);
    s.clock.now = 700;
    const stale = await firstValueFrom(s.svc.commands$.pipe(timeout(5000)));
    expect(stale.zeroed).toMatch(/camera frame 700 ms old/);
    expect(s.lastAction().slice(0, 6)).toEqual([0, 0, 0, 0, 0, 0]);
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

  it('latches e-stop from the topic until a false clears it', () => {
    const s = setup();
    s.frame();
    s.plan(0.01);
    s.link.inject('/selfflow/estop', 'std_msgs/msg/Bool', codec.encode('std_msgs/msg/Bool', { data: true }));
    expect(s.lastAction()[0]).toBe(0);
    s.frame();
    s.plan(0.01);
    expect(s.commands.at(-1)!.zeroed).toBe('e-stop latched');
    s.link.inject('/selfflow/estop', 'std_msgs/msg/Bool', codec.encode('std_msgs/msg/Bool', { data: false }));
    s.frame();
    s.plan(0.01);
    expect(s.lastAction()[0]).toBeCloseTo(0.01, 6);
  });

  it('zeroes while the link is lost and the twist stops with a stale frame', () => {
    const s = setup({ twistHz: 20 });
    s.frame();
    s.plan(0.01);
    const twist = () => codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', s.link.on('/servo/delta_twist_cmds').at(-1)!).twist.linear.x;
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
