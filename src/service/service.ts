/**
 * The planning service: robot link in, planner in the middle, safety gate, commands out.
 *
 *   link (camera, joint_states, ee_pose, goal_image, estop, run)
 *     -> Observation / Goal -> planner (latest-only) -> plans
 *     -> one RT-1 action per tick (rate mode) or per observation (lockstep mode)
 *     -> SafetyGate (clamp, or zero) -> selfflow/action, gripper, and the twist republished at twistHz
 *
 * Everything here runs on the main thread's event loop, so the planner must not block it: a
 * world-model planner runs in a worker thread (src/service/planner-worker.ts).
 */
import { BehaviorSubject, Subject, interval, filter, tap, throttleTime, type Observable, type Subscription } from 'rxjs';
import { executePlans } from '../planner/loop.js';
import type { Goal, Observation, Plan, Planner } from '../planner/types.js';
import { safeAction, type Rt1Action } from '../robot/action.js';
import type { LinkState, RawMessage, RobotLink } from '../robot/link.js';
import { resolveTopic } from '../robot/link.js';
import {
  actionToMultiArray,
  actionToTwist,
  compressedToObservation,
  gripperCommandFor,
  imageToObservation,
  jointPositions,
  zeroTwist,
  type BoolMsg,
  type CompressedImageMsg,
  type ImageMsg,
  type JointStateMsg,
  type PoseStampedMsg,
} from '../robot/messages.js';
import { rosCodec, type RosType } from '../robot/msgs.js';
import { errorMessage } from '../util/errors.js';
import { resolvePlanDeadline, type ServiceConfig } from './config.js';
import { SafetyGate, type EstopSource, type GateResult, type SafetyStatus } from './safety.js';

export interface Command {
  /** What went to the robot (after the gate). */
  action: Rt1Action;
  /** What the planner asked for. */
  requested: Rt1Action;
  zeroed?: string;
  clamped: string[];
  ms: number;
}

export interface LatencySample {
  /** Camera message arrival to command publication. */
  totalMs: number;
  /** The plan's own latency (reported by the planner). */
  planningMs: number;
  /**
   * Time the frame and its plan spent waiting on purpose: for the action-rate throttle, for a
   * busy planner (latest-only), and for the control tick that sends the plan's first action.
   */
  waitMs: number;
  /** What the service itself added: total minus planning minus waits (decode, hand-off, gate, encode). */
  serviceMs: number;
}

/** What a planner may attach to a plan for the latency bookkeeping (the worker planner does). */
export interface PlanTiming {
  /** How long the observation waited for the planner to become free before planning started. */
  queuedMs?: number;
}

export interface ServiceStatus {
  running: boolean;
  link: LinkState;
  safety: SafetyStatus;
  observations: number;
  plans: number;
  safePlans: number;
  commands: number;
  zeroedCommands: number;
  decodeErrors: number;
  lastError?: string;
  lastPlan?: { cost: number; latencyMs: number; safe: boolean; reason?: string; observationStamp: number };
  hasGoal: boolean;
  /** The plan deadline in force (safety.plan_deadline_ms, auto resolved). */
  planDeadlineMs: number;
}

export interface ServiceOptions {
  /** Monotonic clock in ms (tests pass a fake one). */
  clock?: () => number;
  /** Wall clock in ms, for header stamps (tests pass a fake one). */
  wallClock?: () => number;
  log?: (line: string) => void;
  /** The planner's time budget, for safety.plan_deadline_ms = 0 (auto). */
  plannerTiming?: { budgetMs: number; graceMs: number };
}

export interface RunningService {
  readonly config: ServiceConfig;
  readonly gate: SafetyGate;
  readonly plans$: Observable<Plan>;
  readonly commands$: Observable<Command>;
  readonly latency$: Observable<LatencySample>;
  readonly observations$: Observable<Observation>;
  readonly status$: Observable<ServiceStatus>;
  status(): ServiceStatus;
  setGoal(goal: Goal): void;
  /** Start planning and commands; refused (the reason returned) while any e-stop is latched. */
  start(): string | undefined;
  /** Stop planning, discard the current plan and send the zero command once. */
  stop(): void;
  /** Latch `source`'s e-stop, stop (the current plan discarded), zero command now. */
  estop(source?: EstopSource): void;
  /** Release `source`'s latch only; the service stays stopped until start(). */
  clearEstop(source?: EstopSource): void;
  /** Publish one twist now (what the twist timer does at twistHz); exposed for fake-clock tests. */
  publishTwist(): void;
  /** SIGINT/SIGTERM path: zero command out, timers stopped, link closed. */
  shutdown(): Promise<void>;
}

export function startService(configIn: ServiceConfig, planner: Planner, link: RobotLink, opts: ServiceOptions = {}): RunningService {
  const clock = opts.clock ?? (() => performance.now());
  const wallClock = opts.wallClock ?? (() => Date.now());
  const log = opts.log ?? (() => {});
  const codec = rosCodec();
  const config: ServiceConfig = { ...configIn, safety: { ...configIn.safety, planDeadlineMs: resolvePlanDeadline(configIn, opts.plannerTiming) } };
  const periodS = 1 / config.actionHz;
  // The twist holds an action for its period plus one twist period, so a control tick that fires
  // a little late (timer jitter) does not put a zero twist between two actions.
  const holdMs = periodS * 1000 + (config.twistHz > 0 ? 1000 / config.twistHz : 0);
  const gate = new SafetyGate(config.safety, periodS, clock, config.controlMode !== 'lockstep');
  const t = (name: string) => resolveTopic(config.namespace, name);
  const topics = {
    image: t(config.topics.useCompressed ? config.topics.compressedImage : config.topics.image),
    joints: t(config.topics.jointStates),
    pose: t(config.topics.eePose),
    goal: t(config.topics.goalImage),
    goalCompressed: t(config.topics.goalImageCompressed),
    estop: t(config.topics.estop),
    run: t(config.topics.run),
    action: t(config.topics.action),
    twist: t(config.topics.twist),
    gripper: t(config.topics.gripper),
    status: t(config.topics.status),
  };
  const imageType: RosType = config.topics.useCompressed ? 'sensor_msgs/msg/CompressedImage' : 'sensor_msgs/msg/Image';
  link.subscribe(topics.image, imageType);
  link.subscribe(topics.joints, 'sensor_msgs/msg/JointState');
  link.subscribe(topics.pose, 'geometry_msgs/msg/PoseStamped');
  link.subscribe(topics.goal, 'sensor_msgs/msg/Image');
  link.subscribe(topics.goalCompressed, 'sensor_msgs/msg/CompressedImage');
  link.subscribe(topics.estop, 'std_msgs/msg/Bool');
  link.subscribe(topics.run, 'std_msgs/msg/Bool');
  link.advertise(topics.action, 'std_msgs/msg/Float32MultiArray');
  link.advertise(topics.twist, 'geometry_msgs/msg/TwistStamped');
  link.advertise(topics.gripper, 'control_msgs/msg/GripperCommand');
  link.advertise(topics.status, 'std_msgs/msg/String');

  const running = new BehaviorSubject<boolean>(config.autoStart);
  const observations = new Subject<Observation>();
  const goals = new BehaviorSubject<Goal | undefined>(undefined);
  const plans = new Subject<Plan>();
  const commands = new Subject<Command>();
  const latency = new Subject<LatencySample>();
  const statusSubject = new Subject<ServiceStatus>();
  const counters = { observations: 0, plans: 0, safePlans: 0, commands: 0, zeroedCommands: 0, decodeErrors: 0 };
  let lastError: string | undefined;
  let lastPlan: Plan | undefined;
  let lastObservation: Observation | undefined;
  let linkState: LinkState = 'connecting';
  let proprio: Float32Array | undefined;
  let lastCommand: { action: Rt1Action; ms: number } | undefined;
  // Every frame gets its own stamp here (arrival time, strictly increasing): cameras that send
  // zero or repeated header stamps would otherwise look like one frame to the planner.
  let lastStamp = -Infinity;
  // Timing of recent frames by that stamp, for the latency sample of the command made from each.
  const frames = new Map<number, { receivedMs: number; decodedMs: number; plannerInMs?: number }>();
  let closed = false;
  const subs: Subscription[] = [];

  const publish = (topic: string, type: RosType, msg: unknown) => {
    try {
      link.publish(topic, codec.encode(type, msg));
    } catch (e) {
      lastError = `publish ${topic}: ${errorMessage(e)}`;
    }
  };

  const onMessage = (m: RawMessage) => {
    try {
      if (m.topic === topics.image) {
        const obs =
          imageType === 'sensor_msgs/msg/Image'
            ? imageToObservation(codec.decode<ImageMsg>(imageType, m.data, m.topic), m.topic)
            : compressedToObservation(codec.decode<CompressedImageMsg>(imageType, m.data, m.topic), m.topic);
        if (proprio) obs.proprio = proprio;
        const headerMs = obs.stamp;
        obs.stamp = lastStamp = Math.max(m.receivedMs, lastStamp + 1e-3);
        gate.onCamera(m.receivedMs, config.safety.maxHeaderAgeMs > 0 ? wallClock() - headerMs : undefined);
        counters.observations++;
        frames.set(obs.stamp, { receivedMs: m.receivedMs, decodedMs: clock() });
        if (frames.size > 64) frames.delete(frames.keys().next().value!);
        lastObservation = obs;
        observations.next(obs);
      } else if (m.topic === topics.joints) {
        proprio = jointPositions(codec.decode<JointStateMsg>('sensor_msgs/msg/JointState', m.data, m.topic), config.proprioJoints, m.topic);
      } else if (m.topic === topics.pose) {
        const p = codec.decode<PoseStampedMsg>('geometry_msgs/msg/PoseStamped', m.data, m.topic).pose.position;
        gate.onPose([p.x, p.y, p.z], m.receivedMs);
      } else if (m.topic === topics.goal) {
        setGoal({ images: [imageToObservation(codec.decode<ImageMsg>('sensor_msgs/msg/Image', m.data, m.topic), m.topic)] });
      } else if (m.topic === topics.goalCompressed) {
        setGoal({ images: [compressedToObservation(codec.decode<CompressedImageMsg>('sensor_msgs/msg/CompressedImage', m.data, m.topic), m.topic)] });
      } else if (m.topic === topics.estop) {
        // The topic has its own latch: its false releases only what its true latched.
        if (codec.decode<BoolMsg>('std_msgs/msg/Bool', m.data, m.topic).data) estop('topic');
        else clearEstop('topic');
      } else if (m.topic === topics.run) {
        if (codec.decode<BoolMsg>('std_msgs/msg/Bool', m.data, m.topic).data) {
          const refused = start();
          if (refused) (lastError = `${m.topic}: ${refused}`), log(lastError), emitStatus();
        } else stop();
      }
    } catch (e) {
      // A malformed message is counted and reported, never fatal.
      counters.decodeErrors++;
      lastError = errorMessage(e);
      log(`dropped a message: ${lastError}`);
    }
  };

  // When each plan reached the service (for the tick wait of its first action).
  const planArrivals = new WeakMap<Plan, number>();
  // Plans made from frames up to this stamp are never executed: stop, e-stop and link loss void the
  // plan in hand and any plan still being computed, so motion resumes only from a newer frame.
  let voidUpTo = -Infinity;
  // Rate mode: the plans the control tick may execute (an empty one holds it at the safe action).
  const executable = new Subject<Plan>();
  const discardPlans = (why: string) => {
    voidUpTo = lastStamp;
    if (config.controlMode === 'rate') executable.next({ actions: [], cost: 0, iterations: 0, candidatesEvaluated: 0, latencyMs: 0, observationStamp: lastStamp, safe: true, reason: why });
  };

  const sendCommand = (requested: Rt1Action, plan: Plan | undefined) => {
    const now = clock();
    const r: GateResult = gate.filter(requested, now);
    publish(topics.action, 'std_msgs/msg/Float32MultiArray', actionToMultiArray(r.action));
    const grip = gripperCommandFor(r.action, config.gripper);
    if (grip) publish(topics.gripper, 'control_msgs/msg/GripperCommand', grip);
    lastCommand = { action: r.action, ms: now };
    counters.commands++;
    if (r.zeroed) counters.zeroedCommands++;
    commands.next({ action: r.action, requested, zeroed: r.zeroed, clamped: r.clamped, ms: now });
    if (plan && !plan.safe) {
      const f = frames.get(plan.observationStamp);
      const planMs = planArrivals.get(plan);
      if (f && planMs !== undefined) {
        frames.delete(plan.observationStamp);
        const published = clock();
        const total = published - f.receivedMs;
        // A planner that never took the frame through observations$ (a test double) waited for nothing.
        const plannerIn = f.plannerInMs ?? f.decodedMs;
        const queued = (plan as Plan & PlanTiming).queuedMs ?? Math.max(0, planMs - plannerIn - plan.latencyMs);
        const wait = plannerIn - f.decodedMs + queued + (now - planMs);
        latency.next({ totalMs: total, planningMs: plan.latencyMs, waitMs: wait, serviceMs: Math.max(0, total - plan.latencyMs - wait) });
      }
    }
  };

  /** Zero command now (action topic and twist), whatever the plan says; reported on commands$ too. */
  const sendZero = (why: string) => {
    const now = clock();
    publish(topics.action, 'std_msgs/msg/Float32MultiArray', actionToMultiArray(safeAction()));
    if (config.twistHz > 0) publish(topics.twist, 'geometry_msgs/msg/TwistStamped', zeroTwist(wallClock(), config.twistFrame));
    lastCommand = { action: safeAction(), ms: now };
    counters.commands++;
    counters.zeroedCommands++;
    if (!closed) commands.next({ action: safeAction(), requested: safeAction(), zeroed: why, clamped: [], ms: now });
    log(`zero command: ${why}`);
  };

  const publishTwist = () => {
    const now = clock();
    const hold = lastCommand && now - lastCommand.ms <= holdMs ? lastCommand.action : undefined;
    // Each republish re-checks the gate on this thread's clock: a frame going stale between actions
    // zeroes the twist at the next republish.
    const msg = hold && !gate.blockReason(now) && running.value ? actionToTwist(hold, periodS, wallClock(), config.twistFrame) : zeroTwist(wallClock(), config.twistFrame);
    publish(topics.twist, 'geometry_msgs/msg/TwistStamped', msg);
  };

  const setGoal = (goal: Goal) => {
    goals.next(goal);
    emitStatus();
  };
  const start = (): string | undefined => {
    if (gate.estopActive) return `cannot start: e-stop latched (${gate.estopSources().join(', ')}); clear it first`;
    if (running.value) return undefined;
    running.next(true);
    if (config.controlMode === 'rate') {
      // A streaming camera: only frames taken after the start count (zero command until their plan).
      discardPlans('started: waiting for a plan from a new frame');
    } else if (lastObservation) {
      // Lockstep: the robot waits for a command on its newest frame (taken after the stop's zero command).
      observations.next(lastObservation);
    }
    emitStatus();
    return undefined;
  };
  const stop = () => {
    if (!running.value) return;
    running.next(false);
    discardPlans('stopped');
    sendZero('stopped');
    emitStatus();
  };
  const estop = (source: EstopSource) => {
    gate.estop(source);
    // Stopped as well: releasing every latch does not restart motion, an explicit start does.
    running.next(false);
    discardPlans(`e-stop (${source})`);
    sendZero(`e-stop (${source})`);
    emitStatus();
  };
  const clearEstop = (source: EstopSource) => {
    if (gate.clearEstop(source)) log(`e-stop released (${source})${gate.estopActive ? `; still latched: ${gate.estopSources().join(', ')}` : '; stopped until start'}`);
    emitStatus();
  };

  const status = (): ServiceStatus => ({
    running: running.value,
    link: linkState,
    safety: gate.status(),
    ...counters,
    lastError,
    lastPlan: lastPlan && { cost: lastPlan.cost, latencyMs: lastPlan.latencyMs, safe: lastPlan.safe, reason: lastPlan.reason, observationStamp: lastPlan.observationStamp },
    hasGoal: goals.value !== undefined,
    planDeadlineMs: config.safety.planDeadlineMs,
  });
  const emitStatus = () => {
    if (closed) return;
    const s = status();
    statusSubject.next(s);
    publish(topics.status, 'std_msgs/msg/String', { data: JSON.stringify(s) });
  };

  subs.push(link.messages$.subscribe(onMessage));
  subs.push(
    link.state$.subscribe((s) => {
      // Back up counts as a restart: only frames that arrive from now on are planned for execution.
      if ((s === 'lost' || (s === 'up' && linkState === 'lost')) && linkState !== s) discardPlans(s === 'lost' ? 'robot link lost' : 'robot link back');
      linkState = s;
      gate.setLinkUp(s === 'up');
      if (s === 'lost') log('robot link lost: commands are zero until it is back and a plan from a new frame arrives');
      if (!closed) statusSubject.next(status());
    }),
  );

  // Rate mode plans at the action rate: a 30 Hz camera would otherwise keep the planner replanning
  // for frames whose plans are never executed (the newest frame of each period is kept).
  const runningObs$ = observations.pipe(filter(() => running.value));
  const plannerObs$ = (config.controlMode === 'rate' ? runningObs$.pipe(throttleTime(1000 / config.actionHz, undefined, { leading: true, trailing: true })) : runningObs$).pipe(
    tap((o) => {
      const f = frames.get(o.stamp);
      // A frame replanned (start(), a new goal) keeps its first hand-off time.
      if (f && f.plannerInMs === undefined) f.plannerInMs = clock();
    }),
  );
  const plannerGoals$ = goals.pipe(filter((g): g is Goal => g !== undefined));
  subs.push(
    planner(plannerObs$, plannerGoals$).subscribe({
      next: (p) => {
        planArrivals.set(p, clock());
        counters.plans++;
        if (p.safe) counters.safePlans++;
        lastPlan = p;
        plans.next(p);
        if (p.observationStamp <= voidUpTo) return;
        // A safe plan (missed deadline, error) is not a fresh plan for the gate's deadline check.
        if (!p.safe) gate.onPlan();
        if (config.controlMode === 'rate') executable.next(p);
        else if (running.value) sendCommand(p.safe ? safeAction() : (p.actions[0] ?? safeAction()), p);
      },
      error: (e) => {
        lastError = `planner failed: ${errorMessage(e)}`;
        log(lastError);
        sendZero(lastError);
      },
    }),
  );

  if (config.controlMode === 'rate') {
    // Which plan each executed action came from, for the latency sample of its first action.
    let current: Plan | undefined;
    let fresh = false;
    subs.push(executable.subscribe((p) => ((current = p), (fresh = true))));
    const tick$ = interval(1000 / config.actionHz).pipe(filter(() => running.value));
    subs.push(
      executePlans(executable, tick$).subscribe((a) => {
        sendCommand(a, fresh ? current : undefined);
        fresh = false;
      }),
    );
  }
  if (config.twistHz > 0) subs.push(interval(1000 / config.twistHz).subscribe(publishTwist));
  if (config.statusHz > 0) subs.push(interval(1000 / config.statusHz).subscribe(emitStatus));

  return {
    config,
    gate,
    plans$: plans.asObservable(),
    commands$: commands.asObservable(),
    latency$: latency.asObservable(),
    observations$: observations.asObservable(),
    status$: statusSubject.asObservable(),
    status,
    setGoal,
    start,
    stop,
    estop: (source = 'api') => estop(source),
    clearEstop: (source = 'api') => clearEstop(source),
    publishTwist,
    async shutdown() {
      if (closed) return;
      gate.shutdown();
      sendZero('shutdown');
      closed = true;
      for (const s of subs) s.unsubscribe();
      for (const s of [observations, plans, executable, commands, latency, statusSubject]) s.complete();
      await link.close();
    },
  };
}
