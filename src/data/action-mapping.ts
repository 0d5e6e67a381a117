/**
 * Between the model's action vector (card order, normalised with the run's statistics) and the
 * RT-1 action robots execute. Dimension names decide the mapping (RT-1 names like
 * world_vector.x, BridgeData names like dx / gripper); dimensions with no RT-1 slot (the mobile
 * base) are not commanded, and RT-1 values the card does not model read as 0 (raw units).
 */
import { safeAction, type Rt1Action } from '../core/action.js';
import { UserError } from '../core/errors.js';
import { denormaliseActions, normaliseActions, type ActionStats } from '../core/action-stats.js';
import { actionNames, type DatasetCard } from './card.js';

const SLOTS: Record<string, [keyof Rt1Action, number]> = {
  'world_vector.x': ['worldVector', 0],
  'world_vector.y': ['worldVector', 1],
  'world_vector.z': ['worldVector', 2],
  'rotation_delta.roll': ['rotationDelta', 0],
  'rotation_delta.pitch': ['rotationDelta', 1],
  'rotation_delta.yaw': ['rotationDelta', 2],
  gripper_closedness_action: ['gripperClosedness', 0],
  dx: ['worldVector', 0],
  dy: ['worldVector', 1],
  dz: ['worldVector', 2],
  droll: ['rotationDelta', 0],
  dpitch: ['rotationDelta', 1],
  dyaw: ['rotationDelta', 2],
  gripper: ['gripperClosedness', 0],
};

/** The RT-1 slot a model action dimension drives, or undefined when it has none. */
export function rt1Slot(name: string): [keyof Rt1Action, number] | undefined {
  return SLOTS[name];
}

/** Dimension names from the card, checked against the statistics (computed for the same card?). */
function namesFor(card: DatasetCard | undefined, stats: ActionStats): string[] {
  if (!card) return stats.names;
  const names = actionNames(card);
  if (names.length !== stats.names.length || names.some((n, i) => n !== stats.names[i])) {
    throw new UserError(`action statistics [${stats.names.join(', ')}] do not match card '${card.name}' action [${names.join(', ')}]`);
  }
  return names;
}

function split<T>(a: unknown, b: unknown, c: T | undefined): [DatasetCard | undefined, ActionStats, T] {
  // (card, stats, x) is the documented form; (stats, x) is kept for callers written before it.
  return c === undefined ? [undefined, a as ActionStats, b as T] : [a as DatasetCard, b as ActionStats, c];
}

/** Normalised model action (actionDim values, q01/q99 -> [-1, 1]) to the RT-1 action in raw units. */
export function modelActionToRt1(card: DatasetCard, stats: ActionStats, normalised: Float32Array): Rt1Action;
export function modelActionToRt1(stats: ActionStats, normalised: Float32Array): Rt1Action;
export function modelActionToRt1(a: DatasetCard | ActionStats, b: ActionStats | Float32Array, c?: Float32Array): Rt1Action {
  const [card, stats, normalised] = split(a, b, c);
  const names = namesFor(card, stats);
  if (normalised.length !== names.length)
    throw new UserError(`model action has ${normalised.length} values, the action statistics ${names.length}`);
  const raw = denormaliseActions(stats, normalised);
  const out = safeAction();
  names.forEach((name, i) => {
    const slot = SLOTS[name];
    if (!slot) return;
    if (slot[0] === 'gripperClosedness') out.gripperClosedness = raw[i]!;
    else (out[slot[0]] as number[])[slot[1]] = raw[i]!;
  });
  return out;
}

/** The RT-1 action to the model's normalised action vector (clipped to [-1, 1]). */
export function rt1ToModelAction(card: DatasetCard, stats: ActionStats, a: Rt1Action): Float32Array;
export function rt1ToModelAction(stats: ActionStats, a: Rt1Action): Float32Array;
export function rt1ToModelAction(a: DatasetCard | ActionStats, b: ActionStats | Rt1Action, c?: Rt1Action): Float32Array {
  const [card, stats, action] = split(a, b, c);
  const names = namesFor(card, stats);
  const raw = new Float32Array(names.length);
  names.forEach((name, i) => {
    const slot = SLOTS[name];
    if (!slot) return;
    raw[i] = slot[0] === 'gripperClosedness' ? action.gripperClosedness : (action[slot[0]] as number[])[slot[1]]!;
  });
  return normaliseActions(stats, raw);
}
