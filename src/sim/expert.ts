/**
 * Scripted experts (privileged state) and the random policy. An expert is a list of phases read
 * from policies/experts/TASK.json: each phase moves the gripper to a waypoint defined relative to
 * a scene anchor (an object, the drawer knob, the drawer interior) and sets the gripper; a phase
 * ends when the waypoint is reached or after its step budget. Optional action noise and random
 * exploration segments make collected data diverse.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rt1Action } from '../robot/action.js';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import { Rng } from '../util/rng.js';
import { LIMITS, type SimEnv, type StepResult } from './env.js';
import type { Vec3 } from './state.js';

export interface Policy {
  reset(env: SimEnv): void;
  act(result: StepResult): Rt1Action;
}

/** Waypoint anchors: task objects, the drawer knob (now / when closed), the drawer interior, the gripper now, at episode start, or at phase start. */
type Anchor = 'target0' | 'target1' | 'beside_target1' | 'knob' | 'knob_closed' | 'drawer_interior' | 'gripper' | 'start' | 'here';

interface Phase {
  name: string;
  anchor: Anchor;
  offset: [number, number, number];
  gripper: 'open' | 'close' | 'keep';
  /** Distance (m) at which the waypoint counts as reached. */
  tolerance?: number;
  /** Steps to stay after reaching (e.g. to let the fingers close). */
  hold?: number;
  maxSteps?: number;
  /** Largest move per step (m); default 90 % of the robot's limit. Slow phases pull drawers without slipping. */
  speed?: number;
}

interface ExpertScript {
  task: string;
  phases: Phase[];
}

const scripts = new Map<string, ExpertScript>();

export function expertScript(task: string): ExpertScript {
  let s = scripts.get(task);
  if (!s) {
    const file = join(packageRoot(), 'policies', 'experts', `${task}.json`);
    try {
      s = JSON.parse(readFileSync(file, 'utf8')) as ExpertScript;
    } catch (e) {
      throw new UserError(`${file}: cannot read expert script (${(e as Error).message})`);
    }
    scripts.set(task, s);
  }
  return s;
}

const ZERO: Rt1Action = { worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] };

export class ScriptedExpert implements Policy {
  private env!: SimEnv;
  private phase = 0;
  private inPhase = 0;
  private held = 0;
  private start: Vec3 = [0, 0, 0];
  private phaseStart: Vec3 = [0, 0, 0];
  private target0Start: Vec3 = [0, 0, 0];
  private exploring = 0;
  private exploreDir: Vec3 = [0, 0, 0];

  constructor(
    readonly script: ExpertScript,
    private readonly rng: Rng,
    /** Gaussian action noise (std, metres per step) added to every move. */
    private readonly noise = 0,
    /** Probability per step of starting a short random exploration segment. */
    private readonly explore = 0,
  ) {}

  reset(env: SimEnv): void {
    this.env = env;
    this.phase = 0;
    this.inPhase = 0;
    this.held = 0;
    this.exploring = 0;
    this.start = env.scene.gripper().pos;
    this.phaseStart = this.start;
    const t0 = env.taskSetup.targets[0];
    if (t0) this.target0Start = env.scene.bodyPos(t0);
  }

  private anchor(a: Anchor): Vec3 {
    const s = this.env.scene;
    const t = this.env.taskSetup.targets;
    switch (a) {
      case 'target0':
        return s.bodyPos(t[0]!);
      case 'target1':
        return s.bodyPos(t[1]!);
      case 'beside_target1': {
        // 7.5 cm from target 1 (clear of its corners at any yaw) on the side target 0 came from, away from distractors behind it.
        const b = s.bodyPos(t[1]!);
        const dx = this.target0Start[0] - b[0];
        const dy = this.target0Start[1] - b[1];
        const l = Math.hypot(dx, dy) || 1;
        return [b[0] + (0.075 * dx) / l, b[1] + (0.075 * dy) / l, b[2]];
      }
      case 'knob':
        return s.knob();
      case 'knob_closed': {
        const k = s.knob();
        return [k[0] + s.drawerOpening(), k[1], k[2]];
      }
      case 'here':
        return this.phaseStart;
      case 'drawer_interior': {
        const d = s.drawerInterior();
        const e = s.drawerExposed();
        // Middle of the pulled-out part, at least 4 cm from the carcass front so a carried object clears it.
        return [Math.min((e.xMin + e.xMax) / 2, e.xMax - 0.045), (d.yMin + d.yMax) / 2, d.floor];
      }
      case 'gripper':
        return s.gripper().pos;
      case 'start':
        return this.start;
    }
  }

  act(_result: StepResult): Rt1Action {
    if (this.phase >= this.script.phases.length) return ZERO;
    const g = this.env.scene.gripper().pos;
    if (this.exploring > 0) {
      this.exploring--;
      return { ...ZERO, worldVector: this.exploreDir };
    }
    if (this.explore > 0 && this.rng.next() < this.explore) {
      this.exploring = 1 + this.rng.int(3);
      this.exploreDir = [this.rng.uniform(-0.04, 0.04), this.rng.uniform(-0.04, 0.04), this.rng.uniform(-0.02, 0.03)];
    }
    const ph = this.script.phases[this.phase]!;
    const a = this.anchor(ph.anchor);
    const goal: Vec3 = [a[0] + ph.offset[0], a[1] + ph.offset[1], a[2] + ph.offset[2]];
    const delta: Vec3 = [goal[0] - g[0], goal[1] - g[1], goal[2] - g[2]];
    const dist = Math.hypot(...delta);
    const step = Math.min(1, (ph.speed ?? LIMITS.maxTranslation * 0.9) / Math.max(dist, 1e-9));
    const move: Vec3 = [delta[0] * step, delta[1] * step, delta[2] * step];
    if (this.noise > 0) for (let i = 0; i < 3; i++) move[i] = move[i]! + this.rng.normal() * this.noise;
    this.inPhase++;
    const reached = dist < (ph.tolerance ?? 0.012);
    if (reached) this.held++;
    if ((reached && this.held > (ph.hold ?? 0)) || this.inPhase >= (ph.maxSteps ?? 25)) {
      this.phase++;
      this.phaseStart = g;
      this.inPhase = 0;
      this.held = 0;
    }
    return { worldVector: move, rotationDelta: [0, 0, 0], gripperClosedness: ph.gripper === 'close' ? 1 : ph.gripper === 'open' ? -1 : 0, terminateEpisode: [0, 1, 0] };
  }
}

/** Uniform random actions within the robot's limits, the gripper toggled now and then. */
export class RandomPolicy implements Policy {
  constructor(private readonly rng: Rng) {}
  reset(): void {}
  act(): Rt1Action {
    const r = this.rng;
    const m = LIMITS.maxTranslation;
    return { worldVector: [r.uniform(-m, m), r.uniform(-m, m), r.uniform(-m, m)], rotationDelta: [0, 0, r.uniform(-0.1, 0.1)], gripperClosedness: r.next() < 0.15 ? (r.next() < 0.5 ? 1 : -1) : 0, terminateEpisode: [0, 1, 0] };
  }
}

export function makeScriptedPolicy(name: 'expert' | 'random', task: string, seed: number, opts: { noise?: number; explore?: number } = {}): Policy {
  const rng = new Rng(seed ^ 0x5eed);
  return name === 'random' ? new RandomPolicy(rng) : new ScriptedExpert(expertScript(task), rng, opts.noise ?? 0, opts.explore ?? 0);
}
