/**
 * The service's run/e-stop state machine: running or stopped, the e-stop latches (held by the
 * SafetyGate, one per source), the robot link's state, and which plans may still be executed.
 *
 *   stopped --start()--> running           refused while any e-stop is latched
 *   running --stop()---> stopped           zero command once
 *   any -----estop(s)--> stopped + latch s zero command now; clearEstop(s) releases s only, no restart
 *   link lost / back                       the gate zeroes commands while the link is down
 *
 * Stop, e-stop and link loss (or return) void the plan in hand and any plan still being computed:
 * plans made from frames up to the newest stamp at that moment are never executed, so motion
 * resumes only from a newer frame.
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

export class RunControl {
  readonly running$: BehaviorSubject<boolean>;
  private voidUpTo = -Infinity;
  private linkState: LinkState = 'connecting';

  constructor(
    private readonly gate: SafetyGate,
    private readonly controlMode: ServiceConfig['controlMode'],
    autoStart: boolean,
    private readonly hooks: RunControlHooks,
  ) {
    this.running$ = new BehaviorSubject<boolean>(autoStart);
  }

  get running(): boolean {
    return this.running$.value;
  }

  get link(): LinkState {
    return this.linkState;
  }

  /** Start planning and commands; the reason it is refused while any e-stop is latched. */
  start(): string | undefined {
    if (this.gate.estopActive) return `cannot start: e-stop latched (${this.gate.estopSources().join(', ')}); clear it first`;
    if (this.running) return undefined;
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
    this.running$.next(false);
    this.discardPlans('stopped');
    this.hooks.zero('stopped');
    this.hooks.changed();
  }

  estop(source: EstopSource): void {
    this.gate.estop(source);
    // Stopped as well: releasing every latch does not restart motion, an explicit start does.
    this.running$.next(false);
    this.discardPlans(`e-stop (${source})`);
    this.hooks.zero(`e-stop (${source})`);
    this.hooks.changed();
  }

  clearEstop(source: EstopSource): void {
    if (this.gate.clearEstop(source)) this.hooks.log(`e-stop released (${source})${this.gate.estopActive ? `; still latched: ${this.gate.estopSources().join(', ')}` : '; stopped until start'}`);
    this.hooks.changed();
  }

  /** The robot link's state changed. */
  linkChanged(s: LinkState): void {
    // Back up counts as a restart: only frames that arrive from now on are planned for execution.
    if ((s === 'lost' || (s === 'up' && this.linkState === 'lost')) && this.linkState !== s) this.discardPlans(s === 'lost' ? 'robot link lost' : 'robot link back');
    this.linkState = s;
    this.gate.setLinkUp(s === 'up');
    if (s === 'lost') this.hooks.log('robot link lost: commands are zero until it is back and a plan from a new frame arrives');
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
    if (this.controlMode === 'rate') this.hooks.hold({ actions: [], cost: 0, iterations: 0, candidatesEvaluated: 0, latencyMs: 0, observationStamp: this.voidUpTo, safe: true, reason: why });
  }
}
