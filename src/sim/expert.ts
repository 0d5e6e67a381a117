/**
 * Scripted experts (privileged state) and the random policy. An expert is a list of phases read
 * from policies/experts/TASK.json: each phase moves the gripper to a waypoint defined relative to
 * a scene anchor (an object, the drawer knob, the drawer interior) and sets the gripper; a phase
 * ends when the waypoint is reached or after its step budget. Optional action noise and random
 * exploration segments make collected data diverse. In labelling mode the expert does not act: it
 * names the move it would make from whatever state another policy reached (DAgger's labels).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rt1Action } from '../core/action.js';
import { UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';
import { Rng } from '../util/rng.js';
import { intoWorkspace, LIMITS, type SimEnv, type StepResult } from './env.js';
import { distance, type Vec3 } from '../util/vec3.js';

export interface Policy {
  reset(env: SimEnv): void;
  act(result: StepResult): Rt1Action;
}

/** Waypoint anchors: task objects, the drawer knob (now / when closed), the drawer interior, the gripper now, at episode start, or at phase start. */
const ANCHORS = ['target0', 'target1', 'beside_target1', 'knob', 'knob_closed', 'drawer_interior', 'gripper', 'start', 'here'] as const;
type Anchor = (typeof ANCHORS)[number];

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
  /**
   * Gripper yaw to hold (rad): a number, 'align' (square to target 0, a block: its yaw folded into
   * [-45, 45] degrees) or 'keep' (the yaw at phase start). Default 0. The phase is reached only
   * once the yaw is within 0.05 rad too, so exploration segments that turn the gripper are undone.
   */
  yaw?: number | 'align' | 'keep';
  /**
   * The task stage this phase works towards (default 0). Before entering a phase of a later stage
   * (or ending the script) with the current stage not reached (a knob slipped, an apple dropped),
   * the expert starts over from the first phase of the current stage, up to MAX_RETRIES times.
   */
  stage?: number;
}

const MAX_RETRIES = 3;

/** Distance (m) at which a waypoint counts as reached when its phase sets no tolerance. */
export const DEFAULT_WAYPOINT_TOLERANCE = 0.012;
/** Labelling: closed fingers wider than this (m) hold something (closed on nothing they meet; on the knob they stay 2 cm apart). */
const HOLDING_ABOVE = 0.008;
/** Labelling: how near (m) the gripper must be to where the expert's own descent would grasp an object to count as holding it. */
const GRASP_REACH = 0.03;
/** Labelling: how far (m) the robot must move from where it let go of a finished stage's object before the expert's retreat is moot. */
const LET_GO_CLEAR = 0.08;

interface ExpertScript {
  task: string;
  phases: Phase[];
}

const scripts = new Map<string, ExpertScript>();

export function expertScript(task: string): ExpertScript {
  let s = scripts.get(task);
  if (!s) {
    const file = join(packageRoot(), 'policies', 'experts', `${task}.json`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UserError(`${file}: cannot read expert script (${(e as Error).message})`);
    }
    s = validateScript(raw, file);
    scripts.set(task, s);
  }
  return s;
}

/** Checks a parsed expert script field by field; errors name the file, the phase and the field. */
export function validateScript(raw: unknown, file: string): ExpertScript {
  const fail = (where: string, msg: string): never => {
    throw new UserError(`${file}: ${where}: ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null) fail('top level', 'expected an object with "task" and "phases"');
  const o = raw as Record<string, unknown>;
  if (typeof o.task !== 'string') fail('"task"', 'expected a task name string');
  if (!Array.isArray(o.phases) || o.phases.length === 0) fail('"phases"', 'expected a non-empty array');
  const known = new Set(['name', 'anchor', 'offset', 'gripper', 'tolerance', 'hold', 'maxSteps', 'speed', 'yaw', 'stage']);
  (o.phases as unknown[]).forEach((p, i) => {
    const where = `phase ${i}`;
    if (typeof p !== 'object' || p === null) fail(where, 'expected an object');
    const ph = p as Record<string, unknown>;
    for (const k of Object.keys(ph))
      if (!known.has(k)) fail(`${where} ("${String(ph.name)}")`, `unknown field "${k}" (known: ${[...known].join(', ')})`);
    const at = `${where} ("${String(ph.name)}")`;
    if (typeof ph.name !== 'string') fail(where, '"name" must be a string');
    if (!ANCHORS.includes(ph.anchor as Anchor)) fail(at, `"anchor" must be one of ${ANCHORS.join(', ')}, got ${JSON.stringify(ph.anchor)}`);
    if (!Array.isArray(ph.offset) || ph.offset.length !== 3 || !ph.offset.every((v) => typeof v === 'number' && Number.isFinite(v)))
      fail(at, `"offset" must be 3 numbers (m), got ${JSON.stringify(ph.offset)}`);
    if (!['open', 'close', 'keep'].includes(ph.gripper as string))
      fail(at, `"gripper" must be open, close or keep, got ${JSON.stringify(ph.gripper)}`);
    for (const k of ['tolerance', 'speed'] as const)
      if (ph[k] !== undefined && !(typeof ph[k] === 'number' && ph[k] > 0))
        fail(at, `"${k}" must be a positive number, got ${JSON.stringify(ph[k])}`);
    for (const k of ['hold', 'maxSteps'] as const)
      if (ph[k] !== undefined && !(Number.isInteger(ph[k]) && (ph[k] as number) >= (k === 'hold' ? 0 : 1)))
        fail(at, `"${k}" must be an integer >= ${k === 'hold' ? 0 : 1}, got ${JSON.stringify(ph[k])}`);
    if (ph.stage !== undefined && !(Number.isInteger(ph.stage) && (ph.stage as number) >= 0))
      fail(at, `"stage" must be an integer >= 0, got ${JSON.stringify(ph.stage)}`);
    if (
      ph.yaw !== undefined &&
      ph.yaw !== 'align' &&
      ph.yaw !== 'keep' &&
      !(typeof ph.yaw === 'number' && Math.abs(ph.yaw) <= LIMITS.yaw[1])
    )
      fail(at, `"yaw" must be 'align', 'keep' or a number within ±${LIMITS.yaw[1]} rad, got ${JSON.stringify(ph.yaw)}`);
  });
  return raw as ExpertScript;
}

const wrapAngle = (a: number) => Math.atan2(Math.sin(a), Math.cos(a));

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
  private exploreYaw = 0;
  private phaseStartYaw = 0;
  private retries = 0;
  private advanced = false;
  /** Labelling: where the robot let go after a finished stage's grasp (see skipDoneStage). */
  private letGoAt: Vec3 | null = null;

  constructor(
    readonly script: ExpertScript,
    private readonly rng: Rng,
    /** Gaussian action noise (std, metres per step) added to every move. */
    private readonly noise = 0,
    /** Probability per step of starting a short random exploration segment. */
    private readonly explore = 0,
    /**
     * Labelling mode (src/eval/dagger.ts): another policy moves the robot, so every label must be
     * the move towards the current waypoint. Reach phases wait for their waypoint instead of giving
     * up after 25 steps, a stage the other policy finished is skipped (before the expert's grasp of
     * it, or once the robot has let go and moved clear), so are the approach and the grasp of an
     * object the other policy already holds, a lift's waypoint counts as passed once the robot is
     * nearer the next one, waypoints are clamped to the workspace, and retries are unlimited, so
     * the labels never stop at a half-done script.
     */
    private readonly labelling = false,
  ) {}

  /** Index of the phase being worked on (phases.length when the script is done). */
  get phaseIndex(): number {
    return this.phase;
  }

  /** `fromPhase`: start the script part-way (a storyboard of what is still to do). */
  reset(env: SimEnv, fromPhase = 0): void {
    this.env = env;
    this.phase = Math.min(fromPhase, this.script.phases.length);
    this.inPhase = 0;
    this.held = 0;
    this.exploring = 0;
    this.retries = 0;
    this.advanced = false;
    this.letGoAt = null;
    this.start = env.scene.gripper().pos;
    this.phaseStart = this.start;
    this.phaseStartYaw = env.scene.gripper().yaw;
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

  private yawTarget(y: Phase['yaw']): number {
    if (y === 'keep') return this.phaseStartYaw;
    if (y === 'align') {
      const t0 = this.env.taskSetup.targets[0];
      if (!t0) return 0;
      // A square block looks the same every 90 degrees: turn the least.
      const q = Math.PI / 2;
      const a = this.env.scene.bodyYaw(t0);
      return a - q * Math.round(a / q);
    }
    return y ?? 0;
  }

  /** On entering a later stage's phases (or the end) with the current stage not reached: back to that stage's first phase. */
  private retryIfStageMissed(result: StepResult): void {
    const phases = this.script.phases;
    const next = this.phase < phases.length ? (phases[this.phase]!.stage ?? 0) : result.stageCount;
    if (result.success || result.stagesDone >= next || (!this.labelling && this.retries >= MAX_RETRIES)) return;
    const from = phases.findIndex((p) => (p.stage ?? 0) === result.stagesDone);
    if (from < 0) return;
    this.retries++;
    this.phase = from;
    this.letGoAt = null;
  }

  /**
   * Labelling: when the stage of the current phase is already done and the expert has not yet
   * grasped for it, its remaining phases are moot; the labels go on with the first unfinished stage.
   * After its grasp the expert labels the rest of the stage while the robot holds on: timed phases
   * (a pull) run on as the demonstrating expert's do, and a reach phase still waiting for its
   * waypoint (above the drawer, with the apple already lying in it) gives way to the release.
   * Once the robot has let go, the labels are the release and the retreat, which clear the drawer,
   * until the robot has moved LET_GO_CLEAR from where it let go on its own way; then the rest is
   * moot. A retreat waypoint the robot never passes would hold the labels there, "open, go back",
   * through the next stage (docs/results.md, item 34), and a pull it cut short would label "close
   * the fingers, back to the drawer" for the rest of its 16 steps (item 35).
   */
  private skipDoneStage(result: StepResult, g: Vec3, yaw: number): void {
    const phases = this.script.phases;
    const ph = phases[this.phase];
    if (!ph || (ph.stage ?? 0) >= result.stagesDone) return;
    const stage = ph.stage ?? 0;
    const grasp = phases.findIndex((p) => (p.stage ?? 0) === stage && p.gripper === 'close');
    if (grasp >= 0 && this.phase > grasp) {
      const release = phases.findIndex((p, i) => i > this.phase && (p.stage ?? 0) === stage && p.gripper === 'open');
      if (this.env.gripperClosedCommanded) {
        if (ph.gripper === 'close' && ph.maxSteps === undefined && release > 0) this.enterPhase(release, g, yaw);
        return;
      }
      this.letGoAt ??= g;
      if (distance(g, this.letGoAt) <= LET_GO_CLEAR) {
        if (ph.gripper === 'close' && release > 0) this.enterPhase(release, g, yaw);
        return;
      }
    }
    const next = phases.findIndex((p) => (p.stage ?? 0) >= result.stagesDone);
    this.enterPhase(next < 0 ? phases.length : next, g, yaw);
    this.letGoAt = null;
  }

  /**
   * Labelling: fingers the other policy has closed on the object the current stage grasps are
   * labelled with the moves after the grasp (lift, carry, pull). Without this the labels would send
   * the robot back to approach an object it already holds, with the fingers open, and a policy
   * trained on them would learn to let go of what it carries. Held: the fingers were
   * commanded closed and stopped on something (wider than HOLDING_ABOVE), within GRASP_REACH of
   * where the stage's descent would have put the gripper.
   */
  private skipHeldGrasp(g: Vec3, yaw: number): void {
    const phases = this.script.phases;
    const ph = phases[this.phase];
    if (!ph || ph.gripper === 'close') return;
    const stage = ph.stage ?? 0;
    const grasp = phases.findIndex((p, i) => i > this.phase && (p.stage ?? 0) === stage && p.gripper === 'close');
    if (grasp < 1 || !this.env.gripperClosedCommanded || this.env.scene.gripper().opening <= HOLDING_ABOVE) return;
    const at = this.waypoint(phases[grasp - 1]!);
    if (distance(g, at) > GRASP_REACH) return;
    this.enterPhase(grasp + 1, g, yaw);
  }

  /**
   * Labelling: a gripper already on the vertical line from an approach waypoint down to the next
   * one (above the can, then down to it) is labelled with the descent, as the expert's own path
   * through that state would be, not sent back up to the higher waypoint first.
   */
  private skipToDescent(g: Vec3, yaw: number): void {
    const phases = this.script.phases;
    const ph = phases[this.phase];
    const nx = phases[this.phase + 1];
    if (!ph || !nx || ph.maxSteps !== undefined || nx.maxSteps !== undefined || nx.anchor !== ph.anchor) return;
    if (nx.offset[0] !== ph.offset[0] || nx.offset[1] !== ph.offset[1] || nx.offset[2] >= ph.offset[2]) return;
    const a = this.anchor(ph.anchor);
    const across = Math.hypot(g[0] - a[0] - ph.offset[0], g[1] - a[1] - ph.offset[1]);
    if (across < (ph.tolerance ?? DEFAULT_WAYPOINT_TOLERANCE) && g[2] < a[2] + ph.offset[2]) {
      this.enterPhase(this.phase + 1, g, yaw);
      this.advanced = true;
    }
  }

  /**
   * Labelling: a waypoint relative to where its phase began (a lift: 32 cm up from the grasp) marks
   * a path, not a place the task needs. Once the gripper is nearer the next waypoint than this one
   * is (the other policy carried the apple up and across at once), the waypoint counts as passed;
   * otherwise the labels would send a robot halfway to the drawer back over the apple's old spot
   * (docs/results.md, item 35). Only while carrying (closed fingers in both phases): a retreat after
   * a release clears the drawer, and skipDoneStage decides when it is moot.
   */
  private passRelativeWaypoint(g: Vec3, yaw: number): void {
    const phases = this.script.phases;
    const ph = phases[this.phase];
    const nx = phases[this.phase + 1];
    if (!ph || !nx || ph.anchor !== 'here' || nx.anchor === 'here' || ph.maxSteps !== undefined) return;
    if (ph.gripper !== 'close' || nx.gripper !== 'close') return;
    const next = this.waypoint(nx);
    if (distance(g, next) < distance(this.waypoint(ph), next)) this.enterPhase(this.phase + 1, g, yaw);
  }

  /**
   * Where a phase sends the gripper. In labelling mode it is clamped to the robot's workspace: a
   * retreat 11 cm up from an apple let go near the top of the workspace is out of reach, and a
   * labeller waiting for it would label "open, go up" to the end of the episode, where the
   * demonstrating expert gives up after 25 steps and starts the stage over (docs/results.md, item 35).
   */
  private waypoint(ph: Phase): Vec3 {
    const a = this.anchor(ph.anchor);
    const w: Vec3 = [a[0] + ph.offset[0], a[1] + ph.offset[1], a[2] + ph.offset[2]];
    return this.labelling ? intoWorkspace(w) : w;
  }

  private enterPhase(i: number, g: Vec3, yaw: number): void {
    this.phase = i;
    this.phaseStart = g;
    this.phaseStartYaw = yaw;
    this.inPhase = 0;
    this.held = 0;
  }

  act(result: StepResult): Rt1Action {
    if (this.advanced && result) {
      this.advanced = false;
      this.retryIfStageMissed(result);
    }
    const grip = this.env.scene.gripper();
    const g = grip.pos;
    if (this.labelling && result) this.skipDoneStage(result, g, grip.yaw);
    if (this.labelling) this.skipHeldGrasp(g, grip.yaw);
    if (this.labelling) this.skipToDescent(g, grip.yaw);
    if (this.labelling) this.passRelativeWaypoint(g, grip.yaw);
    if (this.phase >= this.script.phases.length) return ZERO;
    if (this.exploring > 0) {
      this.exploring--;
      return { ...ZERO, worldVector: this.exploreDir, rotationDelta: [0, 0, this.exploreYaw] };
    }
    if (this.explore > 0 && this.rng.next() < this.explore) {
      this.exploring = 1 + this.rng.int(3);
      this.exploreDir = [this.rng.uniform(-0.04, 0.04), this.rng.uniform(-0.04, 0.04), this.rng.uniform(-0.02, 0.03)];
      this.exploreYaw = this.rng.uniform(-0.1, 0.1);
    }
    const ph = this.script.phases[this.phase]!;
    const goal = this.waypoint(ph);
    const delta: Vec3 = [goal[0] - g[0], goal[1] - g[1], goal[2] - g[2]];
    const dist = Math.hypot(...delta);
    const step = Math.min(1, (ph.speed ?? LIMITS.maxTranslation * 0.9) / Math.max(dist, 1e-9));
    const move: Vec3 = [delta[0] * step, delta[1] * step, delta[2] * step];
    const yawErr = wrapAngle(this.yawTarget(ph.yaw) - grip.yaw);
    let turn = Math.max(-0.9 * LIMITS.maxYaw, Math.min(0.9 * LIMITS.maxYaw, yawErr));
    if (this.noise > 0) {
      for (let i = 0; i < 3; i++) move[i] = move[i]! + this.rng.normal() * this.noise;
      turn += this.rng.normal() * this.noise * 2;
    }
    this.inPhase++;
    const reached = dist < (ph.tolerance ?? DEFAULT_WAYPOINT_TOLERANCE) && Math.abs(yawErr) < 0.05;
    if (reached) this.held++;
    const timedOut = ph.maxSteps !== undefined ? this.inPhase >= ph.maxSteps : !this.labelling && this.inPhase >= 25;
    if ((reached && this.held > (ph.hold ?? 0)) || timedOut) {
      this.enterPhase(this.phase + 1, g, grip.yaw);
      this.advanced = true;
    }
    return {
      worldVector: move,
      rotationDelta: [0, 0, turn],
      gripperClosedness: ph.gripper === 'close' ? 1 : ph.gripper === 'open' ? -1 : 0,
      terminateEpisode: [0, 1, 0],
    };
  }
}

/** Uniform random actions within the robot's limits, the gripper toggled now and then. */
export class RandomPolicy implements Policy {
  constructor(private readonly rng: Rng) {}
  reset(): void {}
  act(): Rt1Action {
    const r = this.rng;
    const m = LIMITS.maxTranslation;
    return {
      worldVector: [r.uniform(-m, m), r.uniform(-m, m), r.uniform(-m, m)],
      rotationDelta: [0, 0, r.uniform(-0.1, 0.1)],
      gripperClosedness: r.next() < 0.15 ? (r.next() < 0.5 ? 1 : -1) : 0,
      terminateEpisode: [0, 1, 0],
    };
  }
}

/** The random stream of a scripted policy on `seed` (noise, exploration, random moves). */
function policyRng(seed: number): Rng {
  return new Rng(seed ^ 0x5eed);
}

/** The expert as a labeller of states another policy reaches (no noise, no exploration). */
export function expertLabeller(task: string, seed: number): ScriptedExpert {
  return new ScriptedExpert(expertScript(task), policyRng(seed), 0, 0, true);
}

export function makeScriptedPolicy(
  name: 'expert' | 'random',
  task: string,
  seed: number,
  opts: { noise?: number; explore?: number } = {},
): Policy {
  const rng = policyRng(seed);
  return name === 'random' ? new RandomPolicy(rng) : new ScriptedExpert(expertScript(task), rng, opts.noise ?? 0, opts.explore ?? 0);
}
