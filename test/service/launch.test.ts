/**
 * The launch files (no ROS 2 here): they parse, declare the same arguments, use only arguments
 * they declare, and hand `selfflow-wm serve` only flags it accepts, including the --ros-args
 * launch_ros appends.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { serveCommand, buildServiceConfig } from '../../src/cli/serve.js';
import { processRosArgs, setProcessRosArgs, stripRosArgs, type RosArgs } from '../../src/robot/ros-args.js';
import { applyParamsFile, defaultConfig, PARAM_NAMES, validateConfig } from '../../src/service/config.js';
import type { ParsedOptions } from '../../src/cli/command.js';

const launchDir = new URL('../../launch/', import.meta.url);
const read = (f: string) => readFileSync(new URL(f, launchDir), 'utf8');
const paramsPath = new URL('params.yaml', launchDir).pathname;
const ARGS = ['checkpoint', 'policy', 'namespace', 'params_file', 'robot', 'executable'];

/** Flags of a `serve` argument list ($(var x) substitutions appear as VAR_x). */
function serveFlags(args: string[]): string[] {
  expect(args[0]).toBe('serve');
  return args.filter((a) => a.startsWith('--')).map((a) => a.slice(2));
}

/**
 * Runs the CLI's real entry (main: --ros-args stripping, strict flag parsing, command dispatch) on
 * exactly what launch_ros executes, with serve's action replaced so no robot is needed.
 */
async function checkAgainstCli(args: string[]): Promise<void> {
  const known = Object.keys(serveCommand.options);
  for (const f of serveFlags(args)) expect(known, `flag --${f}`).toContain(f);
  // What launch_ros runs: the node's arguments, then its --ros-args (node name, namespace, params file).
  const argv = [...args, '--ros-args', '-r', '__node:=selfflow_planner', '-r', '__ns:=/arm', '--params-file', paramsPath];
  let seen: { opts: ParsedOptions; ros: RosArgs } | undefined;
  const run = vi.spyOn(serveCommand, 'run').mockImplementation(async (opts) => void (seen = { opts, ros: processRosArgs() }));
  const err = vi.spyOn(console, 'error').mockImplementation(() => {});
  try {
    const code = await main(argv);
    expect(err.mock.calls.flat().join('\n')).toBe('');
    expect(code).toBe(0);
  } finally {
    run.mockRestore();
    err.mockRestore();
  }
  expect(seen!.opts.robot).toBe('VAR_robot');
  expect(seen!.ros).toMatchObject({ present: true, nodeName: 'selfflow_planner', namespace: '/arm', paramsFiles: [paramsPath] });
  const cfg = buildServiceConfig(seen!.opts, seen!.ros.nodeName!);
  expect(cfg.namespace).toBe('/arm');
  expect(cfg.safety.workspace).toBeDefined(); // from params.yaml, so the params file really was read
}

afterEach(() => setProcessRosArgs(stripRosArgs([]).ros));

describe('launch files', () => {
  it('XML: declares the arguments, uses only those, passes accepted flags', async () => {
    const xml = read('selfflow_planner.launch.xml');
    const declared = [...xml.matchAll(/<arg name="(\w+)"/g)].map((m) => m[1]);
    expect(declared).toEqual(ARGS);
    for (const m of xml.matchAll(/\$\(var (\w+)\)/g)) expect(declared).toContain(m[1]);
    const args = /args="([^"]+)"/
      .exec(xml)![1]!
      .replace(/\$\(var (\w+)\)/g, 'VAR_$1')
      .split(/\s+/);
    await checkAgainstCli(args);
    expect(xml).toMatch(/<param from="\$\(var params_file\)"\/>/);
    // Balanced tags: every opened element is closed.
    const opens = [...xml.matchAll(/<(launch|node)[\s>]/g)].length;
    const closes = [...xml.matchAll(/<\/(launch|node)>/g)].length;
    expect(opens).toBe(closes);
  });

  it('YAML: parses, declares the arguments, passes accepted flags', async () => {
    const doc = parseYaml(read('selfflow_planner.launch.yaml')) as {
      launch: Record<string, { name?: string; args?: string; param?: { from: string }[] }>[];
    };
    const declared = doc.launch.filter((e) => e.arg).map((e) => e.arg!.name);
    expect(declared).toEqual(ARGS);
    const node = doc.launch.find((e) => e.node)!.node!;
    await checkAgainstCli(node.args!.replace(/\$\(var (\w+)\)/g, 'VAR_$1').split(/\s+/));
    expect(node.param).toEqual([{ from: '$(var params_file)' }]);
  });

  it('Python: declares the arguments, passes accepted flags (and compiles when python3 is present)', async () => {
    const py = read('selfflow_planner.launch.py');
    const declared = [...py.matchAll(/DeclareLaunchArgument\('(\w+)'/g)].map((m) => m[1]);
    expect(declared).toEqual(ARGS);
    for (const m of py.matchAll(/LaunchConfiguration\('(\w+)'\)/g)) expect(declared).toContain(m[1]);
    const list = /arguments=\[([^\]]+)\]/.exec(py)![1]!;
    const args = [...list.matchAll(/'([^']+)'|LaunchConfiguration\('(\w+)'\)/g)].map((m) => m[1] ?? `VAR_${m[2]}`);
    await checkAgainstCli(args);
    let python = true;
    try {
      execFileSync('python3', ['--version']);
    } catch {
      python = false;
    }
    if (python)
      execFileSync('python3', [
        '-c',
        'import ast,sys; ast.parse(open(sys.argv[1]).read())',
        new URL('selfflow_planner.launch.py', launchDir).pathname,
      ]);
  });

  it('params.yaml sets every parameter the service knows and validates', () => {
    const cfg = defaultConfig();
    applyParamsFile(cfg, paramsPath, 'selfflow_planner', '/arm');
    expect(validateConfig(cfg)).toBeDefined();
    expect(cfg.safety.workspace).toEqual({ x: [0.2, 0.92], y: [-0.42, 0.42], z: [0.02, 0.42] });
    const text = read('params.yaml');
    for (const name of PARAM_NAMES) {
      if (name === 'namespace') continue; // set by the launch file, not the params file
      const leaf = name.split('.').at(-1)!;
      expect(text, name).toMatch(new RegExp(`^\\s*${leaf}:`, 'm'));
    }
  });
});
