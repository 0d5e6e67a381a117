/**
 * Goal pictures whose recorded gripper positions are moved along the camera's ray: a diagnostic
 * for the presets that read recorded positions (the oracle presets), asking how precisely a goal
 * picture's gripper must be known for them to succeed. One camera tells where a picture's gripper
 * is across its view far better than along its ray, and the state reader errs along the ray
 * (3-7 cm near an object; docs/results.md), so the positions move along it. Presets that read the
 * pictures themselves (goalState "read") never see recorded positions, and this changes nothing
 * for them.
 */
import type { Camera } from '../core/camera.js';
import { Rng } from '../util/rng.js';
import { HEAD_CAMERA, rayThrough } from './camera.js';
import type { Subgoal } from './goals.js';

/**
 * `board` with each picture's recorded gripper position moved along the ray from `camera` through
 * it by a normal draw of standard deviation `sigma` metres, one per picture, from `seed`. The
 * expert's recorded tolerance goes with it: a moved picture is no more precise than the noise.
 * Pictures without a recorded position are left as they are; `sigma` 0 returns `board` itself.
 */
export function shiftAlongRay(board: Subgoal[], sigma: number, seed: number, camera: Camera = HEAD_CAMERA): Subgoal[] {
  if (!(sigma >= 0)) throw new RangeError(`goal noise must be a distance of at least 0 m, got ${sigma}`);
  if (sigma === 0) return board;
  const rng = new Rng(seed);
  return board.map((g) => {
    const p = g.observation.proprio;
    if (!p || p.length < 3) return g;
    const ray = rayThrough(camera, [p[0]!, p[1]!, p[2]!]);
    const shift = sigma * rng.normal();
    const proprio = Float32Array.from(p);
    if (ray.every(Number.isFinite)) for (let i = 0; i < 3; i++) proprio[i] = p[i]! + shift * ray[i]!;
    const { tolerance: _tolerance, ...rest } = g;
    return { ...rest, observation: { ...g.observation, proprio } };
  });
}
