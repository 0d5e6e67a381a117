/**
 * Action parts a preset takes out of the search. `hold` fixes a part at a raw value (e.g. yaw 0
 * for tasks that never turn the gripper: searching it only adds noise to a 16-candidate search);
 * `gripper: "goal"` takes the gripper command from the goal (the storyboard says whether the
 * gripper is open or closed in each picture), because at 32x40 pixels the fingers are one or two
 * pixels wide and the image costs cannot tell an open gripper from a closed one.
 * `speed` caps the length of the arm's move per step (a Cartesian speed limit, as the experts
 * keep): the robot clamps each axis on its own, and under that box the pose cost's best move cuts
 * corners (the short axes finish first) instead of going straight to the goal position.
 * `carry` caps it further while the gripper holds something (commanded closed, the fingers
 * stopped at least `minOpening` apart): a knob or an apple held by friction slips out of a
 * gripper jerked at full speed (the experts pull at half). An empty closed gripper (pushing a
 * drawer shut) moves at `speed`.
 */
import { denormaliseActions, normaliseActions, type ActionStats } from '../core/action-stats.js';
import { UserError } from '../core/errors.js';
import { fingerOpening, goalGripperPosition, gripperPosition, straightMove, worldVectorIndices } from './gripper-position.js';
import type { PinnedDim, PlanConstraints } from './plan-model.js';
import type { Goal, Observation } from '../core/types.js';

export const GRIPPER_ACTION = 'gripper_closedness_action';

export interface ActionPins {
  /** Raw values by action name (the statistics' names), never searched. */
  hold: Record<string, number>;
  /** 'goal': the goal's gripper state sets the gripper command when the goal has one. */
  gripper: 'plan' | 'goal';
  /** Largest translation (m per step, length of the world vector); absent = the robot's own per-axis limit. */
  speed?: number;
  /** Largest translation (m per step) while holding something; absent = `speed`. */
  carry?: { speed: number; minOpening: number };
}

export const NO_PINS: ActionPins = { hold: {}, gripper: 'plan' };

/** The parts of a preset that shape the search (a structural type, so this module needs nothing else of presets). */
export interface PresetActions {
  name: string;
  actions: ActionPins;
  /** Score the straight move to the goal's recorded gripper position in each plan's first iteration. */
  poseProposal: boolean;
}

/** The pinned dimensions for this goal, in the normalised action space of `stats`. */
export function pinnedDims(pins: ActionPins, stats: ActionStats, goal?: Goal): PinnedDim[] {
  const raw = new Map(Object.entries(pins.hold));
  // RT-1 semantics: +1 close, -1 open.
  if (pins.gripper === 'goal' && goal?.gripper) raw.set(GRIPPER_ACTION, goal.gripper === 'closed' ? 1 : -1);
  const out: PinnedDim[] = [];
  for (const [name, v] of raw) {
    const index = stats.names.indexOf(name);
    if (index < 0) throw new Error(`pinned action '${name}' is not one of the model's actions (${stats.names.join(', ')})`);
    const one = new Float32Array(stats.names.length);
    one[index] = v;
    out.push({ index, value: normaliseActions(stats, one)[index]! });
  }
  return out;
}

/**
 * The move cap for this goal and observation, as an in-place edit of n sequences laid out
 * n x H x A (normalised): each step's world vector longer than the cap is scaled down to it.
 * The cap is `speed`, or `carry.speed` when smaller and the gripper holds something: the goal's
 * gripper is closed and the fingers are not closed on nothing (narrower than `carry.minOpening`;
 * without a reported opening, assume held). Undefined when no cap applies.
 */
export function moveCap(pins: ActionPins, stats: ActionStats, goal?: Goal, obs?: Observation): ((seqs: Float32Array) => void) | undefined {
  const opening = fingerOpening(obs);
  const holding = pins.carry !== undefined && goal?.gripper === 'closed' && !(opening !== undefined && opening < pins.carry.minOpening);
  const cap = Math.min(pins.speed ?? Infinity, holding ? pins.carry!.speed : Infinity);
  if (cap === Infinity) return undefined;
  const idx = worldVectorIndices(stats, pins.carry ? 'actions.carry' : 'actions.speed');
  const a = stats.names.length;
  return (seqs) => {
    for (let o = 0; o < seqs.length; o += a) {
      const raw = denormaliseActions(stats, seqs.subarray(o, o + a));
      const len = Math.hypot(...idx.map((i) => raw[i]!));
      if (len <= cap) continue;
      for (const i of idx) raw[i] = (raw[i]! * cap) / len;
      const back = normaliseActions(stats, raw);
      for (const i of idx) seqs[o + i] = back[i]!;
    }
  };
}

/** A preset's pins must name the model's actions: checked when a planner is built, not at the first goal. */
export function checkPins(preset: PresetActions, stats: ActionStats): void {
  try {
    pinnedDims(preset.actions, stats, { images: [], gripper: 'open' });
    // A closed goal with no reported opening reaches the world-vector lookup whenever speed or carry is set.
    moveCap(preset.actions, stats, { images: [], gripper: 'closed' });
    if (preset.poseProposal) straightMove(stats, [0, 0, 0], [0, 0, 0], 1);
  } catch (e) {
    throw new UserError(`planner preset '${preset.name}', actions: ${(e as Error).message}`);
  }
}

/** A preset's constraints for each (observation, goal): pins, move cap and the straight move (src/planner/optimizing-planner.ts). */
export function presetConstraints(
  preset: PresetActions,
  stats: ActionStats,
  horizon: number,
): (obs: Observation, goal: Goal) => PlanConstraints {
  return (obs, goal) => {
    // The goal's recorded gripper position is read only by the preset that proposes the straight move to it.
    const start = preset.poseProposal ? gripperPosition(obs) : undefined;
    const target = preset.poseProposal ? goalGripperPosition(goal) : undefined;
    return {
      pinned: pinnedDims(preset.actions, stats, goal),
      constrain: moveCap(preset.actions, stats, goal, obs),
      include: start && target ? straightMove(stats, start, target, horizon) : undefined,
    };
  };
}

/** Overwrites the pinned dimensions of n sequences laid out n x H x A. */
export function applyPins(seqs: Float32Array, actionDim: number, pins: readonly PinnedDim[]): void {
  if (!pins.length) return;
  for (let o = 0; o < seqs.length; o += actionDim) for (const p of pins) seqs[o + p.index] = p.value;
}
