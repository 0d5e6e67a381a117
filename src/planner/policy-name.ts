/**
 * The one reading of a policy name, as `eval --policy`, `serve --policy` and `plan --policy` take it:
 *
 *   expert, random          the simulator's scripted policies (they read the privileged simulator state)
 *   wm                      the world-model planner with the default preset
 *   PRESET, FILE.json       the world-model planner with that preset (policies/PRESET.json or a file)
 *   oracle, oracle:PRESET   the same planner with the simulator as its model (default preset, or PRESET)
 *   NAME@RUN                a planner policy NAME with the checkpoint RUN instead of --checkpoint
 *
 * Pure: no file is read here; the preset itself is loaded by src/planner/presets.ts.
 */
import { UserError } from '../core/errors.js';

export const SCRIPTED_POLICIES = ['expert', 'random'] as const;
export type ScriptedPolicyName = (typeof SCRIPTED_POLICIES)[number];

/**
 * The preset `wm` and `oracle` plan with: the gripper states a learned state reader sees in the goal
 * pictures steer the search (src/planner/goal-state-reading.ts), which wm-cem-fast's picture costs
 * alone could not (docs/results.md, items 12 and 13).
 */
export const DEFAULT_PRESET = 'wm-cem-read';

/** A policy that plans: with the world model, or with the simulator as its model (oracle). */
export interface PlannerPolicy {
  kind: 'world-model' | 'oracle';
  /** A preset name in policies/, or a preset file path. */
  preset: string;
}

export type PolicySpec = { kind: 'scripted'; policy: ScriptedPolicyName } | (PlannerPolicy & { checkpoint?: string });

export function isScriptedPolicy(name: string): name is ScriptedPolicyName {
  return (SCRIPTED_POLICIES as readonly string[]).includes(name);
}

/** A planner policy name without `@RUN`: `oracle[:PRESET]`, `wm`, a preset name or file. */
export function plannerPolicy(name: string): PlannerPolicy {
  if (name.startsWith('oracle:')) return { kind: 'oracle', preset: plannerPolicy(name.slice('oracle:'.length)).preset };
  if (name === 'oracle') return { kind: 'oracle', preset: DEFAULT_PRESET };
  return { kind: 'world-model', preset: name === 'wm' ? DEFAULT_PRESET : name };
}

/**
 * Any policy name. `PRESET@RUN` plans with that preset and that checkpoint, so two models (an
 * ablation) can be evaluated side by side in one report; without `@` the caller's --checkpoint is used.
 */
export function resolvePolicy(policy: string): PolicySpec {
  const at = policy.indexOf('@');
  if (at < 0) return isScriptedPolicy(policy) ? { kind: 'scripted', policy } : plannerPolicy(policy);
  const name = policy.slice(0, at);
  const checkpoint = policy.slice(at + 1);
  if (!name || !checkpoint) throw new UserError(`policy '${policy}': expected PRESET@RUN_DIRECTORY`);
  if (isScriptedPolicy(name)) throw new UserError(`policy '${policy}': scripted policies take no checkpoint`);
  return { ...plannerPolicy(name), checkpoint };
}

/** Whether a policy plans with the model of the caller's --checkpoint (a planner without its own `@RUN`). */
export function needsCheckpoint(policy: string): boolean {
  const spec = resolvePolicy(policy);
  return spec.kind !== 'scripted' && spec.checkpoint === undefined;
}
