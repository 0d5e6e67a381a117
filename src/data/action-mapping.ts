/**
 * Between the model's action vector (card order, normalised with the run's statistics) and the
 * RT-1 action robots execute. Dimension names decide the mapping (RT-1 names like
 * world_vector.x, BridgeData names like dx / gripper); unknown dimensions (e.g. the mobile base)
 * are not commanded.
 */
import { safeAction, type Rt1Action } from '../robot/action.js';
import { denormaliseActions, normaliseActions, type ActionStats } from './action-stats.js';

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

export function modelActionToRt1(stats: ActionStats, normalised: Float32Array): Rt1Action {
  const raw = denormaliseActions(stats, normalised);
  const a = safeAction();
  stats.names.forEach((name, i) => {
    const slot = SLOTS[name];
    if (!slot) return;
    if (slot[0] === 'gripperClosedness') a.gripperClosedness = raw[i]!;
    else (a[slot[0]] as number[])[slot[1]] = raw[i]!;
  });
  return a;
}

export function rt1ToModelAction(stats: ActionStats, a: Rt1Action): Float32Array {
  const raw = new Float32Array(stats.names.length);
  stats.names.forEach((name, i) => {
    const slot = SLOTS[name];
    if (!slot) return;
    raw[i] = slot[0] === 'gripperClosedness' ? a.gripperClosedness : (a[slot[0]] as number[])[slot[1]]!;
  });
  return normaliseActions(stats, raw);
}
