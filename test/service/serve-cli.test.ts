import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { readMcap } from '../../src/robot/mcap.js';
import { zeroOnFatal } from '../../src/cli/serve.js';
import { startService } from '../../src/service/service.js';
import { defaultConfig } from '../../src/service/config.js';
import { rosCodec } from '../../src/robot/msgs.js';
import type { Float32MultiArrayMsg } from '../../src/robot/messages.js';
import { constantPlanner, FakeLink } from './fakes.js';

const dir = mkdtempSync(join(tmpdir(), 'selfflow-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('selfflow-wm serve', () => {
  it('drives the in-process sim with the expert and records', async () => {
    const file = join(dir, 'run.mcap');
    const r = await runCli([
      'serve',
      '--robot',
      'sim',
      '--policy',
      'expert',
      '--task',
      'pick-can',
      '--image-size',
      '32x40',
      '--max-commands',
      '8',
      '--no-api',
      '--record',
      file,
    ]);
    expect(r.err).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    // The eight from the expert, then the zero command on exit.
    expect(r.out).toMatch(/^9 commands \(1 zeroed/m);
    const actions = readMcap(file).filter((m) => m.topic === '/selfflow/action');
    expect(actions.length).toBeGreaterThanOrEqual(8);
  });

  it('accepts --ros-args as launch_ros appends it: node name, namespace, params file, -p and the closing --', async () => {
    const params = new URL('../../launch/params.yaml', import.meta.url).pathname;
    const r = await runCli([
      'serve',
      '--robot',
      'sim',
      '--policy',
      'expert',
      '--image-size',
      '32x40',
      '--max-commands',
      '4',
      '--no-api',
      '--ros-args',
      '-r',
      '__node:=arm_planner',
      '-r',
      '__ns:=/arm',
      '--params-file',
      params,
      '-p',
      'rates.twist_hz:=25',
      '--',
    ]);
    expect(r.err).not.toMatch(/Unknown option|Error/);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/serving sim in namespace '\/arm' as node arm_planner, lockstep control at 3 Hz, twist 25 Hz/);
    expect(r.out).toMatch(/^5 commands \(1 zeroed/m);
    // Only commands that run as ROS 2 nodes take ROS arguments; a bad ROS argument is a usage error.
    expect((await runCli(['sim', 'tasks', '--ros-args', '-r', '__node:=x'])).code).toBe(2);
    const bad = await runCli(['serve', '--ros-args', '--frobnicate', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unsupported ROS argument '--frobnicate'/);
  });

  it('refuses scripted policies without the sim and bad links', async () => {
    const a = await runCli(['serve', '--robot', 'ros2', '--policy', 'expert']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/--policy expert reads the simulator's state/);
    const b = await runCli(['serve', '--robot', 'serial:/dev/tty0']);
    expect(b.err).toMatch(/--robot expects sim, foxglove/);
  });

  it('names the file and key of a bad params file', async () => {
    const { writeFileSync } = await import('node:fs');
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'selfflow_planner:\n  ros__parameters:\n    rates:\n      twist_hz: 50\n');
    const r = await runCli(['serve', '--params', f, '--policy', 'expert', '--no-api']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(f);
    expect(r.err).toMatch(/twist_hz must be 10..30/);
    writeFileSync(f, 'selfflow_planner:\n  ros__parameters:\n    topics:\n      camera: x\n');
    const r2 = await runCli(['serve', '--params', f, '--policy', 'expert', '--no-api']);
    expect(r2.err).toMatch(/unknown parameter 'topics.camera'/);
  });

  it('sends the zero command on an uncaught exception before taking the normal exit path', async () => {
    const link = new FakeLink(() => 0);
    const svc = startService({ ...defaultConfig(), controlMode: 'lockstep', twistHz: 20, statusHz: 0 }, constantPlanner(0.01), link, {
      clock: () => 0,
    });
    const why: string[] = [];
    const lines: string[] = [];
    const onFatal = zeroOnFatal(
      svc,
      (w) => why.push(w),
      (l) => lines.push(l),
    );
    onFatal(new Error('boom'));
    onFatal(new Error('again'));
    const action = rosCodec().decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', link.on('/selfflow/action').at(-1)!);
    expect(Array.from(action.data).slice(0, 7)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(link.on('/servo/delta_twist_cmds')).toHaveLength(1);
    expect(svc.gate.blockReason()).toBe('shutting down');
    expect(why).toEqual(['fatal error: boom']);
    expect(lines.join('\n')).toMatch(/fatal: Error: boom[\s\S]*fatal: Error: again/);
  });
});
