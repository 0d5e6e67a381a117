/**
 * What the service counts and times: per-frame timing for the latency sample of each command
 * (FrameLatencies), the counters and last plan behind the status (ServiceCounts), and the
 * percentile summary printed when serve exits (LatencySummary).
 */
import { percentile } from '../util/stats.js';
import type { Plan } from '../core/types.js';
import type { LinkState } from '../robot/link.js';
import type { SafetyStatus } from './safety.js';

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
  /** While stopped: why, and what restarts motion (a link loss waits for an explicit start). */
  waiting?: string;
}

/** How many frames' timing is kept: frames whose plans never reach a command are forgotten. */
const FRAMES_KEPT = 64;

/** Timing of recent frames by their service stamp, and of plan arrivals, for the latency sample of the command made from each. */
export class FrameLatencies {
  private readonly frames = new Map<number, { receivedMs: number; decodedMs: number; plannerInMs?: number }>();
  private readonly planArrivals = new WeakMap<Plan, number>();

  constructor(private readonly clock: () => number) {}

  /** A camera frame decoded now; `receivedMs` is its arrival on the link. */
  frameDecoded(stamp: number, receivedMs: number): void {
    this.frames.set(stamp, { receivedMs, decodedMs: this.clock() });
    if (this.frames.size > FRAMES_KEPT) this.frames.delete(this.frames.keys().next().value!);
  }

  /** A frame handed to the planner now; a frame replanned (start(), a new goal) keeps its first hand-off time. */
  handedToPlanner(stamp: number): void {
    const f = this.frames.get(stamp);
    if (f && f.plannerInMs === undefined) f.plannerInMs = this.clock();
  }

  /** A plan reached the service now (for the tick wait of its first action). */
  planArrived(plan: Plan): void {
    this.planArrivals.set(plan, this.clock());
  }

  /** The sample for the first command from `plan`, decided at `commandMs` and published now; once per frame. */
  sample(plan: Plan, commandMs: number): LatencySample | undefined {
    const f = this.frames.get(plan.observationStamp);
    const planMs = this.planArrivals.get(plan);
    if (!f || planMs === undefined) return undefined;
    this.frames.delete(plan.observationStamp);
    const published = this.clock();
    const total = published - f.receivedMs;
    // A planner that never took the frame through observations$ (a test double) waited for nothing.
    const plannerIn = f.plannerInMs ?? f.decodedMs;
    const queued = (plan as Plan & PlanTiming).queuedMs ?? Math.max(0, planMs - plannerIn - plan.latencyMs);
    const wait = plannerIn - f.decodedMs + queued + (commandMs - planMs);
    return { totalMs: total, planningMs: plan.latencyMs, waitMs: wait, serviceMs: Math.max(0, total - plan.latencyMs - wait) };
  }
}

/** The counters, last error and last plan of ServiceStatus. */
export class ServiceCounts {
  observations = 0;
  plans = 0;
  safePlans = 0;
  commands = 0;
  zeroedCommands = 0;
  decodeErrors = 0;
  lastError: string | undefined;
  lastPlan: Plan | undefined;

  planReceived(p: Plan): void {
    this.plans++;
    if (p.safe) this.safePlans++;
    this.lastPlan = p;
  }

  commandSent(zeroed: boolean): void {
    this.commands++;
    if (zeroed) this.zeroedCommands++;
  }

  status(
    running: boolean,
    link: LinkState,
    safety: SafetyStatus,
    hasGoal: boolean,
    planDeadlineMs: number,
    waiting?: string,
  ): ServiceStatus {
    const p = this.lastPlan;
    return {
      running,
      link,
      safety,
      observations: this.observations,
      plans: this.plans,
      safePlans: this.safePlans,
      commands: this.commands,
      zeroedCommands: this.zeroedCommands,
      decodeErrors: this.decodeErrors,
      lastError: this.lastError,
      lastPlan: p && { cost: p.cost, latencyMs: p.latencyMs, safe: p.safe, reason: p.reason, observationStamp: p.observationStamp },
      hasGoal,
      planDeadlineMs,
      waiting,
    };
  }
}

/** Latency samples collected over a run, summarised as percentiles. */
export class LatencySummary {
  private readonly serviceMs: number[] = [];
  private readonly waitMs: number[] = [];

  add(l: LatencySample): void {
    this.serviceMs.push(l.serviceMs);
    this.waitMs.push(l.waitMs);
  }

  /** `; service latency ... p50, p99; waits ... p50`, or nothing without samples. */
  describe(): string {
    if (!this.serviceMs.length) return '';
    const service = [...this.serviceMs].sort((a, b) => a - b);
    const waited = [...this.waitMs].sort((a, b) => a - b);
    return `; service latency (decode, hand-off, gate, encode; planning and waits excluded) p50 ${percentile(service, 50).toFixed(2)} ms, p99 ${percentile(service, 99).toFixed(2)} ms; waits for the action rate and a busy planner p50 ${percentile(waited, 50).toFixed(0)} ms`;
  }
}
