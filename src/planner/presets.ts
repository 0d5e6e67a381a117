/** Planner presets (policies/NAME.json): optimiser, rollout and cost settings, validated field by field. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Integrator } from '../flow/sampler.js';
import { UserError } from '../util/errors.js';
import { packageRoot } from '../util/package-root.js';
import type { OptimizerKind, OptimizerSettings } from './optimizer.js';
import type { CostWeights } from './wm-scorer.js';

export interface PlannerPreset {
  name: string;
  description?: string;
  optimizer: Omit<OptimizerSettings, 'actionDim'>;
  /** Time budget per plan (ms); the plan is emitted when it is spent. */
  budgetMs: number;
  /** Extra time before a plan counts as a missed deadline (safe action). */
  graceMs: number;
  rollout: { flowSteps: number; integrator: Integrator };
  cost: CostWeights;
  /** Actions executed from each plan before replanning (receding horizon). */
  executeSteps: number;
}

function num(v: unknown, where: string, min: number, max = Infinity, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new UserError(`${where} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

export function validatePreset(raw: Record<string, unknown>, file: string): PlannerPreset {
  const o = (raw.optimizer ?? {}) as Record<string, unknown>;
  const r = (raw.rollout ?? {}) as Record<string, unknown>;
  const c = (raw.cost ?? {}) as Record<string, unknown>;
  const f = (k: string) => `${file}: '${k}'`;
  if (o.kind !== 'cem' && o.kind !== 'mppi') throw new UserError(`${f('optimizer.kind')} must be "cem" or "mppi", got ${JSON.stringify(o.kind)}`);
  if (r.integrator !== 'euler' && r.integrator !== 'heun') throw new UserError(`${f('rollout.integrator')} must be "euler" or "heun", got ${JSON.stringify(r.integrator)}`);
  if (o.warmStartPad !== 'repeat' && o.warmStartPad !== 'zero') throw new UserError(`${f('optimizer.warmStartPad')} must be "repeat" or "zero"`);
  const candidates = num(o.candidates, f('optimizer.candidates'), 2, 4096, true);
  const horizon = num(o.horizon, f('optimizer.horizon'), 1, 64, true);
  return {
    name: typeof raw.name === 'string' ? raw.name : file,
    description: typeof raw.description === 'string' ? raw.description : undefined,
    optimizer: {
      kind: o.kind as OptimizerKind,
      horizon,
      candidates,
      iterations: num(o.iterations, f('optimizer.iterations'), 1, 1000, true),
      elites: num(o.elites, f('optimizer.elites'), 1, candidates, true),
      temperature: num(o.temperature, f('optimizer.temperature'), 1e-6),
      initStd: num(o.initStd, f('optimizer.initStd'), 0, 2),
      minStd: num(o.minStd, f('optimizer.minStd'), 0, 2),
      proposalFraction: num(o.proposalFraction, f('optimizer.proposalFraction'), 0, 1),
      warmStartPad: o.warmStartPad,
    },
    budgetMs: num(raw.budgetMs, f('budgetMs'), 1),
    graceMs: num(raw.graceMs, f('graceMs'), 0),
    rollout: { flowSteps: num(r.flowSteps, f('rollout.flowSteps'), 1, 100, true), integrator: r.integrator },
    cost: {
      representation: num(c.representation, f('cost.representation'), 0),
      pixel: num(c.pixel, f('cost.pixel'), 0),
      actionMagnitude: num(c.actionMagnitude, f('cost.actionMagnitude'), 0),
      terminal: num(c.terminal, f('cost.terminal'), 0, 1),
    },
    executeSteps: num(raw.executeSteps, f('executeSteps'), 1, horizon, true),
  };
}

/** `--policy NAME` -> policies/NAME.json; a path is read as given. */
export function loadPlannerPreset(nameOrPath: string): PlannerPreset {
  const isPath = nameOrPath.includes('/') || nameOrPath.endsWith('.json');
  const file = isPath ? nameOrPath : join(packageRoot(), 'policies', `${nameOrPath}.json`);
  if (!existsSync(file)) throw new UserError(`${file}: planner preset not found`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return validatePreset(raw, file);
}
