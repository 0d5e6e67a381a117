/**
 * Grasps by the action policy (preset section `policyGrasp`): the planner hands the pictures of a
 * grasp to the model directory's action policy, which sees where the object is in the current
 * camera picture, and keeps every other picture for its own search.
 *
 * Why: the state reader places a goal picture's gripper 3-7 cm off along the camera ray when the
 * gripper is near an object (docs/results.md), and a grasp aimed there pushes the can away; the
 * policy, closed-loop on the current picture, grasps where the object is. The pictures far from
 * any object (the approach that picks the object out from the storyboard, a carry, a placement,
 * a pull) stay with the search, which knows what the policy cannot: which object, and where to.
 *
 * A picture is a grasp picture when it first comes, while the robot's fingers are open, and either
 * it shows the gripper closed, or it lies straight below where the gripper is then (at least
 * `drop` metres lower, at most `across` metres to the side: a descent onto something). With
 * `inPlace`, also a picture within `across` of the gripper that comes after the gripper came down
 * at least `drop` since the previous picture came: at the end of a descent, a picture that asks
 * for no move asks for the grasp, even where the reader sees its fingers open (it saw pick-can's
 * grasp picture open on three of 23 tuning seeds, and the search then lifted open fingers). The
 * choice is made once per goal, so a descent the policy has started is not handed back half-way.
 *
 * With `candidates` 1 one chunk sampled at `noise` is executed, as the policy alone would. With
 * more, candidates - 1 samples and the search's mean (the previous grasp chunk shifted by a step;
 * no move on the first) are ranked by the model's imagined futures against the goal picture with
 * the preset's picture costs; the pose term is left out, as it is what the reader misplaces.
 * Either way the gripper is the policy's to open and close.
 *
 * With `instructionWords` set, only the grasps of instructions that name one of the words go to
 * the policy (e.g. the drawer's knob), and the search grasps the rest itself.
 *
 * With `takeover` set, fingers that close on nothing hand every picture to the policy for a while
 * (src/planner/grasp-takeover.ts).
 */
import type { ActionStats } from '../core/action-stats.js';
import type { Goal, Observation, Plan } from '../core/types.js';
import { closedBelow } from './goal-state-reading.js';
import { GraspTakeover } from './grasp-takeover.js';
import { distance, fingerOpening, goalGripperPosition, gripperPosition } from './gripper-position.js';
import { presetPlanStep, type OptimizingPlanStep, type PresetPlanStepOptions } from './optimizing-planner.js';
import type { CostFactory } from './plan-model.js';
import type { PlannerPreset, PolicyGraspSettings } from './presets.js';
import type { ProposalSource } from './sequence.js';

/** What the grasps need of an action policy (src/planner/policy-proposals.ts, PolicyProposals). */
export interface GraspPolicy {
  readonly cfg: { fullOpening: number };
  /** The policy sampled at another noise scale. */
  withNoise(noise: number): ChunkSampler;
}

export interface ChunkSampler {
  /** One plan's samples: `n` sequences of `horizon` normalised actions, n x horizon x A, the same for every call. */
  source(obs: Observation, instruction: string | undefined, horizon: number, seed: number): ProposalSource;
}

/**
 * Whether the policy takes this goal (already read: its picture's gripper position and state as
 * the state reader sees them), judged from the observation at which it first comes; `descended`:
 * how far (m) the gripper came down since the previous goal came.
 */
export function isGraspGoal(s: PolicyGraspSettings, obs: Observation, goal: Goal, fullOpening: number, descended = 0): boolean {
  if (s.instructionWords && !forInstruction(s.instructionWords, goal.instruction)) return false;
  const opening = fingerOpening(obs);
  if (opening === undefined || opening < closedBelow(fullOpening)) return false;
  if (goal.gripper === 'closed') return true;
  const at = gripperPosition(obs);
  const to = goalGripperPosition(goal);
  if (!at || !to) return false;
  if (s.inPlace && descended >= s.drop && distance(at, to) <= s.across) return true;
  return at[2] - to[2] >= s.drop && Math.hypot(at[0] - to[0], at[1] - to[1]) <= s.across;
}

/** Whether an instruction names one of `words` (whole words, any case); no instruction names none. */
export function forInstruction(words: string[], instruction: string | undefined): boolean {
  const said = new Set((instruction ?? '').toLowerCase().split(/[^a-z0-9]+/));
  return words.some((w) => said.has(w));
}

/** The preset the policy's grasps are planned with: its candidates only, the picture costs, no pose term, no pinned gripper. */
export function graspPreset(preset: PlannerPreset, s: PolicyGraspSettings): PlannerPreset {
  const ranked = s.candidates > 1;
  return {
    ...preset,
    name: `${preset.name} (policy grasp)`,
    optimizer: {
      ...preset.optimizer,
      kind: ranked ? 'cem' : 'policy',
      candidates: Math.max(2, s.candidates),
      iterations: 1,
      elites: 1,
      proposalFraction: 1,
    },
    cost: { ...preset.cost, pose: 0 },
    poseProposal: false,
    actions: { ...preset.actions, gripper: 'plan', carry: undefined },
  };
}

/**
 * The plan step of a preset with `policyGrasp` (undefined for any other preset): the preset's own
 * search, and the policy's grasps for the goals isGraspGoal picks. `costOf` makes a cost factory
 * for a preset's weights (read at every plan); the grasps' cost gets the policy's proposals.
 * Switching between the two resets the warm start of the one switched to.
 */
export function graspingPlanStep(
  preset: PlannerPreset,
  stats: ActionStats,
  costOf: (settings: PlannerPreset) => CostFactory,
  policy: GraspPolicy | undefined,
  opts: PresetPlanStepOptions,
): OptimizingPlanStep | undefined {
  if (!preset.policyGrasp) return undefined;
  if (!policy) throw new Error(`planner preset '${preset.name}' hands its grasps to the action policy, and none was loaded`);
  const s = preset.policyGrasp;
  const grasp = graspPreset(preset, s);
  const sampled = policy.withNoise(s.noise);
  const graspCost = costOf(grasp);
  const search = presetPlanStep(preset, stats, costOf(preset), opts);
  const policyCost: CostFactory = async (obs, goal, rng) => {
    const seed = rng.int(1 << 30);
    return {
      ...(await graspCost(obs, goal, rng)),
      proposals: sampled.source(obs, goal.instruction, grasp.optimizer.horizon, seed),
    };
  };
  const grasping = presetPlanStep(grasp, stats, policyCost, opts);
  const takeover = s.takeover && new GraspTakeover({ ...s.takeover, lift: s.drop });
  // The takeover's reopen phase: the policy's chunk with the gripper pinned to a goal that says open.
  const reopen = takeover && presetPlanStep({ ...grasp, actions: { ...grasp.actions, gripper: 'goal' } }, stats, policyCost, opts);
  const decided = new WeakMap<Goal, boolean>();
  /** Gripper height when the previous goal came. */
  let cameAt: number | undefined;
  /** Whether the policy takes this goal, decided once, when it first comes. */
  const byPolicy = (obs: Observation, goal: Goal): boolean => {
    let d = decided.get(goal);
    if (d === undefined) {
      const z = gripperPosition(obs)?.[2];
      const descended = z !== undefined && cameAt !== undefined ? cameAt - z : 0;
      decided.set(goal, (d = isGraspGoal(s, obs, goal, policy.cfg.fullOpening, descended)));
      cameAt = z;
    }
    return d;
  };
  let last: OptimizingPlanStep | undefined;
  return {
    plan(obs: Observation, goal: Goal, signal?: AbortSignal): Promise<Plan> {
      const phase = takeover?.update(obs, goal) ?? 'off';
      const step = phase === 'reopen' ? reopen! : phase === 'policy' || byPolicy(obs, goal) ? grasping : search;
      if (last && step !== last) step.reset();
      last = step;
      return step.plan(obs, phase === 'reopen' ? { ...goal, gripper: 'open' } : goal, signal);
    },
    reset(seed?: number) {
      search.reset(seed);
      grasping.reset(seed === undefined ? undefined : seed + 1);
      reopen?.reset(seed === undefined ? undefined : seed + 2);
      takeover?.reset();
      last = undefined;
      cameAt = undefined;
    },
  };
}
