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
 *
 * startService composes three parts: the topic I/O over the link (topics.ts), the run/e-stop state
 * machine (run-control.ts) and the counters and latency bookkeeping (bookkeeping.ts).
 */
import { BehaviorSubject, Subject, interval, filter, tap, throttleTime, type Observable, type Subscription } from 'rxjs';
import { executePlans } from '../planner/loop.js';
import type { Goal, Observation, Plan, Planner } from '../core/types.js';
import { safeAction, type Rt1Action } from '../core/action.js';
import type { RawMessage, RobotLink } from '../robot/link.js';
import { actionToTwist, zeroTwist } from '../robot/messages.js';
import { errorMessage } from '../core/errors.js';
import { GoalDecoder, GoalSupersededError, type EncodedGoal } from './goal-decoder.js';
import { FrameLatencies, ServiceCounts, type LatencySample, type ServiceStatus } from './bookkeeping.js';
import { resolvePlanDeadline, type ServiceConfig } from './config.js';
import { RunControl } from './run-control.js';
import { SafetyGate, type EstopSource, type GateResult } from './safety.js';
import { ServiceTopics, type Inbound } from './topics.js';

export type { LatencySample, PlanTiming, ServiceStatus } from './bookkeeping.js';

export interface Command {
  /** What went to the robot (after the gate). */
  action: Rt1Action;
  /** What the planner asked for. */
  requested: Rt1Action;
  zeroed?: string;
  clamped: string[];
  ms: number;
}

export interface ServiceOptions {
  /** Monotonic clock in ms (tests pass a fake one). */
  clock?: () => number;
  /** Wall clock in ms, for header stamps (tests pass a fake one). */
  wallClock?: () => number;
  log?: (line: string) => void;
  /** The planner's time budget, for safety.plan_deadline_ms = 0 (auto). */
  plannerTiming?: { budgetMs: number; graceMs: number };
  /** Goal image decoding (default: a worker thread, under goal.max_pixels). */
  goalDecoder?: GoalDecoder;
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
  /**
   * Decodes JPEG/PNG goal images off the service's thread, then sets the goal. The newest goal
   * wins: one still waiting when a newer one arrives is rejected (GoalSupersededError).
   */
  decodeGoal(goal: EncodedGoal): Promise<void>;
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
  const config: ServiceConfig = {
    ...configIn,
    safety: { ...configIn.safety, planDeadlineMs: resolvePlanDeadline(configIn, opts.plannerTiming) },
  };
  const periodS = 1 / config.actionHz;
  // The twist holds an action for its period plus one twist period, so a control tick that fires
  // a little late (timer jitter) does not put a zero twist between two actions.
  const holdMs = periodS * 1000 + (config.twistHz > 0 ? 1000 / config.twistHz : 0);
  const gate = new SafetyGate(config.safety, periodS, clock, config.controlMode !== 'lockstep');
  const counts = new ServiceCounts();
  const io = new ServiceTopics(link, config, (message) => (counts.lastError = message));
  const latencies = new FrameLatencies(clock);
  const goalDecoder = opts.goalDecoder ?? new GoalDecoder({ maxPixels: config.goal.maxPixels, log });

  const observations = new Subject<Observation>();
  const goals = new BehaviorSubject<Goal | undefined>(undefined);
  const plans = new Subject<Plan>();
  const commands = new Subject<Command>();
  const latency = new Subject<LatencySample>();
  const statusSubject = new Subject<ServiceStatus>();
  // Rate mode: the plans the control tick may execute (an empty one holds it at the safe action).
  const executable = new Subject<Plan>();
  let lastObservation: Observation | undefined;
  let proprio: Float32Array | undefined;
  let lastCommand: { action: Rt1Action; ms: number } | undefined;
  // Every frame gets its own stamp here (arrival time, strictly increasing): cameras that send
  // zero or repeated header stamps would otherwise look like one frame to the planner.
  let lastStamp = -Infinity;
  let closed = false;
  const subs: Subscription[] = [];

  const run = new RunControl(
    gate,
    config.controlMode,
    config.autoStart,
    {
      newestStamp: () => lastStamp,
      hold: (p) => executable.next(p),
      replanNewest: () => {
        if (lastObservation) observations.next(lastObservation);
      },
      zero: (why) => sendZero(why),
      changed: () => emitStatus(),
      log,
    },
    { staleFrameMs: config.safety.maxImageAgeMs, resumeAfterLinkLoss: config.safety.resumeAfterLinkLoss },
  );

  const sendCommand = (requested: Rt1Action, plan: Plan | undefined) => {
    const now = clock();
    const r: GateResult = gate.filter(requested, now);
    io.publishAction(r.action);
    io.publishGripperFor(r.action);
    lastCommand = { action: r.action, ms: now };
    counts.commandSent(Boolean(r.zeroed));
    commands.next({ action: r.action, requested, zeroed: r.zeroed, clamped: r.clamped, ms: now });
    if (plan && !plan.safe) {
      const sample = latencies.sample(plan, now);
      if (sample) latency.next(sample);
    }
  };

  /** Zero command now (action topic and twist), whatever the plan says; reported on commands$ too. */
  const sendZero = (why: string) => {
    const now = clock();
    io.publishAction(safeAction());
    if (config.twistHz > 0) io.publishTwist(zeroTwist(wallClock(), config.twistFrame));
    lastCommand = { action: safeAction(), ms: now };
    counts.commandSent(true);
    if (!closed) commands.next({ action: safeAction(), requested: safeAction(), zeroed: why, clamped: [], ms: now });
    log(`zero command: ${why}`);
  };

  const publishTwist = () => {
    const now = clock();
    const hold = lastCommand && now - lastCommand.ms <= holdMs ? lastCommand.action : undefined;
    // Each republish re-checks the gate on this thread's clock: a frame going stale between actions
    // zeroes the twist at the next republish.
    io.publishTwist(
      hold && !gate.blockReason(now) && run.running
        ? actionToTwist(hold, periodS, wallClock(), config.twistFrame)
        : zeroTwist(wallClock(), config.twistFrame),
    );
  };

  const setGoal = (goal: Goal) => {
    goals.next(goal);
    emitStatus();
  };
  const decodeGoal = async (encoded: EncodedGoal) => {
    const goal = await goalDecoder.decode(encoded);
    if (!closed) setGoal(goal);
  };

  const status = (): ServiceStatus =>
    counts.status(run.running, run.link, gate.status(), goals.value !== undefined, config.safety.planDeadlineMs, run.waiting);
  const emitStatus = () => {
    if (closed) return;
    const s = status();
    statusSubject.next(s);
    io.publishStatus(s);
  };

  const onInbound = (m: RawMessage, msg: Inbound) => {
    switch (msg.kind) {
      case 'camera': {
        const obs = msg.observation;
        if (proprio) obs.proprio = proprio;
        const headerMs = obs.stamp;
        // Before this frame becomes the newest: frames resuming after a freeze void older plans.
        run.frameArrived(m.receivedMs);
        obs.stamp = lastStamp = Math.max(m.receivedMs, lastStamp + 1e-3);
        gate.onCamera(m.receivedMs, config.safety.maxHeaderAgeMs > 0 ? wallClock() - headerMs : undefined);
        counts.observations++;
        latencies.frameDecoded(obs.stamp, m.receivedMs);
        lastObservation = obs;
        observations.next(obs);
        return;
      }
      case 'joints':
        proprio = msg.positions;
        return;
      case 'pose':
        gate.onPose(msg.position, m.receivedMs);
        return;
      case 'goal':
        setGoal(msg.goal);
        return;
      case 'encodedGoal':
        decodeGoal(msg.goal).catch((e: unknown) => {
          if (e instanceof GoalSupersededError || closed) return;
          counts.decodeErrors++;
          counts.lastError = errorMessage(e);
          log(`dropped a goal image: ${counts.lastError}`);
          emitStatus();
        });
        return;
      case 'estop':
        // The topic has its own latch: its false releases only what its true latched.
        if (msg.latch) run.estop('topic');
        else run.clearEstop('topic');
        return;
      case 'run': {
        if (!msg.start) return run.stop();
        const refused = run.start();
        if (refused) {
          counts.lastError = `${m.topic}: ${refused}`;
          log(counts.lastError);
          emitStatus();
        }
        return;
      }
    }
  };
  const onMessage = (m: RawMessage) => {
    try {
      const msg = io.decode(m);
      if (msg) onInbound(m, msg);
    } catch (e) {
      // A malformed message is counted and reported, never fatal.
      counts.decodeErrors++;
      counts.lastError = errorMessage(e);
      log(`dropped a message: ${counts.lastError}`);
    }
  };

  subs.push(link.messages$.subscribe(onMessage));
  subs.push(
    link.state$.subscribe((s) => {
      run.linkChanged(s);
      if (!closed) statusSubject.next(status());
    }),
  );

  // Rate mode plans at the action rate: a 30 Hz camera would otherwise keep the planner replanning
  // for frames whose plans are never executed (the newest frame of each period is kept).
  const runningObs$ = observations.pipe(filter(() => run.running));
  const plannerObs$ = (
    config.controlMode === 'rate'
      ? runningObs$.pipe(throttleTime(1000 / config.actionHz, undefined, { leading: true, trailing: true }))
      : runningObs$
  ).pipe(tap((o) => latencies.handedToPlanner(o.stamp)));
  const plannerGoals$ = goals.pipe(filter((g): g is Goal => g !== undefined));
  subs.push(
    planner(plannerObs$, plannerGoals$).subscribe({
      next: (p) => {
        latencies.planArrived(p);
        counts.planReceived(p);
        plans.next(p);
        if (!run.accept(p)) return;
        if (config.controlMode === 'rate') executable.next(p);
        else if (run.running) sendCommand(p.safe ? safeAction() : (p.actions[0] ?? safeAction()), p);
      },
      error: (e) => {
        counts.lastError = `planner failed: ${errorMessage(e)}`;
        log(counts.lastError);
        sendZero(counts.lastError);
      },
    }),
  );

  if (config.controlMode === 'rate') {
    // Which plan each executed action came from, for the latency sample of its first action.
    let current: Plan | undefined;
    let fresh = false;
    subs.push(executable.subscribe((p) => ((current = p), (fresh = true))));
    const tick$ = interval(1000 / config.actionHz).pipe(filter(() => run.running));
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
    decodeGoal,
    start: () => run.start(),
    stop: () => run.stop(),
    estop: (source = 'api') => run.estop(source),
    clearEstop: (source = 'api') => run.clearEstop(source),
    publishTwist,
    async shutdown() {
      if (closed) return;
      gate.shutdown();
      sendZero('shutdown');
      closed = true;
      for (const s of subs) s.unsubscribe();
      for (const s of [observations, plans, executable, commands, latency, statusSubject]) s.complete();
      await Promise.all([link.close(), goalDecoder.close()]);
    },
  };
}
