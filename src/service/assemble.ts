/**
 * Builds the planning service from its settings: the robot link (the in-process simulator, a
 * foxglove_bridge, a ROS 2 node or an MCAP replay, recorded on request), the planner (a scripted
 * simulator policy, or the world model in a worker thread or on the main thread), then
 * startService over both; with the simulator and a world model, each episode's goal images too.
 *
 * Startup takes seconds (a world model loads), so every step first checks `signal`: a signal or a
 * fatal error stops it between steps, and what is open so far (link, closers) stays reachable for
 * the caller to close.
 */
import type { Planner } from '../core/types.js';
import type { ScriptedPolicyName } from '../planner/policy-name.js';
import type { RobotLink } from '../robot/link.js';
import type { SimRobotOptions } from '../robot/sim-robot.js';
import { UserError } from '../core/errors.js';
import type { ServiceConfig } from './config.js';
import type { RunningService } from './service.js';

/** The robot to serve, with the settings of its kind. */
export type RobotSpec =
  | { kind: 'sim'; task: string; imageHeight: number; imageWidth: number }
  | { kind: 'mcap'; file: string; mode: 'lockstep' | 'timed'; speed: number }
  | { kind: 'ros2' }
  | { kind: 'foxglove'; url: string };

/** What serve plans with: a scripted simulator policy, or a world-model preset and its run. */
export type ServePolicy = { kind: 'scripted'; policy: ScriptedPolicyName } | { kind: 'world-model'; preset: string; checkpoint: string };

export interface ServeSetup {
  robot: RobotSpec;
  policy: ServePolicy;
  /** The policy as given on the command line, for messages. */
  policyName: string;
  nodeName: string;
  /** The simulator's first episode seed, and the planner seed. */
  seed: number;
  /** Record everything the service saw and sent to this MCAP file. */
  record?: string;
  /** World-model presets: plan in a worker thread (so the service's timers never wait for a plan) or on the main thread. */
  plannerThread: 'worker' | 'main';
  backend?: string;
  /** World-model presets: threads that score one plan's candidates (src/planner/parallel-scorer.ts); default 1. */
  planWorkers?: number;
}

export interface AssemblyHooks {
  log: (line: string) => void;
  /** Aborted by a signal or a fatal error: startup stops at its next step. */
  signal: AbortSignal;
  /** The simulator finished an episode. */
  onEpisodeEnd?: NonNullable<SimRobotOptions['onEpisodeEnd']>;
  /** The service runs: called at once, before any message can reach it. */
  started?(service: RunningService): void;
}

export class ServiceAssembly {
  /** The robot link once open (the recording wrapper when recording). */
  link: RobotLink | undefined;
  service: RunningService | undefined;
  /** The size of the world model's imagined frames (for the API's imagined stream). */
  imaginedShape: { height: number; width: number } | undefined;
  /** Closes what the simulator and the planner hold, in the order they were opened. */
  readonly closers: (() => void | Promise<void>)[] = [];
  private planner: Planner | undefined;
  private plannerTiming: { budgetMs: number; graceMs: number } | undefined;
  private resetPlanner: ((seed: number) => void) | undefined;
  private onEpisode: ((seed: number) => void) | undefined;

  constructor(
    private readonly config: ServiceConfig,
    private readonly setup: ServeSetup,
    private readonly hooks: AssemblyHooks,
  ) {}

  /** Link, planner, then the service; the robot can be commanded once this resolves. */
  async start(): Promise<RunningService> {
    const { startService } = await import('./service.js');
    this.go();
    await this.openLink();
    this.go();
    if (this.setup.record) {
      const { McapRecorder, RecordingLink } = await import('../robot/mcap.js');
      this.link = new RecordingLink(this.link!, new McapRecorder(this.setup.record));
    }
    if (this.setup.policy.kind === 'world-model') await this.loadWorldModel(this.setup.policy);
    const goalObservations =
      this.setup.robot.kind === 'sim' && this.setup.policy.kind === 'world-model'
        ? (await import('../sim/goals.js')).goalObservations
        : undefined;
    this.go();
    if (!this.planner) throw new UserError(`--policy ${this.setup.policyName} reads the simulator's state, so it needs --robot sim`);

    // From here on the robot can be commanded.
    const s = (this.service = startService(this.config, this.planner, this.link!, {
      log: this.hooks.log,
      plannerTiming: this.plannerTiming,
    }));
    this.hooks.started?.(s);
    if (goalObservations && this.setup.robot.kind === 'sim') {
      // The simulator knows its task: its goal images come from the scripted expert's run of the same seed.
      const { task, imageHeight, imageWidth } = this.setup.robot;
      const seed = this.setup.seed;
      // A new episode starts the planner afresh (context frames and warm start are the old scene's).
      this.onEpisode = (ep) => {
        if (ep !== seed) this.resetPlanner?.(ep);
        void goalObservations(task, ep, imageHeight, imageWidth).then(
          (images) => s.setGoal({ images }),
          (e: Error) => this.hooks.log(`no goal images for seed ${ep}: ${e.message}`),
        );
      };
      this.onEpisode(seed);
    }
    if (this.setup.policy.kind === 'world-model' && this.setup.robot.kind !== 'sim') {
      this.hooks.log(
        `planning starts with a goal: publish sensor_msgs/Image on ${this.config.topics.goalImage} or send setGoal over the WebSocket API`,
      );
    }
    return s;
  }

  /** The service's shutdown (zero command out, link closed), or the link alone when the service never started. */
  async stop(): Promise<void> {
    if (this.service) await this.service.shutdown();
    else await this.link?.close();
  }

  /** Stops startup between steps once a signal or fatal error has asked for it. */
  private go(): void {
    if (this.hooks.signal.aborted) throw this.hooks.signal.reason;
  }

  private async openLink(): Promise<void> {
    const { robot, nodeName } = this.setup;
    const log = this.hooks.log;
    if (robot.kind === 'sim') await this.openSim(robot);
    else if (robot.kind === 'mcap') {
      const { McapReplayLink } = await import('../robot/mcap.js');
      this.link = new McapReplayLink(robot.file, { mode: robot.mode, speed: robot.speed });
    } else if (robot.kind === 'ros2') {
      const { RclnodejsLink } = await import('../robot/rclnodejs-link.js');
      this.link = await RclnodejsLink.create(nodeName, this.config.namespace);
    } else {
      const { FoxgloveLink } = await import('../robot/foxglove-link.js');
      this.link = new FoxgloveLink(robot.url, { log });
    }
  }

  /** The in-process simulator as the robot; a scripted policy plans from its state. */
  private async openSim(sim: Extract<RobotSpec, { kind: 'sim' }>): Promise<void> {
    const seed = this.setup.seed;
    const { SimEnv } = await import('../sim/env.js');
    const { SimRobot, SimLink } = await import('../robot/sim-robot.js');
    const env = await SimEnv.create({ task: sim.task, seed, imageHeight: sim.imageHeight, imageWidth: sim.imageWidth });
    this.closers.push(() => env.close());
    this.go();
    const policy = this.setup.policy;
    const sm =
      policy.kind === 'scripted' ? (await import('../sim/expert.js')).makeScriptedPolicy(policy.policy, sim.task, seed) : undefined;
    const robot = new SimRobot(env, seed, {
      namespace: this.config.namespace,
      topics: this.config.topics,
      autoReset: true,
      onReset: (e, s) => {
        sm?.reset(e);
        this.onEpisode?.(s);
      },
      onEpisodeEnd: this.hooks.onEpisodeEnd,
    });
    this.link = new SimLink(robot);
    if (sm) this.planner = (await import('./scripted-planner.js')).scriptedPlanner(robot, sm);
  }

  private async loadWorldModel(policy: Extract<ServePolicy, { kind: 'world-model' }>): Promise<void> {
    const { policyName, seed, backend, plannerThread, planWorkers } = this.setup;
    const log = this.hooks.log;
    const imagine = this.config.api.enabled;
    const { worldModelWorkerScript, startWorkerPlanner } = await import('./planner-worker.js');
    const script = plannerThread === 'worker' ? worldModelWorkerScript() : undefined;
    this.go();
    if (script) {
      log(`loading ${policyName} with ${policy.checkpoint} in a worker thread`);
      // A plan blocks its thread for seconds; in a worker the safety timers keep running.
      const wp = await startWorkerPlanner({
        script,
        workerData: { preset: policy.preset, checkpoint: policy.checkpoint, backend, seed, imagine, planWorkers },
        log,
        signal: this.hooks.signal,
      });
      this.closers.push(() => wp.close());
      this.go();
      const i = wp.info;
      if (i.imageHeight && i.imageWidth) this.imaginedShape = { height: i.imageHeight, width: i.imageWidth };
      this.plannerTiming = { budgetMs: i.budgetMs, graceMs: i.graceMs };
      this.planner = wp.planner;
      this.resetPlanner = (s) => wp.reset(s);
      log(
        `planning with ${i.name} (${i.kind}, ${i.candidates} candidates, budget ${i.budgetMs} ms) in a worker thread, scoring on ${i.planWorkers ?? 1} thread(s)`,
      );
      return;
    }
    if (plannerThread === 'worker')
      log(
        'no compiled planner worker (running from sources without `npm run build`): planning on the main thread, which stalls the twist republish and e-stop handling during each plan',
      );
    let mod: typeof import('../planner/world-model-planner.js');
    try {
      mod = await import('../planner/world-model-planner.js');
    } catch (e) {
      throw new UserError(
        `--policy ${policyName}: the world-model planner (src/planner/world-model-planner.ts) cannot be loaded: ${(e as Error).message}`,
      );
    }
    const planning = await mod.loadWorldModelPlanning(policy.preset, policy.checkpoint, { backend, seed, imagine, planWorkers, log });
    this.closers.push(() => planning.dispose());
    this.go();
    this.imaginedShape = { height: planning.cfg.imageHeight, width: planning.cfg.imageWidth };
    this.plannerTiming = { budgetMs: planning.preset.budgetMs, graceMs: planning.preset.graceMs };
    this.planner = planning.planner();
    this.resetPlanner = (s) => planning.reset(s);
    log(
      `planning with ${planning.preset.name} (${planning.preset.optimizer.kind}, ${planning.preset.optimizer.candidates} candidates, budget ${planning.preset.budgetMs} ms) on the main thread, scoring on ${planning.planWorkers} thread(s)`,
    );
  }
}
