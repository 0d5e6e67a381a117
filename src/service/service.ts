/**
 * The planning service: robot link in, planner in the middle, safety gate, commands out.
 *
 *   link (camera, joint_states, ee_pose, goal_image, estop)
 *     -> Observation / Goal -> planner (latest-only) -> plans
 *     -> one RT-1 action per tick (rate mode) or per observation (lockstep mode)
 *     -> SafetyGate (clamp, or zero) -> selfflow/action, gripper, and the twist republished at twistHz
 */
import { BehaviorSubject, Subject, interval, filter, throttleTime, type Observable, type Subscription } from 'rxjs';
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
import type { ServiceConfig } from './config.js';
import { SafetyGate, type GateResult, type SafetyStatus } from './safety.js';

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
  /** What the service added: total minus planning. */
  serviceMs: number;
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
}

export interface ServiceOptions {
  /** Monotonic clock in ms (tests pass a fake one). */
  clock?: () => number;
  log?: (line: string) => void;
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
  start(): void;
  /** Stop planning and send the zero command once. */
  stop(): void;
  estop(): void;
  clearEstop(): void;
  /** Publish one twist now (what the twist timer does at twistHz); exposed for fake-clock tests. */
  publishTwist(): void;
  /** SIGINT/SIGTERM path: zero command out, timers stopped, link closed. */
  shutdown(): Promise<void>;
}

export function startService(config: ServiceConfig, planner: Planner, link: RobotLink, opts: ServiceOptions = {}): RunningService {
  const clock = opts.clock ?? (() => performance.now());
  const log = opts.log ?? (() => {});
  const codec = rosCodec();
  const periodS = 1 / config.actionHz;
  const gate = new SafetyGate(config.safety, periodS, clock, config.controlMode !== 'lockstep');
  const t = (name: string) => resolveTopic(config.namespace, name);
  const topics = {
    image: t(config.topics.useCompressed ? config.topics.compressedImage : config.topics.image),
    joints: t(config.topics.jointStates),
    pose: t(config.topics.eePose),
    goal: t(config.topics.goalImage),
    estop: t(config.topics.estop),
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
  link.subscribe(topics.estop, 'std_msgs/msg/Bool');
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
  // Arrival time of recent observations by stamp: the latency of the command made from each.
  const arrivals = new Map<number, number>();
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
        gate.onCamera(m.receivedMs);
        counters.observations++;
        arrivals.set(obs.stamp, m.receivedMs);
        if (arrivals.size > 64) arrivals.delete(arrivals.keys().next().value!);
        lastObservation = obs;
        observations.next(obs);
      } else if (m.topic === topics.joints) {
        proprio = jointPositions(codec.decode<JointStateMsg>('sensor_msgs/msg/JointState', m.data, m.topic), config.proprioJoints, m.topic);
      } else if (m.topic === topics.pose) {
        const p = codec.decode<PoseStampedMsg>('geometry_msgs/msg/PoseStamped', m.data, m.topic).pose.position;
        gate.onPose([p.x, p.y, p.z], m.receivedMs);
      } else if (m.topic === topics.goal) {
        goals.next({ images: [imageToObservation(codec.decode<ImageMsg>('sensor_msgs/msg/Image', m.data, m.topic), m.topic)] });
      } else if (m.topic === topics.estop) {
        const on = codec.decode<BoolMsg>('std_msgs/msg/Bool', m.data, m.topic).data;
        if (on) {
          gate.estop();
          sendZero('e-stop');
        } else gate.clearEstop();
        emitStatus();
      }
    } catch (e) {
      // A malformed message is counted and reported, never fatal.
      counters.decodeErrors++;
      lastError = errorMessage(e);
      log(`dropped a message: ${lastError}`);
    }
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
      const arrived = arrivals.get(plan.observationStamp);
      if (arrived !== undefined) {
        arrivals.delete(plan.observationStamp);
        const total = now - arrived;
        latency.next({ totalMs: total, planningMs: plan.latencyMs, serviceMs: Math.max(0, total - plan.latencyMs) });
      }
    }
  };

  /** Zero command now (action topic and twist), whatever the plan says. */
  const sendZero = (why: string) => {
    const now = clock();
    publish(topics.action, 'std_msgs/msg/Float32MultiArray', actionToMultiArray(safeAction()));
    if (config.twistHz > 0) publish(topics.twist, 'geometry_msgs/msg/TwistStamped', zeroTwist(Date.now(), config.twistFrame));
    lastCommand = { action: safeAction(), ms: now };
    log(`zero command: ${why}`);
  };

  const publishTwist = () => {
    const now = clock();
    const hold = lastCommand && now - lastCommand.ms <= periodS * 1000 ? lastCommand.action : undefined;
    // Each tick re-checks the gate: a frame going stale between actions stops the arm within one twist period.
    const msg = hold && !gate.blockReason(now) && running.value ? actionToTwist(hold, periodS, Date.now(), config.twistFrame) : zeroTwist(Date.now(), config.twistFrame);
    publish(topics.twist, 'geometry_msgs/msg/TwistStamped', msg);
  };

  const status = (): ServiceStatus => ({
    running: running.value,
    link: linkState,
    safety: gate.status(),
    ...counters,
    lastError,
    lastPlan: lastPlan && { cost: lastPlan.cost, latencyMs: lastPlan.latencyMs, safe: lastPlan.safe, reason: lastPlan.reason, observationStamp: lastPlan.observationStamp },
    hasGoal: goals.value !== undefined,
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
      linkState = s;
      gate.setLinkUp(s === 'up');
      if (s === 'lost') log('robot link lost: commands are zero until it is back');
      if (!closed) statusSubject.next(status());
    }),
  );

  // Rate mode plans at the action rate: a 30 Hz camera would otherwise keep the planner replanning
  // for frames whose plans are never executed (the newest frame of each period is kept).
  const runningObs$ = observations.pipe(filter(() => running.value));
  const plannerObs$ = config.controlMode === 'rate' ? runningObs$.pipe(throttleTime(1000 / config.actionHz, undefined, { leading: true, trailing: true })) : runningObs$;
  const plannerGoals$ = goals.pipe(filter((g): g is Goal => g !== undefined));
  subs.push(
    planner(plannerObs$, plannerGoals$).subscribe({
      next: (p) => {
        counters.plans++;
        if (p.safe) counters.safePlans++;
        // A safe plan (missed deadline, error) is not a fresh plan for the gate's deadline check.
        if (!p.safe) gate.onPlan();
        lastPlan = p;
        plans.next(p);
        if (config.controlMode === 'lockstep' && running.value) sendCommand(p.safe ? safeAction() : (p.actions[0] ?? safeAction()), p);
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
    subs.push(plans.subscribe((p) => ((current = p), (fresh = true))));
    const tick$ = interval(1000 / config.actionHz).pipe(filter(() => running.value));
    subs.push(
      executePlans(plans, tick$).subscribe((a) => {
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
    setGoal(goal) {
      goals.next(goal);
      emitStatus();
    },
    start() {
      if (running.value) return;
      running.next(true);
      // Plan from the newest frame right away rather than waiting for the next one.
      if (lastObservation) observations.next(lastObservation);
      emitStatus();
    },
    stop() {
      if (!running.value) return;
      running.next(false);
      sendZero('stopped');
      emitStatus();
    },
    estop() {
      gate.estop();
      sendZero('e-stop');
      emitStatus();
    },
    clearEstop() {
      gate.clearEstop();
      emitStatus();
    },
    publishTwist,
    async shutdown() {
      if (closed) return;
      gate.shutdown();
      sendZero('shutdown');
      closed = true;
      for (const s of subs) s.unsubscribe();
      for (const s of [observations, plans, commands, latency, statusSubject]) s.complete();
      await link.close();
    },
  };
}
