import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { setProcessRosArgs, stripRosArgs, type RosArgs } from '../robot/ros-args.js';
import { COMMANDS, type CommandEntry } from './registry.js';
import { UsageError, type Command, type ParsedOptions } from './command.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'selfflow-wm — Self-Flow world-model planning for robots',
    '',
    'Usage: selfflow-wm <command> [flags]   (selfflow-wm <command> --help for its flags)',
    '',
    'Commands:',
    ...lines,
    '',
    'Environment: SELFFLOW_BACKEND picks the tensor backend when --backend is not given.',
  ].join('\n');
}

export function commandHelp(cmd: Command): string {
  const flags = Object.entries(cmd.options).map(([name, o]) => {
    const head = `--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
    return `  ${head.padEnd(28)} ${o.description}${def}`;
  });
  return [
    `Usage: selfflow-wm ${cmd.name}${cmd.positionals ? ` ${cmd.positionals}` : ''} [flags]`,
    '',
    cmd.summary,
    '',
    'Flags:',
    ...flags,
    `  ${'--help'.padEnd(28)} show this help`,
    ...(cmd.details ? ['', cmd.details] : []),
  ].join('\n');
}

/** Longest command name that the leading words of argv spell. */
function findCommand(argv: string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: { entry: CommandEntry; rest: string[] } | undefined;
  for (const entry of COMMANDS) {
    const words = entry.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.entry.name.split(' ').length)) {
      best = { entry, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function main(rawArgv: string[]): Promise<number> {
  // launch_ros appends `--ros-args ... [--]` after a node's own arguments; the strict flag parser
  // below would reject it, so it is taken out (and kept for the command) first.
  let argv: string[];
  let ros: RosArgs;
  try {
    ({ argv, ros } = stripRosArgs(rawArgv));
  } catch (e) {
    console.error(`selfflow-wm: ${(e as Error).message}`);
    return 2;
  }
  setProcessRosArgs(ros);
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(topHelp());
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    console.log(version());
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length) {
      console.error(`selfflow-wm ${argv[0]}: expected a subcommand: ${group.map((c) => c.name).join(', ')}`);
    } else {
      console.error(`selfflow-wm: unknown command '${argv[0]}'. Run selfflow-wm --help for the list.`);
    }
    return 2;
  }
  const cmd = await found.entry.load();
  if (ros.present && !cmd.rosNode) {
    console.error(`selfflow-wm ${cmd.name}: --ros-args is only accepted by commands that run as a ROS 2 node (serve, serve sim-robot)`);
    return 2;
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    console.log(commandHelp(cmd));
    return 0;
  }
  try {
    const { values, positionals } = parseArgs({
      args: found.rest,
      options: Object.fromEntries(
        Object.entries(cmd.options).map(([k, o]) => [
          k,
          // util.parseArgs rejects keys that are present but undefined.
          JSON.parse(JSON.stringify({ type: o.type, multiple: o.multiple, short: o.short, default: o.default })),
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
    const code = await cmd.run(values as ParsedOptions, positionals);
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`selfflow-wm ${cmd.name}: ${(e as Error).message}`);
      return 2;
    }
    if ((e as { userFacing?: boolean }).userFacing) {
      console.error(`selfflow-wm ${cmd.name}: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}
