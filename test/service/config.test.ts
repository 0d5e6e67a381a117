import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyParamsFile,
  applyRemaps,
  defaultConfig,
  resolvePlanDeadline,
  setParam,
  UNBUDGETED_PLAN_DEADLINE_MS,
  validateConfig,
} from '../../src/service/config.js';
import { loadPlannerPreset } from '../../src/planner/presets.js';
import { buildServiceConfig } from '../../src/cli/serve.js';
import { setProcessRosArgs, stripRosArgs } from '../../src/robot/ros-args.js';

const dir = mkdtempSync(join(tmpdir(), 'selfflow-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('service configuration', () => {
  it('reads the section for the node by name, fully qualified name or /**', () => {
    const f = file(
      'a.yaml',
      '/arm/planner:\n  ros__parameters:\n    rates: {twist_hz: 25}\nother:\n  ros__parameters:\n    rates: {twist_hz: 11}\n',
    );
    const cfg = defaultConfig();
    applyParamsFile(cfg, f, 'planner', '/arm');
    expect(cfg.twistHz).toBe(25);
    expect(() => applyParamsFile(defaultConfig(), f, 'planner', '/leg')).toThrow(/no section for node 'planner'/);
  });

  it('names the file and parameter of a wrong type', () => {
    const f = file('b.yaml', '/**:\n  ros__parameters:\n    safety: {max_linear_velocity: fast}\n');
    expect(() => applyParamsFile(defaultConfig(), f, 'n')).toThrow(
      new RegExp(`${f}.*'safety.max_linear_velocity' expects a non-negative number, got "fast"`),
    );
    const g = file('c.yaml', '/**:\n  ros__parameters:\n    safety: {workspace: {x: [1, 0]}}\n');
    expect(() => applyParamsFile(defaultConfig(), g, 'n')).toThrow(/safety.workspace.x' expects \[min, max\] with min < max/);
  });

  it('coerces -p strings like rcl and checks cross-field rules', () => {
    const cfg = defaultConfig();
    setParam(cfg, 'api.port', '9000', '-p');
    setParam(cfg, 'topics.use_compressed', 'true', '-p');
    setParam(cfg, 'safety.workspace.z', '[0.0, 0.5]', '-p');
    expect(cfg.api.port).toBe(9000);
    expect(cfg.topics.useCompressed).toBe(true);
    expect(cfg.safety.workspace).toEqual({ x: [-Infinity, Infinity], y: [-Infinity, Infinity], z: [0, 0.5] });
    expect(() => setParam(cfg, 'control_mode', 'fast', '-p')).toThrow(/rate or lockstep/);
    cfg.twistHz = 2;
    expect(() => validateConfig(cfg, 'x.yaml')).toThrow(/x.yaml: rates.twist_hz must be 10..30/);
  });

  it('rejects an api.max_message_bytes of 0 (ws would read it as no limit) or an absurd one, naming the field and file', () => {
    for (const v of ['0', '268435457', '1.5']) {
      const f = file(`mmb-${v}.yaml`, `/**:\n  ros__parameters:\n    api: {max_message_bytes: ${v}}\n`);
      expect(() => applyParamsFile(defaultConfig(), f, 'n')).toThrow(
        new RegExp(`${f} \\(/\\*\\*.ros__parameters\\): parameter 'api.max_message_bytes' expects an integer from 1 to 268435456`),
      );
    }
    expect(() => setParam(defaultConfig(), 'api.max_message_bytes', '0', '--ros-args -p api.max_message_bytes')).toThrow(
      /--ros-args -p api.max_message_bytes: parameter 'api.max_message_bytes' expects an integer from 1/,
    );
    const cfg = defaultConfig();
    cfg.api.maxMessageBytes = 0;
    expect(() => validateConfig(cfg, 'arm.yaml')).toThrow(
      /arm.yaml: api.max_message_bytes must be an integer from 1 to 268435456 \(256 MiB\), got 0/,
    );
    cfg.api.maxMessageBytes = 1;
    expect(validateConfig(cfg).api.maxMessageBytes).toBe(1);
  });

  it('keeps string parameters as written: a token 007 stays "007" from -p and from a params file', () => {
    try {
      setProcessRosArgs(
        stripRosArgs(['--ros-args', '-p', 'api.token:=007', '-p', 'twist_frame:=true', '-p', 'api.port:=9000', '-p', 'api.host:="::1"'])
          .ros,
      );
      const cfg = buildServiceConfig({}, 'selfflow_planner');
      expect(cfg.api.token).toBe('007');
      expect(cfg.twistFrame).toBe('true');
      expect(cfg.api.port).toBe(9000);
      expect(cfg.api.host).toBe('::1'); // a YAML-quoted string loses its quotes, as in rcl
    } finally {
      setProcessRosArgs(stripRosArgs([]).ros);
    }
    const f = file(
      'token.yaml',
      '/**:\n  ros__parameters:\n    api: {token: 007, max_message_bytes: 0x100}\n    twist_frame: 1e3\n    topics.image: "010"\n',
    );
    const cfg = defaultConfig();
    applyParamsFile(cfg, f, 'n');
    expect(cfg.api.token).toBe('007');
    expect(cfg.twistFrame).toBe('1e3');
    expect(cfg.topics.image).toBe('010');
    expect(cfg.api.maxMessageBytes).toBe(256);
  });

  it('applies topic remaps to configured names', () => {
    const cfg = defaultConfig();
    applyRemaps(cfg, [
      { from: 'image_raw', to: '/camera/color/image_raw' },
      { from: '/joint_states', to: 'arm/joint_states' },
    ]);
    expect(cfg.topics.image).toBe('/camera/color/image_raw');
    expect(cfg.topics.jointStates).toBe('arm/joint_states');
    expect(cfg.topics.compressedImage).toBe('image_raw/compressed');
  });

  it('derives the plan deadline from the preset unless one is set, so a plan inside budget + grace never trips it', () => {
    const cfg = defaultConfig();
    expect(cfg.safety.planDeadlineMs).toBe(0);
    expect(cfg.safety.workspace).toBeUndefined();
    for (const name of ['wm-cem-fast', 'wm-cem-quality', 'wm-mppi']) {
      const p = loadPlannerPreset(name);
      const d = resolvePlanDeadline(cfg, p);
      // Fresh plans can be budget + grace apart (a plan that gives up), plus one action period of frame wait.
      expect(d).toBeGreaterThanOrEqual(p.budgetMs + p.graceMs + 1000 / cfg.actionHz);
      expect(d).toBeLessThan(p.budgetMs + p.graceMs + 1000 / cfg.actionHz + 1);
    }
    expect(resolvePlanDeadline(cfg, loadPlannerPreset('wm-cem-fast'))).toBe(3334);
    expect(resolvePlanDeadline(cfg)).toBe(UNBUDGETED_PLAN_DEADLINE_MS);
    setParam(cfg, 'safety.plan_deadline_ms', 2500, '-p');
    expect(resolvePlanDeadline(cfg, loadPlannerPreset('wm-cem-fast'))).toBe(2500);
  });
});
