/**
 * `--ros-args ... [--]` sections the way launch_ros appends them to a node's command line
 * (`--ros-args -r __node:=NAME -r __ns:=/NS --params-file FILE`), stripped from argv and parsed,
 * so a launch file can start `selfflow-wm serve` like any ROS 2 node.
 */
import { parse as parseYaml } from 'yaml';
import { UserError } from '../core/errors.js';

export interface RosArgs {
  /** True when argv held at least one --ros-args section. */
  present: boolean;
  nodeName?: string;
  namespace?: string;
  /** Topic remaps `from:=to` (node-prefixed ones `node:from:=to` keep only what applies to every node or ours). */
  remaps: { from: string; to: string; node?: string }[];
  /** `-p name:=value`, values parsed as YAML like rcl does; `text` as written (string parameters keep it: `007` is not 7). */
  params: { name: string; value: unknown; text: string; node?: string }[];
  paramsFiles: string[];
  logLevel?: string;
  enclave?: string;
}

const NO_VALUE = new Set([
  '--disable-rosout-logs',
  '--enable-rosout-logs',
  '--disable-stdout-logs',
  '--enable-stdout-logs',
  '--disable-external-lib-logs',
  '--enable-external-lib-logs',
]);

/** `[node:]name:=value` */
function splitAssignment(arg: string, flag: string): { node?: string; name: string; value: string } {
  const i = arg.indexOf(':=');
  if (i <= 0) throw new UserError(`--ros-args: ${flag} expects NAME:=VALUE, got '${arg}'`);
  let name = arg.slice(0, i);
  const value = arg.slice(i + 2);
  let node: string | undefined;
  const colon = name.indexOf(':');
  if (colon > 0) {
    node = name.slice(0, colon);
    name = name.slice(colon + 1);
  }
  return { node, name, value };
}

export function stripRosArgs(argv: string[]): { argv: string[]; ros: RosArgs } {
  const out: string[] = [];
  const ros: RosArgs = { present: false, remaps: [], params: [], paramsFiles: [] };
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a !== '--ros-args') {
      out.push(a);
      i++;
      continue;
    }
    ros.present = true;
    i++;
    while (i < argv.length && argv[i] !== '--') {
      const flag = argv[i]!;
      // A later --ros-args just continues the ROS arguments.
      if (flag === '--ros-args') {
        i++;
        continue;
      }
      if (NO_VALUE.has(flag)) {
        i++;
        continue;
      }
      const value = argv[i + 1];
      if (value === undefined || value === '--') throw new UserError(`--ros-args: ${flag} needs a value`);
      i += 2;
      switch (flag) {
        case '-r':
        case '--remap': {
          const { node, name, value: to } = splitAssignment(value, flag);
          if (name === '__node' || name === '__name') ros.nodeName = to;
          else if (name === '__ns') ros.namespace = to;
          else ros.remaps.push({ from: name, to, node });
          break;
        }
        case '-p':
        case '--param': {
          const { node, name, value: v } = splitAssignment(value, flag);
          let parsed: unknown;
          try {
            parsed = parseYaml(v);
          } catch {
            parsed = v;
          }
          ros.params.push({ name, value: parsed ?? v, text: v, node });
          break;
        }
        case '--params-file':
          ros.paramsFiles.push(value);
          break;
        case '--log-level':
          ros.logLevel = value;
          break;
        case '-e':
        case '--enclave':
          ros.enclave = value;
          break;
        case '--log-config-file':
          break;
        default:
          throw new UserError(
            `--ros-args: unsupported ROS argument '${flag}' (supported: -r/--remap, -p/--param, --params-file, --log-level, -e/--enclave, --log-config-file and the --*-logs switches)`,
          );
      }
    }
    if (argv[i] === '--') i++;
  }
  return { argv: out, ros };
}

let processRos: RosArgs | undefined;

/** The CLI's main strips --ros-args from argv before parsing flags and hands the result here. */
export function setProcessRosArgs(ros: RosArgs): void {
  processRos = ros;
}

/** ROS arguments of this process as main() stripped them (none when main() has not run). */
export function processRosArgs(): RosArgs {
  return processRos ?? { present: false, remaps: [], params: [], paramsFiles: [] };
}
