/**
 * A pinhole camera's pose in the robot's world frame, and its file in a model directory
 * (`camera.json`): the camera that took the pictures the model directory's state reader reads.
 * A real robot's camera calibration gives it; `selfflow-wm sim camera` writes the simulator's.
 *
 * From one camera, a point and every point on the ray from the camera through it cover the same
 * pixels, so a state reader's error lies mostly along that ray (docs/results.md, item 23). What the
 * robot knows of a point's height moves the reading along the ray to that height (`slideToHeight`).
 */
import { readJsonObjectFile } from './run-manifest.js';
import { UserError } from './errors.js';

type V = [number, number, number];

export interface Camera {
  pos: V;
  /** Orthonormal basis: right, up, forward (world coordinates). */
  right: V;
  up: V;
  forward: V;
  /** Vertical field of view, radians. */
  fovy: number;
}

/** The camera file's name in a model directory. */
export const CAMERA_FILE = 'camera.json';
export const CAMERA_FORMAT = 'selfflow-wm/camera@1';

/** The camera file's text: position and axes in metres and unit vectors, the field of view in degrees. */
export function cameraJson(cam: Camera, description?: string): string {
  const round = (v: V) => v.map((x) => Number(x.toFixed(9)));
  const file = {
    format: CAMERA_FORMAT,
    ...(description && { description }),
    position: round(cam.pos),
    right: round(cam.right),
    up: round(cam.up),
    forward: round(cam.forward),
    fovyDegrees: Number(((cam.fovy * 180) / Math.PI).toFixed(9)),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Reads and checks a camera file; errors name the file and the field. */
export function readCameraFile(path: string): Camera {
  const raw = readJsonObjectFile(path, 'a camera file');
  const field = (k: string) => `${path}: '${k}'`;
  const allowed = ['format', 'description', 'position', 'right', 'up', 'forward', 'fovyDegrees'];
  for (const k of Object.keys(raw))
    if (!allowed.includes(k)) throw new UserError(`${field(k)} is not a camera field (a camera file has: ${allowed.join(', ')})`);
  if (raw.format !== CAMERA_FORMAT) throw new UserError(`${field('format')} must be "${CAMERA_FORMAT}", got ${JSON.stringify(raw.format)}`);
  const vec = (k: string, unit: boolean): V => {
    const v = raw[k];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
      throw new UserError(`${field(k)} must be three finite numbers, got ${JSON.stringify(v)}`);
    if (unit && Math.abs(Math.hypot(...(v as number[])) - 1) > 1e-3)
      throw new UserError(`${field(k)} must be a unit vector, got length ${Math.hypot(...(v as number[])).toFixed(4)}`);
    return v as V;
  };
  const cam = { pos: vec('position', false), right: vec('right', true), up: vec('up', true), forward: vec('forward', true) };
  const dot = (a: V, b: V) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  if (Math.abs(dot(cam.right, cam.up)) > 1e-3 || Math.abs(dot(cam.right, cam.forward)) > 1e-3 || Math.abs(dot(cam.up, cam.forward)) > 1e-3)
    throw new UserError(`${path}: 'right', 'up' and 'forward' must be perpendicular to each other`);
  const fovyDegrees = raw.fovyDegrees;
  if (typeof fovyDegrees !== 'number' || !(fovyDegrees > 0 && fovyDegrees < 180))
    throw new UserError(`${field('fovyDegrees')} must be a number in (0, 180), got ${JSON.stringify(fovyDegrees)}`);
  return { ...cam, fovy: (fovyDegrees * Math.PI) / 180 };
}

/**
 * The point at height `z` on the ray from the camera at `from` through `p`, or undefined where that
 * ray never reaches height `z` in front of the camera (it runs level, or away from that height).
 */
export function slideToHeight(from: V, p: V, z: number): V | undefined {
  const d: V = [p[0] - from[0], p[1] - from[1], p[2] - from[2]];
  if (Math.abs(d[2]) < 1e-9) return undefined;
  const t = (z - from[2]) / d[2];
  if (!(t > 0)) return undefined;
  return [from[0] + t * d[0], from[1] + t * d[1], z];
}
