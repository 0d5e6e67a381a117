/**
 * `selfflow-wm serve`: the planning service between a robot and a planner, and
 * `selfflow-wm serve sim-robot`: the simulator as a robot behind a Foxglove WebSocket server.
 */
import { PLAN_WORKERS_OPTION, planWorkers } from './plan-workers.js';
import { randomBytes } from 'node:crypto';
import { DEFAULT_PRESET, resolvePolicy } from '../planner/policy-name.js';
import { processRosArgs } from '../robot/ros-args.js';
import { ServiceAssembly, type RobotSpec, type ServeSetup } from '../service/assemble.js';
import { LatencySummary } from '../service/bookkeeping.js';
import type { RunningService } from '../service/service.js';
import {
  applyParamsFile,
  applyRemaps,
  defaultConfig,
  isStringParam,
  setParam,
  validateConfig,
  type ServiceConfig,
} from '../service/config.js';
import { errorMessage } from '../core/errors.js';
import { SHIPPED_MODEL, shippedModel } from '../util/package-root.js';
import { BACKEND_OPTION, int, num, str, UsageError, type Command, type ParsedOptions } from './command.js';

function imageSize(v: string | undefined): { h: number; w: number } | undefined {
  if (!v) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m) throw new UsageError(`--image-size expects HxW, e.g. 128x160, got '${v}'`);
  return { h: Number(m[1]), w: Number(m[2]) };
}

/** --robot and the flags of its kind: --task, --image-size for sim; --replay-mode, --speed for mcap. */
function robotFromFlags(opts: ParsedOptions): RobotSpec {
  const spec = str(opts, 'robot') ?? 'sim';
  if (spec === 'sim') {
    const size = imageSize(str(opts, 'image-size'))!;
    return { kind: 'sim', task: str(opts, 'task') ?? 'pick-can', imageHeight: size.h, imageWidth: size.w };
  }
  if (spec.startsWith('mcap:')) {
    const mode = str(opts, 'replay-mode');
    if (mode !== 'lockstep' && mode !== 'timed') throw new UsageError(`--replay-mode expects lockstep or timed, got '${mode}'`);
    return { kind: 'mcap', file: spec.slice('mcap:'.length), mode, speed: num(opts, 'speed', 1) };
  }
  if (spec === 'ros2') return { kind: 'ros2' };
  if (spec.startsWith('foxglove:')) return { kind: 'foxglove', url: spec.slice('foxglove:'.length) };
  throw new UsageError(`--robot expects sim, foxglove:ws://HOST:PORT, ros2 or mcap:FILE, got '${spec}'`);
}

const log = (line: string) => console.error(`[selfflow-wm serve ${new Date().toISOString()}] ${line}`);

/**
 * uncaughtException / unhandledRejection while serving: the zero command goes out at once (the
 * synchronous start of shutdown), then `finish` runs the normal exit path; the process exits 1.
 */
export function zeroOnFatal(
  svc: Pick<RunningService, 'shutdown'>,
  finish: (why: string) => void,
  logLine: (line: string) => void = log,
): (e: unknown) => void {
  let fatal = false;
  return (e: unknown) => {
    logLine(`fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    if (fatal) return;
    fatal = true;
    void svc.shutdown().catch(() => {});
    finish(`fatal error: ${e instanceof Error ? e.message : String(e)}`);
  };
}

/** Params file, --ros-args and flags, in that order of precedence (later wins). */
export function buildServiceConfig(opts: Record<string, unknown>, nodeName: string): ServiceConfig {
  const ros = processRosArgs();
  const cfg = defaultConfig();
  const ns = ros.namespace ?? (opts.namespace as string | undefined) ?? '';
  const files = [...(opts.params ? [opts.params as string] : []), ...ros.paramsFiles];
  for (const f of files) applyParamsFile(cfg, f, nodeName, ns);
  for (const p of ros.params) {
    if (p.node && p.node !== nodeName) continue;
    // YAML reads `api.token:=007` as the number 7; a string parameter takes the text as written.
    const value = isStringParam(p.name) && (typeof p.value === 'number' || typeof p.value === 'boolean') ? p.text : p.value;
    setParam(cfg, p.name, value, `--ros-args -p ${p.name}`);
  }
  applyRemaps(
    cfg,
    ros.remaps.filter((r) => !r.node || r.node === nodeName),
  );
  cfg.namespace = ros.namespace ?? (opts.namespace as string | undefined) ?? cfg.namespace;
  if (opts['control-mode'] !== undefined) setParam(cfg, 'control_mode', opts['control-mode'], '--control-mode');
  if (opts['api-host'] !== undefined) setParam(cfg, 'api.host', opts['api-host'], '--api-host');
  if (opts['api-port'] !== undefined) setParam(cfg, 'api.port', opts['api-port'], '--api-port');
  if (opts['no-api'] === true) cfg.api.enabled = false;
  const token = (opts['api-token'] as string | undefined) ?? process.env.SELFFLOW_API_TOKEN;
  if (token) cfg.api.token = token;
  return validateConfig(cfg, files.length ? files.join(', ') : 'serve');
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the planning service: robot link in, planner, safety layer, commands out, WebSocket API',
  rosNode: true,
  options: {
    robot: {
      type: 'string',
      arg: 'LINK',
      description: 'sim | foxglove:ws://HOST:PORT | ros2 | mcap:FILE.mcap (replay a recording as the robot)',
      default: 'sim',
    },
    policy: {
      type: 'string',
      arg: 'P',
      description:
        'planner preset (wm-cem-read, wm-cem-fast, wm-cem-quality, wm-mppi, or a preset file) or expert|random (scripted, --robot sim only)',
      default: DEFAULT_PRESET,
    },
    checkpoint: {
      type: 'string',
      arg: 'RUN',
      description: `training run directory for world-model presets (default: the shipped ${SHIPPED_MODEL})`,
    },
    params: {
      type: 'string',
      arg: 'FILE.yaml',
      description: 'ROS 2 params file (NODE: ros__parameters: ...); --ros-args --params-file works too',
    },
    'node-name': {
      type: 'string',
      arg: 'NAME',
      description: 'node name (params file section; --ros-args -r __node:= overrides)',
      default: 'selfflow_planner',
    },
    namespace: { type: 'string', arg: 'NS', description: 'topic namespace (--ros-args -r __ns:= overrides)' },
    record: { type: 'string', arg: 'FILE.mcap', description: 'record everything the service saw and sent (written atomically on exit)' },
    'control-mode': {
      type: 'string',
      arg: 'M',
      description: 'rate (one action per 1/action_hz) or lockstep (one per camera frame); default rate, lockstep for sim and mcap',
    },
    'replay-mode': {
      type: 'string',
      arg: 'M',
      description: 'mcap replay: lockstep (next frame after each action) or timed (recorded timing)',
      default: 'lockstep',
    },
    speed: { type: 'string', arg: 'X', description: 'timed replay speed factor', default: '1' },
    task: { type: 'string', arg: 'T', description: '--robot sim: simulator task (see sim tasks)', default: 'pick-can' },
    seed: {
      type: 'string',
      arg: 'S',
      description: '--robot sim: first episode seed (the next episode uses seed + 1); also the planner seed',
      default: '0',
    },
    'image-size': { type: 'string', arg: 'HxW', description: '--robot sim: camera size', default: '256x320' },
    episodes: { type: 'string', arg: 'N', description: '--robot sim: stop after N episodes (0 = run until interrupted)', default: '0' },
    'max-commands': {
      type: 'string',
      arg: 'N',
      description: 'stop after N commands (0 = no limit; the zero command on exit comes on top)',
      default: '0',
    },
    'api-host': { type: 'string', arg: 'HOST', description: 'WebSocket API bind address (default 127.0.0.1; params api.host)' },
    'api-port': { type: 'string', arg: 'PORT', description: 'WebSocket API port (default 8765; 0 = any free port)' },
    'api-token': {
      type: 'string',
      arg: 'TOKEN',
      description: 'API token (default $SELFFLOW_API_TOKEN, params api.token, else a random one printed at start)',
    },
    'no-api': { type: 'boolean', description: 'do not start the WebSocket API' },
    'planner-thread': {
      type: 'string',
      arg: 'T',
      description:
        'world-model presets: worker (plans in a worker thread, so twist republish, e-stop and signals do not wait for a plan) or main (debugging only: each plan stalls them)',
      default: 'worker',
    },
    backend: BACKEND_OPTION,
    'plan-workers': PLAN_WORKERS_OPTION,
  },
  details: [
    'ROS 2 launch files start this command; it accepts `--ros-args ... [--]` as launch_ros appends it',
    '(-r __node:=NAME, -r __ns:=/NS, -r FROM:=TO topic remaps, -p NAME:=VALUE, --params-file FILE).',
    'E-stop: selfflow/estop (true) and the API each latch their own e-stop, released only by the same source;',
    'releasing does not restart: start again with the API start or true on selfflow/run.',
    "Plan deadline (safety.plan_deadline_ms, 0 = auto): the preset's budget + grace + one action period.",
    '--robot sim runs the physics on this thread (50-250 ms a step on a small CPU): fine in lockstep;',
    'for rate mode run the simulator apart with `serve sim-robot` and --robot foxglove:ws://...',
    'SIGINT/SIGTERM, an uncaught exception or unhandled rejection send the zero command (safe action, zero twist) before exiting;',
    'so does a startup step that fails after the service started (the API port taken), exiting 1;',
    'a robot link or planner worker that does not close within about a second is dropped.',
  ].join('\n'),
  async run(opts) {
    const ros = processRosArgs();
    const nodeName = ros.nodeName ?? str(opts, 'node-name') ?? 'selfflow_planner';
    const policyName = str(opts, 'policy') ?? DEFAULT_PRESET;
    const policy = resolvePolicy(policyName);
    const robot = robotFromFlags(opts);
    const isSim = robot.kind === 'sim';
    const isMcap = robot.kind === 'mcap';
    if (policy.kind === 'scripted' && !isSim)
      throw new UsageError(
        `--policy ${policyName} reads the simulator's state, so it needs --robot sim (got --robot ${str(opts, 'robot')})`,
      );
    if (policy.kind === 'oracle')
      throw new UsageError(
        `--policy ${policyName} plans with the simulator as its model: use it with plan or eval; serve takes a world-model preset or expert|random`,
      );
    const controlFlag = str(opts, 'control-mode');
    const cfg = buildServiceConfig({ ...opts, 'control-mode': controlFlag ?? (isSim || isMcap ? 'lockstep' : undefined) }, nodeName);
    const seed = int(opts, 'seed', 0);
    const maxCommands = int(opts, 'max-commands', 0);
    const episodesWanted = int(opts, 'episodes', 0);
    const given = policy.kind === 'scripted' ? undefined : (policy.checkpoint ?? str(opts, 'checkpoint'));
    const checkpoint = policy.kind === 'scripted' ? undefined : (given ?? shippedModel());
    if (policy.kind !== 'scripted' && !given)
      console.log(`serve: planning with the shipped world model ${SHIPPED_MODEL} (--checkpoint RUN for another)`);
    const thread = str(opts, 'planner-thread') ?? 'worker';
    if (thread !== 'worker' && thread !== 'main') throw new UsageError(`--planner-thread expects worker or main, got '${thread}'`);
    const record = str(opts, 'record');
    const setup: ServeSetup = {
      robot,
      policy: policy.kind === 'scripted' ? policy : { kind: 'world-model', preset: policy.preset, checkpoint: checkpoint! },
      policyName,
      nodeName,
      seed,
      record,
      plannerThread: thread,
      backend: str(opts, 'backend'),
      planWorkers: planWorkers(opts),
    };

    // Signals and fatal errors are handled from here on: a SIGINT/SIGTERM while a world model loads
    // (seconds) or a failure half-way through startup closes what is open so far, zero command first.
    let finish!: (why: string) => void;
    const finished = new Promise<string>((resolve) => (finish = resolve));
    const startup = new AbortController();
    /** Stops startup between steps once a signal or fatal error has asked for it. */
    const go = () => {
      if (startup.signal.aborted) throw startup.signal.reason;
    };
    let episodes = 0;
    let successes = 0;
    let commands = 0;
    const latency = new LatencySummary();
    const assembly = new ServiceAssembly(cfg, setup, {
      log,
      signal: startup.signal,
      onEpisodeEnd: (r, s) => {
        episodes++;
        if (r.success) successes++;
        log(
          `episode seed ${s}: ${r.success ? 'success' : 'failure'}, stage ${r.stagesDone}/${r.stageCount} in ${r.step} steps (${successes}/${episodes} so far)`,
        );
        if (episodesWanted > 0 && episodes >= episodesWanted) finish(`${episodes} episodes done`);
      },
      started: (s) => {
        s.latency$.subscribe((l) => latency.add(l));
        s.commands$.subscribe(() => {
          commands++;
          if (maxCommands > 0 && commands >= maxCommands) finish(`${commands} commands sent`);
        });
        s.status$.subscribe((st) => {
          if (st.link === 'closed') finish('robot link closed');
        });
      },
    });
    const onSignal = (sig: string) => (startup.abort(new Error(sig)), finish(sig));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let failed = false;
    const onFatal = zeroOnFatal(
      { shutdown: () => assembly.service?.shutdown() ?? Promise.resolve() },
      (why) => ((failed = true), startup.abort(new Error(why)), finish(why)),
    );
    process.on('uncaughtException', onFatal);
    process.on('unhandledRejection', onFatal);
    // A log pipe that went away (the launcher died) must not turn every log line into a fatal error.
    for (const stream of [process.stdout, process.stderr]) if (!stream.listenerCount('error')) stream.on('error', () => {});

    let api: Awaited<ReturnType<typeof import('../server/ws-api.js').startWsApi>> | undefined;
    const start = async (): Promise<void> => {
      const startWsApi = cfg.api.enabled ? (await import('../server/ws-api.js')).startWsApi : undefined;
      go();
      const s = await assembly.start();
      if (startWsApi) {
        if (!cfg.api.token) {
          cfg.api.token = randomBytes(16).toString('hex');
          log(`no API token configured; this run's token: ${cfg.api.token}`);
        }
        api = await startWsApi(s, cfg.api, { imaginedShape: assembly.imaginedShape, log });
        go();
        log(`WebSocket API on ${api.url} (subprotocols selfflow.v1.protobuf, selfflow.v1.msgpack)`);
      }
      log(
        `serving ${assembly.link!.name} in namespace '${cfg.namespace || '/'}' as node ${nodeName}, ${cfg.controlMode} control at ${cfg.actionHz} Hz, twist ${cfg.twistHz} Hz, plan deadline ${s.config.safety.planDeadlineMs} ms`,
      );
    };

    let startupError: unknown;
    const started = start().then(
      () => undefined,
      // Startup stopped on purpose (a signal, or a fatal error that has been reported) is not a startup failure.
      (e: unknown) => void (startup.signal.aborted ? undefined : (startupError = e)),
    );
    await Promise.race([started, finished]);
    // Stopped during startup: it ends at its next step; one stuck on a step a fatal error broke
    // (a server that never listens) gets a second, then what is open so far is closed.
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([started, new Promise((r) => (wait = setTimeout(r, 1000)))]);
    clearTimeout(wait);
    const why = startupError !== undefined ? `startup failed: ${errorMessage(startupError)}` : await finished;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const svc = assembly.service;
    log(`stopping (${why})${svc ? ': zero command out' : ''}`);
    // Everything gets closed even when one step fails (a recording that cannot be written must not
    // leave the link open); the first failure is reported after the summary.
    let closeError: unknown;
    const attempt = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        closeError ??= e;
        log(`while stopping: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    // The service's shutdown closes the link; a link the service never got is closed here.
    await attempt(() => assembly.stop());
    await attempt(() => api?.close());
    for (const c of assembly.closers) await attempt(c);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
    // Rethrown as caught (a UserError keeps its message and exit code).
    if (startupError !== undefined) throw startupError as Error;
    const st = svc?.status();
    console.log(
      `${commands} commands (${st?.zeroedCommands ?? 0} zeroed, the exit's zero command included), ${st?.plans ?? 0} plans (${st?.safePlans ?? 0} safe), ${st?.decodeErrors ?? 0} dropped messages` +
        latency.describe() +
        (episodes ? `; episodes ${successes}/${episodes} successful` : ''),
    );
    if (closeError) throw closeError as Error;
    if (record && svc) console.log(`recorded ${record}`);
    return failed ? 1 : 0;
  },
};

export const serveSimRobotCommand: Command = {
  name: 'serve sim-robot',
  summary: 'serve the MuJoCo simulator as a robot over the Foxglove WebSocket protocol (what foxglove_bridge offers)',
  rosNode: true,
  options: {
    task: { type: 'string', arg: 'T', description: 'simulator task (see sim tasks)', default: 'pick-can' },
    seed: { type: 'string', arg: 'S', description: 'first episode seed (the next uses seed + 1)', default: '0' },
    'image-size': { type: 'string', arg: 'HxW', description: 'camera size', default: '256x320' },
    host: { type: 'string', arg: 'HOST', description: 'bind address', default: '127.0.0.1' },
    port: { type: 'string', arg: 'PORT', description: 'port (0 = any free port)', default: '8766' },
    namespace: { type: 'string', arg: 'NS', description: 'topic namespace', default: '' },
    transport: {
      type: 'string',
      arg: 'T',
      description: 'foxglove (a Foxglove WebSocket server) or ros2 (a ROS 2 node via rclnodejs, needs ROS_DISTRO)',
      default: 'foxglove',
    },
  },
  details:
    'Then: selfflow-wm serve --robot foxglove:ws://127.0.0.1:8766 --policy ... (each selfflow/action steps physics by one control period);\nwith --transport ros2: selfflow-wm serve --robot ros2 --control-mode lockstep --policy ...',
  async run(opts) {
    const size = imageSize(str(opts, 'image-size'))!;
    const task = str(opts, 'task') ?? 'pick-can';
    const seed = int(opts, 'seed', 0);
    const { SimEnv } = await import('../sim/env.js');
    const { SimRobot } = await import('../robot/sim-robot.js');
    const { serveSimOverFoxglove } = await import('../robot/foxglove-sim-server.js');
    const ros = processRosArgs();
    const namespace = ros.namespace ?? str(opts, 'namespace') ?? '';
    const env = await SimEnv.create({ task, seed, imageHeight: size.h, imageWidth: size.w });
    const robot = new SimRobot(env, seed, {
      namespace,
      autoReset: true,
      onEpisodeEnd: (r, s) =>
        log(`episode seed ${s}: ${r.success ? 'success' : 'failure'}, stage ${r.stagesDone}/${r.stageCount} in ${r.step} steps`),
    });
    const transport = str(opts, 'transport') ?? 'foxglove';
    if (transport !== 'foxglove' && transport !== 'ros2') throw new UsageError(`--transport expects foxglove or ros2, got '${transport}'`);
    let server: { close(): Promise<void> };
    let where: string;
    if (transport === 'ros2') {
      const { RclnodejsLink } = await import('../robot/rclnodejs-link.js');
      const { serveSimOverLink } = await import('../robot/sim-robot.js');
      const nodeName = ros.nodeName ?? 'selfflow_sim_robot';
      server = serveSimOverLink(robot, await RclnodejsLink.create(nodeName, namespace));
      where = `ROS 2 node ${nodeName}`;
    } else {
      const fox = await serveSimOverFoxglove(robot, { host: str(opts, 'host'), port: int(opts, 'port', 8766), namespace, log });
      server = fox;
      where = fox.url;
    }
    console.log(
      `sim robot (${task}, seed ${seed}) on ${where}; topics: ${robot
        .offered()
        .map((o) => o.topic)
        .join(', ')}; actions on ${robot.topics.action}`,
    );
    const sig = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    log(`stopping (${sig})`);
    await server.close();
    env.close();
    return 0;
  },
};
