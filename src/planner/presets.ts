/**
 * Planner presets (policies/NAME.json, and the experiments in policies/experiments/NAME.json):
 * optimiser, budget, rollout and cost settings, validated field by field. Every error names the
 * file and the field; unknown fields are errors too, so a misspelt setting never silently falls
 * back to something else. The rollout and cost sections are read by the world-model scorer (flow
 * steps, integrator, cost weights), not by the optimiser.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Integrator } from '../flow/sampler.js';
import { UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';
import { OPTIMIZER_KINDS, type OptimizerKind, type OptimizerSettings } from './optimizer.js';
import type { WarmStartPad } from './sequence.js';
import type { PoseHandover } from './goal-sequence.js';
import type { GoalPriorSettings } from './goal-priors.js';
import type { ClosedGoalPush } from './goal-state-reading.js';
import { EMPTY_ATS, HAND_BACKS, type EmptyAt, type HandBack, type TakeoverSettings } from './grasp-takeover.js';
import { NO_PINS, type ActionPins } from './pinned-actions.js';
import type { CostWeights } from './plan-model.js';

export interface PlannerPreset {
  name: string;
  description?: string;
  optimizer: Omit<OptimizerSettings, 'actionDim'>;
  /** Time budget per plan (ms); the plan is emitted when it is spent. */
  budgetMs: number;
  /** Extra time before a plan counts as a missed deadline (safe action). */
  graceMs: number;
  rollout: { flowSteps: number; integrator: Integrator; actionGuidance?: number };
  cost: CostWeights;
  /** Actions executed from each plan before replanning (receding horizon). */
  executeSteps: number;
  /** Action parts taken out of the search (optional section `actions`). */
  actions: ActionPins;
  /** Storyboard pictures also count as reached by the reported gripper pose (optional section `handover`; src/planner/goal-sequence.ts). */
  handover?: PoseHandover;
  /** Score the straight move to the goal's recorded gripper position in each plan (optional, default false; src/planner/gripper-position.ts). */
  poseProposal: boolean;
  /**
   * Where the goal's gripper positions and open/closed states come from, for the fields that use
   * them (cost.pose, handover, poseProposal, actions.gripper "goal", actions.carry): `recorded`
   * (absent = recorded) takes what a storyboard recorded with its pictures (an oracle), `read` reads
   * them off the pictures with the model directory's state reader (src/planner/goal-state-reading.ts).
   */
  goalState?: GoalState;
  /**
   * With goalState "read": metres to aim past a closed-gripper goal's read position, along the move
   * from where the gripper was when that goal came (absent = 0; src/planner/goal-state-reading.ts).
   */
  closedGoalOvershoot?: number;
  /**
   * With goalState "read": a reached closed-gripper goal aimed further while it stays current (optional
   * section `closedGoalPush`, metres; src/planner/goal-state-reading.ts).
   */
  closedGoalPush?: ClosedGoalPush;
  /**
   * Where proposals (the `policy` kind's action, CEM's and MPPI's proposalFraction) come from:
   * `joint` (absent = joint) is the world model's joint video-action query, `policy` the model
   * directory's action policy, which reads the current picture, the robot state and the
   * instruction (src/planner/policy-proposals.ts).
   */
  proposer?: Proposer;
  /**
   * With proposer "policy": the scale of the Gaussian noise the policy's samples start from (absent = 1).
   * 1 samples the distribution it learnt, expert noise and exploration moves included; lower values
   * keep to its likelier chunks, 0 gives one chunk per picture.
   */
  proposerNoise?: number;
  /**
   * Hands the pictures of a grasp to the model directory's action policy (optional section
   * `policyGrasp`; src/planner/policy-grasp.ts): the search keeps the approach, carries, placements
   * and pulls.
   */
  policyGrasp?: PolicyGraspSettings;
  /**
   * With goalState "read": what the robot's own state corrects in a read goal while its fingers
   * hold something (optional section `goalPriors`; src/planner/goal-priors.ts).
   */
  goalPriors?: GoalPriorSettings;
}

/** Preset section `policyGrasp` (src/planner/policy-grasp.ts). */
export interface PolicyGraspSettings {
  /** Metres a picture must lie below the gripper, when it comes, to count as a descent onto something. */
  drop: number;
  /** Metres it may lie to the side of the gripper and still count as straight below. */
  across: number;
  /** 1: execute one chunk the policy samples; more: rank candidates - 1 samples and the search's mean by their imagined futures. */
  candidates: number;
  /** Scale of the noise the policy's samples start from (0: its one likeliest chunk). */
  noise: number;
  /** Also a picture within `across` of the gripper after it came down `drop` since the previous picture came (absent = false). */
  inPlace?: boolean;
  /** Finger openings (m) by which the policy takes every goal after an empty grasp (src/planner/grasp-takeover.ts); off when absent. */
  takeover?: TakeoverSettings;
  /**
   * The policy takes grasps only where the goal's instruction contains one of these words (e.g.
   * "drawer": the knob, a target of a few pixels the reader places less well than the policy
   * finds it); the search grasps everything else. Absent: every instruction.
   */
  instructionWords?: string[];
}

export const GOAL_STATES = ['recorded', 'read'] as const;
export type GoalState = (typeof GOAL_STATES)[number];
export const PROPOSERS = ['joint', 'policy'] as const;
export type Proposer = (typeof PROPOSERS)[number];

const FIELDS = {
  top: [
    'name',
    'description',
    'optimizer',
    'budgetMs',
    'graceMs',
    'rollout',
    'cost',
    'executeSteps',
    'actions',
    'handover',
    'poseProposal',
    'goalState',
    'closedGoalOvershoot',
    'closedGoalPush',
    'proposer',
    'proposerNoise',
    'policyGrasp',
    'goalPriors',
  ],
  optimizer: [
    'kind',
    'horizon',
    'candidates',
    'iterations',
    'elites',
    'temperature',
    'initStd',
    'minStd',
    'proposalFraction',
    'warmStartPad',
  ],
  rollout: ['flowSteps', 'integrator', 'actionGuidance'],
  cost: ['representation', 'pixel', 'pyramid', 'change', 'reach', 'pose', 'actionMagnitude', 'terminal'],
  actions: ['hold', 'gripper', 'speed', 'carry'],
  carry: ['speed', 'minOpening'],
  handover: ['pose', 'finger'],
  closedGoalPush: ['step', 'reach', 'max'],
  policyGrasp: ['drop', 'across', 'candidates', 'noise', 'inPlace', 'takeover', 'instructionWords'],
  takeover: ['emptyBelow', 'openAbove', 'handBack', 'emptyAt'],
  goalPriors: ['holdingAbove', 'atGrasp', 'setDown'],
  setDown: ['carriedAbove', 'within'],
} as const;

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function validatePreset(raw: unknown, file: string): PlannerPreset {
  const f = (k: string) => `${file}: '${k}'`;
  const section = (v: unknown, name: keyof typeof FIELDS, prefix: string): Json => {
    if (!isObject(v))
      throw new UserError(
        prefix ? `${f(prefix)} must be an object, got ${JSON.stringify(v)}` : `${file}: a planner preset must be a JSON object`,
      );
    const allowed: readonly string[] = FIELDS[name];
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k))
        throw new UserError(
          `${f(prefix ? `${prefix}.${k}` : k)} is not a preset field (${prefix || 'top level'} has: ${allowed.join(', ')})`,
        );
    }
    return v;
  };
  const num = (v: unknown, where: string, min: number, max = Infinity, integer = false): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UserError(`${f(where)} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const oneOf = <T extends string>(v: unknown, where: string, options: readonly T[]): T => {
    if (typeof v !== 'string' || !options.includes(v as T))
      throw new UserError(`${f(where)} must be ${options.map((x) => JSON.stringify(x)).join(' or ')}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const proposerNoise = (v: unknown): number => {
    if (top.proposer !== 'policy')
      throw new UserError(`${f('proposerNoise')} applies only with proposer "policy" (the action policy's sampling)`);
    return num(v, 'proposerNoise', 0, 2);
  };
  /** Fields that change the goals the state reader reads, so they need goalState "read". */
  const readOnly = (field: string, what: string): void => {
    if (top.goalState !== 'read') throw new UserError(`${f(field)} applies only with goalState "read" (it ${what} the state reader reads)`);
  };
  const overshoot = (v: unknown): number => {
    readOnly('closedGoalOvershoot', 'moves the goal');
    return num(v, 'closedGoalOvershoot', 0, 0.05);
  };
  const closedGoalPush = (v: unknown): ClosedGoalPush => {
    readOnly('closedGoalPush', 'moves the goal');
    const p = section(v, 'closedGoalPush', 'closedGoalPush');
    return {
      step: num(p.step, 'closedGoalPush.step', 0.001, 0.05),
      reach: num(p.reach, 'closedGoalPush.reach', 0, 0.1),
      max: num(p.max, 'closedGoalPush.max', 0, 0.3),
    };
  };
  const goalPriors = (gp: Json): GoalPriorSettings => {
    readOnly('goalPriors', 'corrects the goals');
    const sd = gp.setDown === undefined ? undefined : section(gp.setDown, 'setDown', 'goalPriors.setDown');
    return {
      holdingAbove: num(gp.holdingAbove, 'goalPriors.holdingAbove', 0, 1),
      atGrasp: num(gp.atGrasp, 'goalPriors.atGrasp', 0, 1),
      ...(sd && {
        setDown: {
          carriedAbove: num(sd.carriedAbove, 'goalPriors.setDown.carriedAbove', 0, 1),
          within: num(sd.within, 'goalPriors.setDown.within', 0, 1),
        },
      }),
    };
  };
  const takeover = (t: Json): TakeoverSettings => {
    const emptyBelow = num(t.emptyBelow, 'policyGrasp.takeover.emptyBelow', 0, 1);
    const openAbove = num(t.openAbove, 'policyGrasp.takeover.openAbove', 0, 1);
    if (openAbove <= emptyBelow)
      throw new UserError(`${f('policyGrasp.takeover.openAbove')} must be above emptyBelow (${emptyBelow}), got ${openAbove}`);
    return {
      emptyBelow,
      openAbove,
      ...(t.handBack !== undefined && { handBack: oneOf<HandBack>(t.handBack, 'policyGrasp.takeover.handBack', HAND_BACKS) }),
      ...(t.emptyAt !== undefined && { emptyAt: oneOf<EmptyAt>(t.emptyAt, 'policyGrasp.takeover.emptyAt', EMPTY_ATS) }),
    };
  };
  const words = (v: unknown, where: string): string[] => {
    // Instructions are matched word by word (letters and digits), so a word holding anything else could never match.
    if (!Array.isArray(v) || !v.length || v.some((w) => typeof w !== 'string' || !/^[a-z0-9]+$/i.test(w.trim())))
      throw new UserError(`${f(where)} must be a list of one or more words of letters and digits, got ${JSON.stringify(v)}`);
    return v.map((w: string) => w.trim().toLowerCase());
  };
  const bool = (v: unknown, where: string): boolean => {
    if (typeof v !== 'boolean') throw new UserError(`${f(where)} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const text = (v: unknown, where: string): string | undefined => {
    if (v !== undefined && typeof v !== 'string') throw new UserError(`${f(where)} must be a string, got ${JSON.stringify(v)}`);
    return v;
  };

  const top = section(raw, 'top', '');
  const o = section(top.optimizer, 'optimizer', 'optimizer');
  const r = section(top.rollout, 'rollout', 'rollout');
  const c = section(top.cost, 'cost', 'cost');
  const act = top.actions === undefined ? undefined : section(top.actions, 'actions', 'actions');
  const carry = act?.carry === undefined ? undefined : section(act.carry, 'carry', 'actions.carry');
  const ho = top.handover === undefined ? undefined : section(top.handover, 'handover', 'handover');
  const pg = top.policyGrasp === undefined ? undefined : section(top.policyGrasp, 'policyGrasp', 'policyGrasp');
  const gp = top.goalPriors === undefined ? undefined : section(top.goalPriors, 'goalPriors', 'goalPriors');
  let hold: Record<string, number> = {};
  if (act?.hold !== undefined) {
    if (!isObject(act.hold))
      throw new UserError(`${f('actions.hold')} must be an object of action name -> raw value, got ${JSON.stringify(act.hold)}`);
    hold = Object.fromEntries(Object.entries(act.hold).map(([k, v]) => [k, num(v, `actions.hold.${k}`, -Infinity)]));
  }
  const candidates = num(o.candidates, 'optimizer.candidates', 2, 4096, true);
  const horizon = num(o.horizon, 'optimizer.horizon', 1, 64, true);
  const initStd = num(o.initStd, 'optimizer.initStd', 0, 2);
  const minStd = num(o.minStd, 'optimizer.minStd', 0, 2);
  if (minStd > initStd) throw new UserError(`${f('optimizer.minStd')} (${minStd}) must not exceed 'optimizer.initStd' (${initStd})`);
  return {
    name: text(top.name, 'name') ?? file,
    description: text(top.description, 'description'),
    optimizer: {
      kind: oneOf<OptimizerKind>(o.kind, 'optimizer.kind', OPTIMIZER_KINDS),
      horizon,
      candidates,
      iterations: num(o.iterations, 'optimizer.iterations', 1, 1000, true),
      elites: num(o.elites, 'optimizer.elites', 1, candidates, true),
      temperature: num(o.temperature, 'optimizer.temperature', 1e-6),
      initStd,
      minStd,
      proposalFraction: num(o.proposalFraction, 'optimizer.proposalFraction', 0, 1),
      warmStartPad: oneOf<WarmStartPad>(o.warmStartPad, 'optimizer.warmStartPad', ['repeat', 'zero']),
    },
    budgetMs: num(top.budgetMs, 'budgetMs', 1),
    graceMs: num(top.graceMs, 'graceMs', 0),
    rollout: {
      flowSteps: num(r.flowSteps, 'rollout.flowSteps', 1, 100, true),
      integrator: oneOf<Integrator>(r.integrator, 'rollout.integrator', ['euler', 'heun']),
      // Optional (added later): presets written before it imagine without guidance.
      ...(r.actionGuidance === undefined ? {} : { actionGuidance: num(r.actionGuidance, 'rollout.actionGuidance', 0, 10) }),
    },
    cost: {
      representation: num(c.representation, 'cost.representation', 0),
      pixel: num(c.pixel, 'cost.pixel', 0),
      // Optional (added later): presets written before it keep their meaning.
      pyramid: c.pyramid === undefined ? 0 : num(c.pyramid, 'cost.pyramid', 0),
      change: c.change === undefined ? 0 : num(c.change, 'cost.change', 0),
      reach: c.reach === undefined ? 0 : num(c.reach, 'cost.reach', 0),
      pose: c.pose === undefined ? 0 : num(c.pose, 'cost.pose', 0),
      actionMagnitude: num(c.actionMagnitude, 'cost.actionMagnitude', 0),
      terminal: num(c.terminal, 'cost.terminal', 0, 1),
    },
    executeSteps: num(top.executeSteps, 'executeSteps', 1, horizon, true),
    actions: act
      ? {
          hold,
          gripper: act.gripper === undefined ? 'plan' : oneOf<'plan' | 'goal'>(act.gripper, 'actions.gripper', ['plan', 'goal']),
          ...(act.speed !== undefined && { speed: num(act.speed, 'actions.speed', 0.001, 1) }),
          ...(carry && {
            carry: {
              speed: num(carry.speed, 'actions.carry.speed', 0.001, 1),
              minOpening: num(carry.minOpening, 'actions.carry.minOpening', -1, 1),
            },
          }),
        }
      : NO_PINS,
    poseProposal: top.poseProposal === undefined ? false : bool(top.poseProposal, 'poseProposal'),
    ...(top.goalState !== undefined && { goalState: oneOf<GoalState>(top.goalState, 'goalState', GOAL_STATES) }),
    ...(top.closedGoalOvershoot !== undefined && { closedGoalOvershoot: overshoot(top.closedGoalOvershoot) }),
    ...(top.closedGoalPush !== undefined && { closedGoalPush: closedGoalPush(top.closedGoalPush) }),
    ...(top.proposer !== undefined && { proposer: oneOf<Proposer>(top.proposer, 'proposer', PROPOSERS) }),
    ...(top.proposerNoise !== undefined && { proposerNoise: proposerNoise(top.proposerNoise) }),
    ...(ho && { handover: { pose: num(ho.pose, 'handover.pose', 0, 1), finger: num(ho.finger, 'handover.finger', 0, 1) } }),
    ...(pg && {
      policyGrasp: {
        drop: num(pg.drop, 'policyGrasp.drop', 0, 1),
        across: num(pg.across, 'policyGrasp.across', 0, 1),
        candidates: num(pg.candidates, 'policyGrasp.candidates', 1, 256, true),
        noise: num(pg.noise, 'policyGrasp.noise', 0, 2),
        ...(pg.inPlace !== undefined && { inPlace: bool(pg.inPlace, 'policyGrasp.inPlace') }),
        ...(pg.takeover !== undefined && { takeover: takeover(section(pg.takeover, 'takeover', 'policyGrasp.takeover')) }),
        ...(pg.instructionWords !== undefined && { instructionWords: words(pg.instructionWords, 'policyGrasp.instructionWords') }),
      },
    }),
    ...(gp && { goalPriors: goalPriors(gp) }),
  };
}

/** The optimiser and loop settings of a preset for a model with `actionDim` action values (for createOptimizingPlanner). */
export function presetPlannerSettings(
  p: PlannerPreset,
  actionDim: number,
): { optimizer: OptimizerSettings; budgetMs: number; graceMs: number; executeSteps: number } {
  if (!Number.isInteger(actionDim) || actionDim < 1) throw new Error(`action dimension must be a positive integer, got ${actionDim}`);
  return { optimizer: { ...p.optimizer, actionDim }, budgetMs: p.budgetMs, graceMs: p.graceMs, executeSteps: p.executeSteps };
}

/**
 * The preset fields that read what a storyboard recorded with its goal pictures: the gripper's
 * position (`cost.pose`, `handover`, `poseProposal`) or its open/closed state (`actions.gripper:
 * "goal"`, and `actions.carry`, which caps moves while the goal says closed; `policyGrasp` reads
 * both). A real robot's goal
 * carries neither, so a preset that sets any of them is an oracle: it lives in
 * policies/experiments/ as `oracle-...`, never among the product presets. With `goalState: "read"`
 * those fields use what the state reader sees in the pictures, and none of them reads a recording.
 */
export function recordedGoalFields(p: PlannerPreset): string[] {
  const out: string[] = [];
  if (p.goalState === 'read') return out;
  if (p.cost.pose > 0) out.push('cost.pose');
  if (p.handover) out.push('handover');
  if (p.poseProposal) out.push('poseProposal');
  if (p.actions.gripper === 'goal') out.push('actions.gripper');
  if (p.actions.carry) out.push('actions.carry');
  if (p.policyGrasp) out.push('policyGrasp');
  return out;
}

/** Experiment presets (policies/experiments/) are loaded by this prefix, so no product name reaches one by accident. */
export const EXPERIMENTS_PREFIX = 'experiments/';

function jsonNames(dir: string, prefix = ''): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => n.endsWith('.json'))
        .map((n) => prefix + n.slice(0, -5))
        .sort()
    : [];
}

/** Names of the product presets shipped in policies/ (the experts live in policies/experts/). */
export function presetNames(): string[] {
  return jsonNames(join(packageRoot(), 'policies'));
}

/** Names of the experiment presets, `experiments/NAME` for policies/experiments/NAME.json. */
export function experimentPresetNames(): string[] {
  return jsonNames(join(packageRoot(), 'policies', 'experiments'), EXPERIMENTS_PREFIX);
}

/**
 * `--policy NAME` -> policies/NAME.json; `experiments/NAME` -> policies/experiments/NAME.json; a
 * path (any other name with a slash, or one ending in .json) is read as given.
 */
export function loadPlannerPreset(nameOrPath: string): PlannerPreset {
  const experiment =
    nameOrPath.startsWith(EXPERIMENTS_PREFIX) &&
    /^[\w.-]+$/.test(nameOrPath.slice(EXPERIMENTS_PREFIX.length)) &&
    !nameOrPath.endsWith('.json');
  const isPath = !experiment && (nameOrPath.includes('/') || nameOrPath.endsWith('.json'));
  const file = isPath ? nameOrPath : join(packageRoot(), 'policies', `${nameOrPath}.json`);
  if (!existsSync(file)) {
    if (isPath) throw new UserError(`${file}: planner preset not found`);
    if (!experiment && existsSync(join(packageRoot(), 'policies', 'experiments', `${nameOrPath}.json`))) {
      throw new UserError(
        `planner preset '${nameOrPath}' is an experiment, not a product preset: did you mean ${EXPERIMENTS_PREFIX}${nameOrPath}?`,
      );
    }
    throw new UserError(
      `planner preset '${nameOrPath}' not found (${file}); shipped presets: ${presetNames().join(', ')}; experiments: ${experimentPresetNames().join(', ')}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return validatePreset(raw, file);
}
