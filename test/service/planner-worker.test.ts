/**
 * The planner in a worker thread: while a plan blocks its thread (a busy-waiting fake, like a
 * world-model plan's synchronous tensor reads), the service's main thread keeps republishing the
 * twist and acts on an e-stop at once. The same harness with the blocking planner on the main
 * thread shows what the worker prevents (twist gaps over a second, a late e-stop).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Subject, filter, firstValueFrom, interval, map, startWith, timeout } from 'rxjs';
import { defaultConfig, type ServiceConfig } from '../../src/service/config.js';
import { startService, type Command } from '../../src/service/service.js';
import { startWorkerPlanner, type WorkerPlanner } from '../../src/service/planner-worker.js';
import { rosCodec } from '../../src/robot/msgs.js';
import { observationToImage } from '../../src/robot/messages.js';
import type { Goal, Observation, Plan, Planner } from '../../src/core/types.js';
import { ensureDist } from '../helpers/dist.js';
import { FakeLink } from './fakes.js';

const codec = rosCodec();
const fixture = new URL('./fixtures/busy-planner-worker.mjs', import.meta.url);
const BUSY_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const img = (stamp: number): Observation => ({ image: new Uint8Array(4 * 4 * 3).fill(100), height: 4, width: 4, stamp });

beforeAll(() => ensureDist(), 120_000);

class TimedLink extends FakeLink {
  readonly log: { topic: string; t: number }[] = [];
  override publish(topic: string, data: Uint8Array): boolean {
    const ok = super.publish(topic, data);
    if (ok) this.log.push({ topic, t: performance.now() });
    return ok;
  }
}

/** The same blocking planner on the main thread: first plan at once, later ones busy-wait. */
function mainThreadBusyPlanner(): Planner {
  let n = 0;
  return (obs$) =>
    obs$.pipe(
      map((o): Plan => {
        const t0 = performance.now();
        if (++n > 1)
          while (performance.now() - t0 < BUSY_MS) {
            /* block */
          }
        return {
          actions: [{ worldVector: [0.01, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] }],
          cost: 0,
          iterations: 1,
          candidatesEvaluated: 1,
          latencyMs: performance.now() - t0,
          observationStamp: o.stamp,
          safe: false,
        };
      }),
    );
}

/**
 * Rate mode at 3 Hz with a 20 Hz twist and a 10 Hz camera. After the first (instant) plan the
 * next one blocks for BUSY_MS; an e-stop arrives 600 ms into that. Returns the largest gap between
 * twist messages during the blocked plan and how late the e-stop's zero command went out.
 */
async function busyRun(planner: Planner, timing: { budgetMs: number; graceMs: number }) {
  const link = new TimedLink(() => performance.now());
  const cfg: ServiceConfig = { ...defaultConfig(), controlMode: 'rate', actionHz: 3, twistHz: 20, statusHz: 0 };
  const svc = startService(cfg, planner, link, { plannerTiming: timing });
  const commands: (Command & { t: number })[] = [];
  svc.commands$.subscribe((c) => commands.push({ ...c, t: performance.now() }));
  let stamp = 0;
  const frame = () =>
    link.inject('/image_raw', 'sensor_msgs/msg/Image', codec.encode('sensor_msgs/msg/Image', observationToImage(img(++stamp), 'cam')));
  const camera = setInterval(frame, 100);
  svc.setGoal({ images: [img(0)] });
  frame();
  await firstValueFrom(
    svc.commands$.pipe(
      filter((c) => c.zeroed === undefined),
      timeout(10_000),
    ),
  );
  const t0 = performance.now();
  let estopAt = 0;
  setTimeout(() => {
    estopAt = performance.now();
    link.inject('/selfflow/estop', 'std_msgs/msg/Bool', codec.encode('std_msgs/msg/Bool', { data: true }));
  }, 600);
  // The test's own timers run late too when the main thread is blocked; wait past the blocked plan.
  await sleep(BUSY_MS + 300);
  clearInterval(camera);
  const t1 = performance.now();
  const zeroAt = commands.find((c) => c.zeroed === 'e-stop (topic)')?.t ?? Infinity;
  // Twist times from t0 to the end of the run, the window's ends included (a stall at either end counts).
  const twists = [t0, ...link.log.filter((l) => l.topic === '/servo/delta_twist_cmds' && l.t >= t0 && l.t <= t1).map((l) => l.t), t1];
  let maxGap = 0;
  for (let i = 1; i < twists.length; i++) maxGap = Math.max(maxGap, twists[i]! - twists[i - 1]!);
  await svc.shutdown();
  // Scheduled for t0 + 600; how late the zero command actually left.
  return {
    maxGap,
    estopLateMs: zeroAt - (t0 + 600),
    estopFiredLateMs: estopAt - (t0 + 600),
    twistCount: twists.length - 2,
    windowMs: t1 - t0,
  };
}

describe('planner in a worker thread', () => {
  let wp: WorkerPlanner | undefined;
  afterAll(async () => wp?.close());

  it('keeps the twist at its rate and answers an e-stop at once while a plan blocks the planner thread', async () => {
    wp = await startWorkerPlanner({ script: fixture, workerData: { busyMs: BUSY_MS, dx: 0.01, budgetMs: 3000, graceMs: 1000 } });
    expect(wp.info).toMatchObject({ name: 'busy', budgetMs: 3000, graceMs: 1000 });
    const r = await busyRun(wp.planner, wp.info);
    // MoveIt Servo stops after 0.1 s without a command: the 20 Hz republish keeps well inside that.
    expect(r.maxGap).toBeLessThan(100);
    expect(r.twistCount).toBeGreaterThan((r.windowMs / 50) * 0.7);
    expect(r.estopLateMs).toBeLessThan(60);
    await wp.close();
    wp = undefined;
  });

  it('(the same planner on the main thread stalls both, which is what the worker is for)', async () => {
    const r = await busyRun(mainThreadBusyPlanner(), { budgetMs: 3000, graceMs: 1000 });
    expect(r.maxGap).toBeGreaterThan(1000);
    expect(r.estopFiredLateMs).toBeGreaterThan(500);
  });

  it('sends the safe plan at the deadline while the worker is still blocked, and drops the late plan', async () => {
    wp = await startWorkerPlanner({ script: fixture, workerData: { busyMs: BUSY_MS, dx: 0.02, budgetMs: 300, graceMs: 200 } });
    const obs = new Subject<Observation>();
    const goals = new Subject<Goal>();
    const got: { p: Plan; t: number }[] = [];
    const sub = wp.planner(obs, goals).subscribe((p) => got.push({ p, t: performance.now() }));
    goals.next({ images: [img(0)] });
    obs.next(img(1));
    for (let i = 0; i < 200 && got.length < 1; i++) await sleep(10);
    expect(got[0]!.p).toMatchObject({ safe: false, observationStamp: 1 });
    expect(got[0]!.p.actions[0]!.worldVector[0]).toBeCloseTo(0.02, 6);
    const t = performance.now();
    obs.next(img(2));
    await sleep(200);
    obs.next(img(3)); // waits for the worker; img(2)'s late plan must not come out
    await sleep(BUSY_MS + 200);
    const after = got.slice(1);
    expect(after.length).toBeGreaterThanOrEqual(1);
    expect(after[0]!.p).toMatchObject({ safe: true, observationStamp: 2, reason: 'deadline missed (500 ms)' });
    expect(after[0]!.t - t).toBeGreaterThan(450);
    expect(after[0]!.t - t).toBeLessThan(900);
    expect(after.some((g) => !g.p.safe && g.p.observationStamp === 2)).toBe(false);
    sub.unsubscribe();
    await wp.close();
    wp = undefined;
  });

  it('errors the plan stream when the worker dies, and the service sends the zero command', async () => {
    wp = await startWorkerPlanner({ script: fixture, workerData: { busyMs: 0, dx: 0.01, budgetMs: 1000, graceMs: 500, dieOnPlan: 2 } });
    const link = new FakeLink(() => performance.now());
    const cfg: ServiceConfig = { ...defaultConfig(), controlMode: 'lockstep', twistHz: 0, statusHz: 0 };
    const svc = startService(cfg, wp.planner, link, { plannerTiming: wp.info });
    svc.setGoal({ images: [img(0)] });
    const failed = firstValueFrom(
      svc.commands$.pipe(
        filter((c) => /planner failed/.test(c.zeroed ?? '')),
        timeout(10_000),
      ),
    );
    link.inject('/image_raw', 'sensor_msgs/msg/Image', codec.encode('sensor_msgs/msg/Image', observationToImage(img(1), 'cam')));
    await firstValueFrom(
      svc.commands$.pipe(
        filter((c) => c.zeroed === undefined),
        timeout(10_000),
      ),
    );
    link.inject('/image_raw', 'sensor_msgs/msg/Image', codec.encode('sensor_msgs/msg/Image', observationToImage(img(2), 'cam')));
    expect((await failed).zeroed).toMatch(/planner failed: planner worker exited \(code 3\)/);
    await svc.shutdown();
    wp = undefined;
  });
});

describe('the world-model planner worker with plan workers', () => {
  it('loads with scoring workers of its own and plans', async () => {
    const { worldModelWorkerScript } = await import('../../src/service/planner-worker.js');
    const lines: string[] = [];
    const wm = await startWorkerPlanner({
      script: worldModelWorkerScript()!,
      workerData: { preset: 'wm-cem-fast', checkpoint: 'models/tiny-sim', seed: 0, planWorkers: 2 },
      log: (l) => lines.push(l),
    });
    try {
      expect(wm.info).toMatchObject({ name: 'wm-cem-fast', planWorkers: 2 });
      expect(lines).toContain('planning on 2 thread(s)');
      const big = (stamp: number): Observation => ({
        image: Uint8Array.from({ length: 64 * 80 * 3 }, (_, i) => (i * 7 + stamp) % 251),
        height: 64,
        width: 80,
        stamp,
      });
      // Plans until the first that is not a missed deadline (the first plans warm the model up; the machine may be loaded).
      const camera = interval(300).pipe(map((i) => big(i + 1)));
      const plans = wm.planner(camera, new Subject<Goal>().pipe(startWith({ images: [big(0)] } as Goal)));
      const plan = await firstValueFrom(
        plans.pipe(
          filter((p) => !p.safe || !/deadline/.test(p.reason ?? '')),
          timeout(120_000),
        ),
      );
      expect(plan.reason).toBeUndefined();
      expect(plan.safe).toBe(false);
      expect(plan.candidatesEvaluated).toBeGreaterThan(0);
    } finally {
      await wm.close();
    }
  }, 180_000);
});
