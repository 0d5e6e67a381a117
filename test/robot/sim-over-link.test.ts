/**
 * serveSimOverLink (what `serve sim-robot --transport ros2` runs) over an in-memory bus standing in
 * for DDS: the service on one end, the simulated robot on the other.
 */
import { describe, expect, it } from 'vitest';
import { firstValueFrom, take, toArray, timeout } from 'rxjs';
import { LinkBase } from '../../src/robot/link.js';
import { SimRobot, serveSimOverLink } from '../../src/robot/sim-robot.js';
import { SimEnv } from '../../src/sim/env.js';
import { defaultConfig } from '../../src/service/config.js';
import { startService } from '../../src/service/service.js';
import { constantPlanner } from '../service/fakes.js';

/** Two ends of a topic bus: what one publishes, the other receives if it subscribed. */
class BusEnd extends LinkBase {
  peer!: BusEnd;
  constructor(name: string) {
    super(name);
    this.setState('up');
  }
  publish(topic: string, data: Uint8Array): boolean {
    const type = this.advertised.get(topic);
    if (!type || this.state !== 'up') return false;
    // Asynchronous like a transport, and only to subscribers.
    setImmediate(() => this.peer.subscriptions.has(topic) && this.peer.state === 'up' && this.peer.receive(topic, type, data));
    return true;
  }
  receive(topic: string, type: Parameters<LinkBase['subscribe']>[1], data: Uint8Array): void {
    this.deliver(topic, type, data);
  }
}

describe('the sim robot over a generic link', () => {
  it('is driven by the service and moves', async () => {
    const a = new BusEnd('service');
    const b = new BusEnd('robot');
    a.peer = b;
    b.peer = a;
    const env = await SimEnv.create({ task: 'pick-can', seed: 2, imageHeight: 24, imageWidth: 30 });
    const robot = new SimRobot(env, 2);
    const x0 = env.proprio()[0]!;
    // The service comes up after the robot's first snapshot: the discovery repeat gets it going.
    const served = serveSimOverLink(robot, b, { discoveryRepeatMs: 20 });
    const svc = startService({ ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0 }, constantPlanner(0.02), a);
    const cmds = await firstValueFrom(svc.commands$.pipe(take(5), toArray(), timeout(20_000)));
    expect(cmds.every((c) => c.zeroed === undefined)).toBe(true);
    expect(robot.steps).toBeGreaterThanOrEqual(3);
    expect(env.proprio()[0]! - x0).toBeGreaterThan(0.04); // +2 cm per action
    await svc.shutdown();
    await served.close();
    env.close();
  });
});
