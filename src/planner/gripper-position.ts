/**
 * Gripper positions for the pose term of the cost (preset field `cost.pose`, src/planner/cost.ts):
 * metres between where a candidate takes the gripper and where it is in the goal picture. From one
 * head camera, a gripper above an object and one nearer the camera in front of it cover the same
 * pixels; the position the goal giver recorded with the picture (a storyboard's proprioception)
 * tells them apart.
 */
import { modelActionToRt1 } from '../data/action-mapping.js';
import { denormaliseActions, normaliseActions, type ActionStats } from '../core/action-stats.js';
import type { Goal, Observation } from '../core/types.js';
import type { Vec3 } from '../util/vec3.js';

export type { Vec3 } from '../util/vec3.js';
export { distance } from '../util/vec3.js';

/** Gripper x, y, z (the first three proprioception values), when the observation carries them. */
export function gripperPosition(o: Observation | undefined): Vec3 | undefined {
  return o?.proprio && o.proprio.length >= 3 ? [o.proprio[0]!, o.proprio[1]!, o.proprio[2]!] : undefined;
}

/** The finger opening (m), the fifth proprioception value (x, y, z, yaw, opening; src/sim/env.ts). */
export function fingerOpening(o: Observation | undefined): number | undefined {
  return o?.proprio && o.proprio.length >= 5 ? o.proprio[4]! : undefined;
}

export function goalGripperPosition(goal: Goal): Vec3 | undefined {
  return gripperPosition(goal.images[goal.images.length - 1]);
}

const WORLD_VECTOR = ['world_vector.x', 'world_vector.y', 'world_vector.z'];

/** Where the world vector's x, y, z sit among the model's actions; `use` names what needs them in the error. */
export function worldVectorIndices(stats: ActionStats, use: string): number[] {
  const idx = WORLD_VECTOR.map((n) => stats.names.indexOf(n));
  if (idx.some((i) => i < 0))
    throw new Error(`${use} needs the model's actions ${WORLD_VECTOR.join(', ')} (it has ${stats.names.join(', ')})`);
  return idx;
}

/**
 * Per candidate (n x horizon x actionDim normalised actions): where each action's world vector moves
 * the gripper from `start`, n x horizon x 3. Kinematic: it assumes the arm moves as commanded, which
 * the safety clamps and contacts can only shorten.
 */
export function predictedPositions(candidates: Float32Array, n: number, horizon: number, stats: ActionStats, start: Vec3): Float64Array {
  const a = stats.names.length;
  const out = new Float64Array(n * horizon * 3);
  for (let i = 0; i < n; i++) {
    const p: Vec3 = [...start];
    for (let t = 0; t < horizon; t++) {
      const w = modelActionToRt1(stats, candidates.subarray((i * horizon + t) * a, (i * horizon + t + 1) * a)).worldVector;
      for (let k = 0; k < 3; k++) p[k]! += w[k]!;
      out.set(p, (i * horizon + t) * 3);
    }
  }
  return out;
}

/**
 * The straight move towards `goal` (n = 1, horizon x actionDim normalised): each step the whole way
 * that is left, shortened (direction kept) to the largest move the action space holds; every other
 * part at raw 0. Clipping each axis on its own would bend the line: the short axes finish first and
 * the arm cuts the corner (on drawer-place, into the opened drawer's side wall).
 * A candidate worth scoring (preset `poseProposal`): Gaussian samples around a short plan reach a
 * far goal position only over many replans.
 */
export function straightMove(stats: ActionStats, start: Vec3, goal: Vec3, horizon: number): Float32Array {
  const a = stats.names.length;
  const idx = worldVectorIndices(stats, 'a straight move');
  const out = new Float32Array(horizon * a);
  const p: Vec3 = [...start];
  for (let t = 0; t < horizon; t++) {
    const left = idx.map((_, k) => goal[k]! - p[k]!);
    const scale = Math.min(1, ...idx.map((i, k) => axisRoom(stats, i, left[k]!)));
    const raw = new Float32Array(a);
    idx.forEach((i, k) => (raw[i] = scale * left[k]!));
    const step = normaliseActions(stats, raw);
    out.set(step, t * a);
    const moved = denormaliseActions(stats, step);
    idx.forEach((i, k) => (p[k]! += moved[i]!));
  }
  return out;
}

/** The fraction of a wanted move `d` along action dimension `i` that its range [q01, q99] holds. */
function axisRoom(stats: ActionStats, i: number, d: number): number {
  if (d === 0) return Infinity;
  const limit = d > 0 ? stats.q99[i]! : stats.q01[i]!;
  return Math.max(0, limit / d);
}
