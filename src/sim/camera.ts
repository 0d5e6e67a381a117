/**
 * The fixed head camera (like RT-1's): a pinhole looking from behind and above the robot base
 * down at the table. `project` maps world points to pixels; the renderer casts the inverse rays.
 */
import type { Camera } from '../core/camera.js';

export type { Camera };
type V = [number, number, number];
const sub = (a: V, b: V): V => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: V, b: V) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a: V, b: V): V => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: V): V => {
  const l = Math.hypot(...a);
  return [a[0] / l, a[1] / l, a[2] / l];
};

export function lookAt(pos: V, target: V, fovyDeg: number): Camera {
  const forward = norm(sub(target, pos));
  const right = norm(cross(forward, [0, 0, 1]));
  const up = cross(right, forward);
  return { pos, right, up, forward, fovy: (fovyDeg * Math.PI) / 180 };
}

/** RT-1-like head camera: behind the base, 0.7 m up, looking at the middle of the workspace. */
export const HEAD_CAMERA = lookAt([-0.12, 0, 0.72], [0.62, 0, 0], 50);

/** Pixel (column, row) of a world point for an image of height x width, or undefined if behind the camera. */
export function project(cam: Camera, p: V, height: number, width: number): [number, number] | undefined {
  const d = sub(p, cam.pos);
  const z = dot(d, cam.forward);
  if (z <= 0) return undefined;
  const f = height / 2 / Math.tan(cam.fovy / 2);
  return [width / 2 + (f * dot(d, cam.right)) / z - 0.5, height / 2 - (f * dot(d, cam.up)) / z - 0.5];
}

/** Unit direction of the camera's ray through point p (not finite at the camera itself). */
export function rayThrough(cam: Camera, p: V): V {
  return norm(sub(p, cam.pos));
}

/**
 * How far point p is from target q (metres), split into the part along the camera ray through q
 * (invisible in the picture but for size and shadows: positive = further from the camera) and the
 * part across it (what moves the point in the picture).
 */
export function rayError(cam: Camera, p: V, q: V): { distance: number; along: number; across: number } {
  const ray = rayThrough(cam, q);
  const d = sub(p, q);
  const distance = Math.hypot(...d);
  const along = dot(d, ray);
  return { distance, along, across: Math.sqrt(Math.max(0, distance * distance - along * along)) };
}

/** World-space ray direction through the centre of pixel (col, row). */
export function rayDirection(cam: Camera, col: number, row: number, height: number, width: number): V {
  const f = height / 2 / Math.tan(cam.fovy / 2);
  const x = (col + 0.5 - width / 2) / f;
  const y = (height / 2 - row - 0.5) / f;
  return norm([
    cam.forward[0] + x * cam.right[0] + y * cam.up[0],
    cam.forward[1] + x * cam.right[1] + y * cam.up[1],
    cam.forward[2] + x * cam.right[2] + y * cam.up[2],
  ]);
}
