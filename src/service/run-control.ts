/**
 * The service's run/e-stop state machine: running or stopped, the e-stop latches (held by the
 * SafetyGate, one per source), the robot link's state, and which plans may still be executed.
 *
 *   stopped --start()--> running           refused while any e-stop is latched
 *   running --stop()---> stopped           zero command once
 *   any -----estop(s)--> stopped + latch s zero command now; clearEstop(s) releases s only, no restart
 *   running --link lost-> stopped           zero command; motion waits for start once the link is back
 *                                          (safety.resume_after_link_loss: stays running, the gate zeroes
 *                                          commands while the link is down)
 *
 * Stop, e-stop, link loss (or return) and, in rate mode, camera frames that resume after a gap
 * longer than the stale-camera limit void the plan in hand and any plan still being computed: plans
 * made from frames up to the newest stamp at that moment are never executed, so motion resumes
 * only from a newer frame.
 */
import { BehaviorSubject } from 'rxjs';
import type { Plan } from '../core/types.js';
import type { LinkState } from '../robot/link.js';
import type { ServiceConfig } from './config.js';
import type { EstopSource, SafetyGate } from './safety.js';

export interface RunControlHooks {
  /** The newest frame's service stamp. */
  newestStamp(): number;
  /** Rate mode: plans voided; the control tick holds the safe action until the next plan (an empty plan with the reason). */
  hold(plan: Plan): void;
  /** Lockstep start: the newest frame goes to the planner again, so the waiting robot gets a command. */
  replanNewest(): void;
  /** Zero command now. */
  zero(why: string): void;
  /** Running or the e-stop latches changed. */
  changed(): void;
  log(line: string): void;
}

export interface RunRules {
  /** A gap between camera frames longer than this (rate mode) voids the plans made before it (safety.max_image_age_ms). */
  staleFrameMs: number;
  /** Stay running through a link loss (safety.resume_after_link_loss) instead of waiting for start. */
  resumeAfterLinkLoss: boolean;
}

export class RunControl {
  readonly running$: BehaviorSubject<boolean>;
  private voidUpTo = -Infinity;
  private linkState: LinkState = 'connecting';
  private lastFrameMs: number | undefined;
  private waitReason: string | undefined;

  constructor(
    private readonly gate: SafetyGate,
    private readonly controlMode: ServiceConfig['controlMode'],
    autoStart: boolean,
    private readonly hooks: RunControlHooks,
    private readonly rules: RunRules = { staleFrameMs: Infinity, resumeAfterLinkLoss: false },
  ) {
    this.running$ = new BehaviorSubject<boolean>(autoStart);
    if (!autoStart) this.waitReason = 'waiting for start (auto_start is false)';
  }

  get running(): boolean {
    return this.running$.value;
  }

  /** Why the service is stopped and what restarts it; undefined while running. */
  get waiting(): string | undefined {
    return this.running ? undefined : this.waitReason;
  }

  get link(): LinkState {
    return this.linkState;
  }

  /** Start planning and commands; the reason it is refused while any e-stop is latched. */
  start(): string | undefined {
    if (this.gate.estopActive) return `cannot start: e-stop latched (${this.gate.estopSources().join(', ')}); clear it first`;
    if (this.running) return undefined;
    this.waitReason = undefined;
    this.running$.next(true);
    if (this.controlMode === 'rate') {
      // A streaming camera: only frames taken after the start count (zero command until their plan).
      this.discardPlans('started: waiting for a plan from a new frame');
    } else {
      // Lockstep: the robot waits for a command on its newest frame (taken after the stop's zero command).
      this.hooks.replanNewest();
    }
    this.hooks.changed();
    return undefined;
  }

  stop(): void {
    if (!this.running) return;
    this.waitReason = 'stopped: waiting for start';
    this.running$.next(false);
    this.discardPlans('stopped');
    this.hooks.zero('stopped');
    this.hooks.changed();
  }

  estop(source: EstopSource): void {
    this.gate.estop(source);
    // Stopped as well: releasing every latch does not restart motion, an explicit start does.
    this.waitReason = `e-stop (${source}): waiting for its release, then start`;
    this.running$.next(false);
    this.discardPlans(`e-stop (${source})`);
    this.hooks.zero(`e-stop (${source})`);
    this.hooks.changed();
  }

  clearEstop(source: EstopSource): void {
    if (this.gate.clearEstop(source))
      this.hooks.log(
        `e-stop released (${source})${this.gate.estopActive ? `; still latched: ${this.gate.estopSources().join(', ')}` : '; stopped until start'}`,
      );
    this.hooks.changed();
  }

  /** The robot link's state changed. */
  linkChanged(s: LinkState): void {
    const lost = s === 'lost' && this.linkState !== 'lost';
    // Back up counts as a restart: only frames that arrive from now on are planned for execution.
    if (lost || (s === 'up' && this.linkState === 'lost')) this.discardPlans(s === 'lost' ? 'robot link lost' : 'robot link back');
    this.linkState = s;
    this.gate.setLinkUp(s === 'up');
    if (!lost) return;
    if (this.rules.resumeAfterLinkLoss) {
      this.hooks.log('robot link lost: commands are zero until it is back and a plan from a new frame arrives');
      return;
    }
    // A protective stop: once the link is back, motion waits for a deliberate start.
    const wasRunning = this.running;
    this.waitReason = 'robot link lost: waiting for start (API start or true on the run topic) once the link is back';
    this.running$.next(false);
    this.hooks.log(`robot link lost: stopped; ${wasRunning ? 'motion resumes only after an explicit start' : 'still stopped'}`);
    if (wasRunning) this.hooks.zero('robot link lost: stopped until start');
    this.hooks.changed();
  }

  /**
   * A camera frame arrived (before it becomes the newest frame). In rate mode, frames that resume
   * after a gap longer than the stale-camera limit void every plan made before the gap: a plan in
   * hand, or one still being computed, from a frame taken before the camera froze never moves the
   * robot.
   */
  frameArrived(receivedMs: number): void {
    const gap = this.lastFrameMs === undefined ? 0 : receivedMs - this.lastFrameMs;
    this.lastFrameMs = receivedMs;
    if (this.controlMode !== 'rate' || !(gap > this.rules.staleFrameMs)) return;
    this.discardPlans(
      `camera frames resumed after ${gap.toFixed(0)} ms (limit ${this.rules.staleFrameMs} ms): waiting for a plan from a new frame`,
    );
    this.hooks.log(`camera frames resumed after ${gap.toFixed(0)} ms: plans from older frames discarded`);
  }

  /**
   * A plan from the planner: false when it was voided (made from a frame before the last stop,
   * e-stop or link change); otherwise a fresh plan for the gate's deadline check unless it is a
   * safe plan (missed deadline, error), and true.
   */
  accept(plan: Plan): boolean {
    if (plan.observationStamp <= this.voidUpTo) return false;
    if (!plan.safe) this.gate.onPlan();
    return true;
  }

  private discardPlans(why: string): void {
    this.voidUpTo = this.hooks.newestStamp();
    if (this.controlMode === 'rate')
      this.hooks.hold({
        actions: [],
        cost: 0,
        iterations: 0,
        candidatesEvaluated: 0,
        latencyMs: 0,
        observationStamp: this.voidUpTo,
        safe: true,
        reason: why,
      });
  }
}
