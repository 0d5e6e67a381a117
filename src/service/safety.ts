/**
 * The safety layer between whatever produces actions and the robot. It knows nothing about the
 * planner: it watches the inputs (camera age, plan arrivals, end-effector pose, e-stop, link) on
 * its own clock and clamps or zeroes every command on the way out.
 */
import { safeAction, type Rt1Action } from '../core/action.js';
import type { Box, SafetyConfig } from './config.js';

export interface GateResult {
  action: Rt1Action;
  /** Set when the command was replaced by the zero command. */
  zeroed?: string;
  /** Which limits changed the command. */
  clamped: string[];
}

/** Who pressed an e-stop; each source has its own latch and only that source releases it. */
export type EstopSource = 'topic' | 'api' | (string & {});

export interface SafetyStatus {
  estop: boolean;
  /** The sources whose e-stop is latched. */
  estopSources: string[];
  linkUp: boolean;
  shutdown: boolean;
  cameraAgeMs: number | null;
  /** Age of the newest frame by its header stamp (wall clock), when safety.max_header_age_ms checks it. */
  headerAgeMs: number | null;
  planAgeMs: number | null;
  /** Why commands are zero right now (none: commands pass). */
  blocked?: string;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Scales a vector down to `max` Euclidean length (direction kept). */
function limitNorm(v: [number, number, number], max: number): [number, number, number] | undefined {
  const n = Math.hypot(...v);
  if (n <= max) return undefined;
  const s = n > 0 ? max / n : 0;
  return [v[0] * s, v[1] * s, v[2] * s];
}

/**
 * Keeps `pos + delta` inside the box; outside the box only motion back towards it is allowed
 * (the gate never adds motion of its own).
 */
export function clampToWorkspace(pos: [number, number, number], delta: [number, number, number], box: Box): [number, number, number] {
  return (['x', 'y', 'z'] as const).map((axis, i) => {
    const [lo, hi] = box[axis];
    const p = pos[i]!;
    const d = delta[i]!;
    if (p > hi) return Math.min(d, 0);
    if (p < lo) return Math.max(d, 0);
    return clamp(p + d, lo, hi) - p;
  }) as [number, number, number];
}

export class SafetyGate {
  private lastCameraMs?: number;
  /** Header-stamp age of the newest frame when it arrived (wall clock minus stamp). */
  private headerAgeAtArrival?: number;
  private lastPlanMs?: number;
  private pose?: { pos: [number, number, number]; ms: number };
  private readonly estops = new Set<string>();
  private linkUp = true;
  private stopped = false;

  constructor(
    private readonly cfg: SafetyConfig,
    /** Seconds one action covers (1 / action rate): the speed limits become per-step limits. */
    private readonly actionPeriodS: number,
    private readonly clock: () => number,
    /**
     * Off in lockstep mode: a simulator or replay waits for each command, so the frame being
     * planned from cannot go stale while the planner works (the plan deadline still applies).
     */
    private readonly checkCameraAge = true,
  ) {
    if (!(cfg.planDeadlineMs > 0))
      throw new Error(
        `SafetyGate: safety.plan_deadline_ms must be resolved to a positive value (got ${cfg.planDeadlineMs}; see resolvePlanDeadline)`,
      );
  }

  /** A frame arrived; `headerAgeMs` is wall clock minus its header stamp at arrival. */
  onCamera(receivedMs = this.clock(), headerAgeMs?: number): void {
    this.lastCameraMs = receivedMs;
    this.headerAgeAtArrival = headerAgeMs;
  }

  onPlan(receivedMs = this.clock()): void {
    this.lastPlanMs = receivedMs;
  }

  onPose(pos: [number, number, number], receivedMs = this.clock()): void {
    this.pose = { pos, ms: receivedMs };
  }

  /** Latches `source`'s e-stop: only clearEstop(source) releases it. */
  estop(source: EstopSource): void {
    this.estops.add(source);
  }

  /** Releases `source`'s latch only (another source's stays); true when it was latched. */
  clearEstop(source: EstopSource): boolean {
    return this.estops.delete(source);
  }

  get estopActive(): boolean {
    return this.estops.size > 0;
  }

  estopSources(): string[] {
    return [...this.estops].sort();
  }

  setLinkUp(up: boolean): void {
    this.linkUp = up;
  }

  /** SIGINT/SIGTERM: everything from now on is the zero command. */
  shutdown(): void {
    this.stopped = true;
  }

  /** Why commands must be zero now, or undefined when they may pass. */
  blockReason(now = this.clock()): string | undefined {
    if (this.stopped) return 'shutting down';
    if (this.estops.size) return `e-stop latched (${this.estopSources().join(', ')})`;
    if (!this.linkUp) return 'robot link lost';
    if (this.lastCameraMs === undefined) return 'no camera frame yet';
    const camAge = now - this.lastCameraMs;
    if (this.checkCameraAge && camAge > this.cfg.maxImageAgeMs)
      return `camera frame ${camAge.toFixed(0)} ms old (limit ${this.cfg.maxImageAgeMs} ms)`;
    const headerAge = this.headerAge(now);
    if (this.checkCameraAge && this.cfg.maxHeaderAgeMs > 0 && headerAge !== null && headerAge > this.cfg.maxHeaderAgeMs) {
      return `camera frame stamped ${headerAge.toFixed(0)} ms ago (header stamp; limit ${this.cfg.maxHeaderAgeMs} ms)`;
    }
    if (this.lastPlanMs === undefined) return 'no plan yet';
    const planAge = now - this.lastPlanMs;
    if (planAge > this.cfg.planDeadlineMs)
      return `planner missed its deadline: last plan ${planAge.toFixed(0)} ms ago (limit ${this.cfg.planDeadlineMs} ms)`;
    if (this.cfg.workspace) {
      if (!this.pose) return 'workspace limits set but no end-effector pose yet';
      const poseAge = now - this.pose.ms;
      if (poseAge > this.cfg.maxPoseAgeMs) return `end-effector pose ${poseAge.toFixed(0)} ms old (limit ${this.cfg.maxPoseAgeMs} ms)`;
    }
    return undefined;
  }

  /** The command that may go to the robot for `action`, now. */
  filter(action: Rt1Action, now = this.clock()): GateResult {
    const reason = this.blockReason(now);
    if (reason) return { action: safeAction(), zeroed: reason, clamped: [] };
    const clamped: string[] = [];
    const finite = (v: number[]) => v.every(Number.isFinite);
    if (!finite(action.worldVector) || !finite(action.rotationDelta) || !Number.isFinite(action.gripperClosedness)) {
      return { action: safeAction(), zeroed: 'action holds a non-finite value', clamped };
    }
    let world: [number, number, number] = [...action.worldVector];
    let rot: [number, number, number] = [...action.rotationDelta];
    const lin = limitNorm(world, this.cfg.maxLinearVelocity * this.actionPeriodS);
    if (lin) {
      world = lin;
      clamped.push('linear velocity');
    }
    const ang = limitNorm(rot, this.cfg.maxAngularVelocity * this.actionPeriodS);
    if (ang) {
      rot = ang;
      clamped.push('angular velocity');
    }
    if (this.cfg.workspace && this.pose) {
      const w = clampToWorkspace(this.pose.pos, world, this.cfg.workspace);
      if (w.some((v, i) => Math.abs(v - world[i]!) > 1e-12)) {
        world = w;
        clamped.push('workspace');
      }
    }
    return { action: { ...action, worldVector: world, rotationDelta: rot, terminateEpisode: [...action.terminateEpisode] }, clamped };
  }

  private headerAge(now: number): number | null {
    if (this.headerAgeAtArrival === undefined || this.lastCameraMs === undefined) return null;
    return this.headerAgeAtArrival + (now - this.lastCameraMs);
  }

  status(now = this.clock()): SafetyStatus {
    return {
      estop: this.estops.size > 0,
      estopSources: this.estopSources(),
      linkUp: this.linkUp,
      shutdown: this.stopped,
      cameraAgeMs: this.lastCameraMs === undefined ? null : now - this.lastCameraMs,
      headerAgeMs: this.headerAge(now),
      planAgeMs: this.lastPlanMs === undefined ? null : now - this.lastPlanMs,
      blocked: this.blockReason(now),
    };
  }
}
