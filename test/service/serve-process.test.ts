/**
 * `selfflow-wm serve` as its own process, the way a launch file runs it (bin/selfflow-wm.js on
 * the compiled code, --ros-args appended): SIGTERM leaves the zero command as the last thing sent
 * and recorded, and the process exits promptly; a world-model preset plans in a worker thread.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readMcap } from '../../src/robot/mcap.js';
import { rosCodec } from '../../src/robot/msgs.js';
import type { Float32MultiArrayMsg, TwistStampedMsg } from '../../src/robot/messages.js';
import { ensureDist, ROOT } from '../helpers/dist.js';
import { SHIPPED_MODEL } from '../../src/util/package-root.js';

const dir = mkdtempSync(join(tmpdir(), 'selfflow-serve-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => ensureDist(), 120_000);
const codec = rosCodec();
const children = new Set<ReturnType<typeof spawn>>();
// A failed assertion must not leave a serve process running.
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

function serve(args: string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'selfflow-wm.js'), 'serve', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((r) => child.on('exit', (code) => r({ code, at: performance.now() })));
  const waitFor = async (re: RegExp, ms: number) => {
    const t0 = performance.now();
    while (!re.test(err)) {
      if (performance.now() - t0 > ms || child.exitCode !== null) throw new Error(`no ${re} in ${ms} ms; stderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, exited, waitFor, out: () => out, err: () => err };
}

describe('serve as a process', () => {
  it('on SIGTERM sends and records the zero command last and exits promptly (started as launch_ros starts it)', async () => {
    const file = join(dir, 'sigterm.mcap');
    const p = serve([
      '--robot',
      'sim',
      '--policy',
      'expert',
      '--image-size',
      '32x40',
      '--control-mode',
      'rate',
      '--record',
      file,
      '--ros-args',
      '-r',
      '__node:=selfflow_planner',
      '-r',
      '__ns:=/arm',
      '--params-file',
      join(ROOT, 'launch', 'params.yaml'),
      '-p',
      'api.enabled:=false',
    ]);
    await p.waitFor(
      /serving sim \(recording .*\) in namespace '\/arm' as node selfflow_planner, rate control at 3 Hz, twist 20 Hz/,
      60_000,
    );
    // A few actions at 3 Hz and twists at 20 Hz, then the signal.
    await new Promise((r) => setTimeout(r, 1500));
    const t = performance.now();
    p.child.kill('SIGTERM');
    const { code, at } = await p.exited;
    expect(code, p.err()).toBe(0);
    expect(at - t).toBeLessThan(3000);
    expect(p.err()).toMatch(/stopping \(SIGTERM\): zero command out/);
    expect(existsSync(file)).toBe(true);
    const rec = readMcap(file);
    const actions = rec
      .filter((m) => m.topic === '/arm/selfflow/action')
      .map((m) => Array.from(codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', m.data).data));
    const twists = rec
      .filter((m) => m.topic === '/arm/servo/delta_twist_cmds')
      .map((m) => codec.decode<TwistStampedMsg>('geometry_msgs/msg/TwistStamped', m.data).twist);
    // The expert moved the arm before the signal, so a zero at the end is the shutdown's.
    expect(actions.some((a) => a.slice(0, 6).some((v) => v !== 0))).toBe(true);
    expect(twists.some((w) => w.linear.x !== 0 || w.linear.y !== 0 || w.linear.z !== 0)).toBe(true);
    expect(actions.at(-1)!.slice(0, 7)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    const last = twists.at(-1)!;
    expect([last.linear.x, last.linear.y, last.linear.z, last.angular.x, last.angular.y, last.angular.z]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('on SIGINT (Ctrl-C) sends the zero command and exits 0', async () => {
    const p = serve(['--robot', 'sim', '--policy', 'expert', '--image-size', '32x40', '--control-mode', 'rate', '--no-api']);
    await p.waitFor(/serving sim/, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const t = performance.now();
    p.child.kill('SIGINT');
    const { code, at } = await p.exited;
    expect(code, p.err()).toBe(0);
    expect(at - t).toBeLessThan(3000);
    expect(p.err()).toMatch(/stopping \(SIGINT\): zero command out/);
    expect(p.err()).toMatch(/zero command: shutdown/);
  });

  it('plans with the default preset and the shipped world model (and its state reader) when given neither, and says so', async () => {
    const p = serve(['--robot', 'sim', '--image-size', '32x40', '--no-api']);
    await p.waitFor(/loading wm-cem-read with \S+ in a worker thread/, 60_000);
    expect(p.err()).toContain(`loading wm-cem-read with ${join(ROOT, SHIPPED_MODEL)} in a worker thread`);
    p.child.kill('SIGINT');
    const { code } = await p.exited;
    expect(code, p.err()).toBe(0);
    expect(p.out()).toContain(`serve: planning with the shipped world model ${SHIPPED_MODEL} (--checkpoint RUN for another)`);
  });

  it('on SIGINT while the world model loads stops the worker and exits 0 without serving', async () => {
    const p = serve([
      '--robot',
      'sim',
      '--policy',
      'wm-cem-fast',
      '--checkpoint',
      join(ROOT, 'models', 'tiny-sim'),
      '--task',
      'drawer-open',
      '--image-size',
      '64x80',
      '--no-api',
    ]);
    await p.waitFor(/loading wm-cem-fast with .* in a worker thread/, 60_000);
    const t = performance.now();
    p.child.kill('SIGINT');
    const { code, at } = await p.exited;
    expect(code, p.err()).toBe(0);
    expect(at - t).toBeLessThan(3000);
    expect(p.err()).toMatch(/stopping \(SIGINT\)/);
    expect(p.err()).not.toMatch(/serving sim/);
  });

  describe('a startup failure after the service started (the API port is taken)', () => {
    let blocker: Server;
    let port: number;
    beforeAll(async () => {
      blocker = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      port = (blocker.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

    it('sends the zero command, writes the recording and exits 1 naming the port', async () => {
      const file = join(dir, 'port-taken.mcap');
      const p = serve(['--robot', 'sim', '--policy', 'expert', '--image-size', '32x40', '--api-port', String(port), '--record', file]);
      const { code } = await p.exited;
      expect(code, p.err()).toBe(1);
      expect(p.err()).toMatch(
        new RegExp(
          `selfflow-wm serve: WebSocket API: cannot listen on 127.0.0.1:${port} \\(api.host, api.port; --api-port, or --no-api\\): .*EADDRINUSE`,
        ),
      );
      expect(p.err()).toMatch(/stopping \(startup failed: .*\): zero command out/);
      expect(p.err()).toMatch(/zero command: shutdown/);
      // The recorder was closed (the file appears on close). The API fails within milliseconds, often
      // before the sim link is up, so there may be no action at all; if the expert moved, zero is last.
      expect(existsSync(file)).toBe(true);
      const actions = readMcap(file)
        .filter((m) => m.topic === '/selfflow/action')
        .map((m) => Array.from(codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', m.data).data));
      if (actions.length) expect(actions.at(-1)!.slice(0, 7)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    });

    it('with a world-model preset closes the planner worker and exits 1 instead of hanging', async () => {
      const p = serve([
        '--robot',
        'sim',
        '--policy',
        'wm-cem-fast',
        '--checkpoint',
        join(ROOT, 'models', 'tiny-sim'),
        '--task',
        'drawer-open',
        '--image-size',
        '64x80',
        '--api-port',
        String(port),
      ]);
      const hung = setTimeout(() => p.child.kill('SIGKILL'), 150_000);
      const { code } = await p.exited;
      clearTimeout(hung);
      expect(code, p.err()).toBe(1);
      expect(p.err()).toMatch(/EADDRINUSE/);
      expect(p.err()).toMatch(/zero command: shutdown/);
      expect(p.err()).toMatch(/planner worker stopped/);
    }, 180_000);
  });

  it('closes everything and exits 1 naming the file when the recording cannot be written', async () => {
    const sub = mkdtempSync(join(dir, 'gone-'));
    const p = serve(['--robot', 'sim', '--policy', 'expert', '--image-size', '32x40', '--no-api', '--record', join(sub, 'x.mcap')]);
    await p.waitFor(/serving sim/, 60_000);
    rmSync(sub, { recursive: true, force: true });
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.err()).toMatch(/zero command: shutdown/);
    expect(p.err()).toMatch(new RegExp(`selfflow-wm serve: ${join(sub, 'x.mcap')}: cannot write the recording`));
  });

  it('plans a world-model preset in a worker thread', async () => {
    const p = serve([
      '--robot',
      'sim',
      '--policy',
      'wm-cem-fast',
      '--checkpoint',
      join(ROOT, 'models', 'tiny-sim'),
      '--task',
      'drawer-open',
      '--image-size',
      '64x80',
      '--max-commands',
      '2',
      '--no-api',
    ]);
    const { code } = await p.exited;
    expect(code, p.err()).toBe(0);
    expect(p.err()).toMatch(/planning with wm-cem-fast \(cem, 8 candidates, budget 1500 ms\) in a worker thread/);
    expect(p.err()).toMatch(/plan deadline 3334 ms/);
    expect(p.err()).toMatch(/planner worker stopped/);
    expect(p.out()).toMatch(/^3 commands .*, [23] plans/m);
  }, 180_000);
});
