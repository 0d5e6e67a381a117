/**
 * Software renderer for the simulator's camera: one ray per pixel against every visible geom
 * (plane, box, sphere, capsule, cylinder) from MuJoCo's poses, sizes and colours, keeping the
 * nearest hit (a per-pixel depth buffer) and Lambert shading from one directional light, optionally
 * with the shadows that light casts.
 * Deterministic: the same state gives identical pixels. Smaller images are rendered at twice
 * the size and area-averaged, so thin objects do not alias away.
 */
import { resizeRgb } from '../image/resize.js';
import type { Camera } from './camera.js';

export const GEOM = { plane: 0, sphere: 2, capsule: 3, ellipsoid: 4, cylinder: 5, box: 6 } as const;

export interface GeomSnapshot {
  type: number;
  /** World position and row-major rotation (world = R * local). */
  pos: ArrayLike<number>;
  mat: ArrayLike<number>;
  size: ArrayLike<number>;
  rgb: [number, number, number];
}

/** Direction towards the light (unit vector, world frame). */
export const LIGHT = (() => {
  const l = [-0.35, 0.25, 1];
  const n = Math.hypot(...l);
  return l.map((v) => v / n) as [number, number, number];
})();
const AMBIENT = 0.38;
const BACKGROUND: [number, number, number] = [205, 212, 222];

/** Nearest positive root of a t^2 + b t + c = 0 beyond `min`, or Infinity. */
function root(a: number, b: number, c: number, min: number): number {
  const disc = b * b - 4 * a * c;
  if (disc < 0 || a === 0) return Infinity;
  const s = Math.sqrt(disc);
  const t0 = (-b - s) / (2 * a);
  if (t0 > min) return t0;
  const t1 = (-b + s) / (2 * a);
  return t1 > min ? t1 : Infinity;
}

interface Hit {
  t: number;
  n: [number, number, number];
}

const EPS = 1e-6;

/** Ray (o, d) in the geom's local frame against its shape; returns the hit distance and local normal. */
function intersectLocal(type: number, size: ArrayLike<number>, o: number[], d: number[], out: Hit): boolean {
  out.t = Infinity;
  if (type === GEOM.plane) {
    if (Math.abs(d[2]!) < EPS) return false;
    const t = -o[2]! / d[2]!;
    if (t <= EPS) return false;
    const x = o[0]! + t * d[0]!;
    const y = o[1]! + t * d[1]!;
    if ((size[0]! > 0 && Math.abs(x) > size[0]!) || (size[1]! > 0 && Math.abs(y) > size[1]!)) return false;
    out.t = t;
    out.n = [0, 0, o[2]! > 0 ? 1 : -1];
    return true;
  }
  if (type === GEOM.sphere || type === GEOM.ellipsoid) {
    const r = size[0]!;
    const t = root(
      d[0]! ** 2 + d[1]! ** 2 + d[2]! ** 2,
      2 * (o[0]! * d[0]! + o[1]! * d[1]! + o[2]! * d[2]!),
      o[0]! ** 2 + o[1]! ** 2 + o[2]! ** 2 - r * r,
      EPS,
    );
    if (t === Infinity) return false;
    out.t = t;
    out.n = [(o[0]! + t * d[0]!) / r, (o[1]! + t * d[1]!) / r, (o[2]! + t * d[2]!) / r];
    return true;
  }
  if (type === GEOM.box) {
    let tmin = -Infinity;
    let tmax = Infinity;
    let axis = 0;
    let sign = 1;
    for (let i = 0; i < 3; i++) {
      const s = size[i]!;
      if (Math.abs(d[i]!) < EPS) {
        if (Math.abs(o[i]!) > s) return false;
        continue;
      }
      let t1 = (-s - o[i]!) / d[i]!;
      let t2 = (s - o[i]!) / d[i]!;
      let sg = -1;
      if (t1 > t2) {
        [t1, t2] = [t2, t1];
        sg = 1;
      }
      if (t1 > tmin) {
        tmin = t1;
        axis = i;
        sign = sg;
      }
      tmax = Math.min(tmax, t2);
      if (tmin > tmax) return false;
    }
    if (tmin <= EPS) return false;
    out.t = tmin;
    out.n = [0, 0, 0];
    out.n[axis] = sign;
    return true;
  }
  if (type === GEOM.cylinder || type === GEOM.capsule) {
    const r = size[0]!;
    const h = size[1]!;
    let best = Infinity;
    let n: [number, number, number] = [0, 0, 1];
    const ts = root(d[0]! ** 2 + d[1]! ** 2, 2 * (o[0]! * d[0]! + o[1]! * d[1]!), o[0]! ** 2 + o[1]! ** 2 - r * r, EPS);
    if (ts < best && Math.abs(o[2]! + ts * d[2]!) <= h) {
      best = ts;
      n = [(o[0]! + ts * d[0]!) / r, (o[1]! + ts * d[1]!) / r, 0];
    }
    for (const zc of [h, -h]) {
      if (type === GEOM.cylinder) {
        if (Math.abs(d[2]!) < EPS) continue;
        const t = (zc - o[2]!) / d[2]!;
        if (t > EPS && t < best && (o[0]! + t * d[0]!) ** 2 + (o[1]! + t * d[1]!) ** 2 <= r * r) {
          best = t;
          n = [0, 0, Math.sign(zc)];
        }
      } else {
        const oz = o[2]! - zc;
        const t = root(
          d[0]! ** 2 + d[1]! ** 2 + d[2]! ** 2,
          2 * (o[0]! * d[0]! + o[1]! * d[1]! + oz * d[2]!),
          o[0]! ** 2 + o[1]! ** 2 + oz * oz - r * r,
          EPS,
        );
        if (t < best) {
          best = t;
          n = [(o[0]! + t * d[0]!) / r, (o[1]! + t * d[1]!) / r, (oz + t * d[2]!) / r];
        }
      }
    }
    if (best === Infinity) return false;
    out.t = best;
    out.n = n;
    return true;
  }
  return false;
}

export interface RenderResult {
  rgb: Uint8Array;
  /** Distance along each pixel's ray to the nearest surface (Infinity for background). */
  depth: Float32Array;
}

/** Radius of a sphere around the geom's centre that contains it (Infinity for planes: always tested). */
function boundingRadius(g: GeomSnapshot): number {
  const s = g.size;
  switch (g.type) {
    case GEOM.sphere:
      return s[0]!;
    case GEOM.ellipsoid:
      return Math.max(s[0]!, s[1]!, s[2]!);
    case GEOM.box:
      return Math.hypot(s[0]!, s[1]!, s[2]!);
    case GEOM.cylinder:
      return Math.hypot(s[0]!, s[1]!);
    case GEOM.capsule:
      return s[0]! + s[1]!;
    default:
      return Infinity;
  }
}

/**
 * Conservative pixel rectangle [colMin, colMax, rowMin, rowMax] that a geom can cover: its bounding
 * sphere's camera-space box projected through the pinhole. Only geoms whose rectangle holds a pixel
 * are ray-tested there, so a frame costs a few intersections per pixel instead of one per geom.
 */
function screenRect(g: GeomSnapshot, cam: Camera, height: number, width: number): [number, number, number, number] {
  const all: [number, number, number, number] = [0, width - 1, 0, height - 1];
  const r = boundingRadius(g);
  if (!Number.isFinite(r)) return all;
  const d = [g.pos[0]! - cam.pos[0], g.pos[1]! - cam.pos[1], g.pos[2]! - cam.pos[2]];
  const x = d[0]! * cam.right[0] + d[1]! * cam.right[1] + d[2]! * cam.right[2];
  const y = d[0]! * cam.up[0] + d[1]! * cam.up[1] + d[2]! * cam.up[2];
  const z = d[0]! * cam.forward[0] + d[1]! * cam.forward[1] + d[2]! * cam.forward[2];
  if (z + r <= 0) return [1, 0, 1, 0]; // entirely behind the camera
  if (z - r <= 1e-3) return all; // straddles the camera plane: no finite bound
  const f = height / 2 / Math.tan(cam.fovy / 2);
  // Over the box [x ± r] x [z ± r], X/Z is extremal at corners: the largest X over the nearest Z when X > 0, etc.
  const hi = (v: number) => (v > 0 ? v / (z - r) : v / (z + r));
  const lo = (v: number) => (v > 0 ? v / (z + r) : v / (z - r));
  // Pixel centres: col + 0.5 = width/2 + f*u, row + 0.5 = height/2 - f*v; one pixel of slack for rounding.
  const colMin = Math.floor(width / 2 + f * lo(x - r) - 0.5) - 1;
  const colMax = Math.ceil(width / 2 + f * hi(x + r) - 0.5) + 1;
  const rowMin = Math.floor(height / 2 - f * hi(y + r) - 0.5) - 1;
  const rowMax = Math.ceil(height / 2 - f * lo(y - r) - 0.5) + 1;
  return [Math.max(0, colMin), Math.min(width - 1, colMax), Math.max(0, rowMin), Math.min(height - 1, rowMax)];
}

const shadowHit: Hit = { t: Infinity, n: [0, 0, 1] };

/**
 * Whether the world point p (on geom `self`) is hidden from the light by another geom. A shadow on
 * the table is the only cue in a single head-camera frame that tells "higher" from "nearer the
 * camera" (the gripper projects to the same pixels along the camera ray).
 */
function inShadow(geoms: GeomSnapshot[], lightLocal: number[][], self: number, px: number, py: number, pz: number): boolean {
  const o = [0, 0, 0];
  for (let gi = 0; gi < geoms.length; gi++) {
    if (gi === self) continue;
    const g = geoms[gi]!;
    if (g.type === GEOM.plane) continue;
    const r = boundingRadius(g);
    const dx = g.pos[0]! - px;
    const dy = g.pos[1]! - py;
    const dz = g.pos[2]! - pz;
    const along = dx * LIGHT[0] + dy * LIGHT[1] + dz * LIGHT[2];
    if (along < -r) continue;
    if (dx * dx + dy * dy + dz * dz - along * along > r * r) continue;
    const m = g.mat;
    for (let j = 0; j < 3; j++) o[j] = m[j]! * -dx + m[3 + j]! * -dy + m[6 + j]! * -dz;
    if (intersectLocal(g.type, g.size, o, lightLocal[gi]!, shadowHit) && shadowHit.t > 1e-4) return true;
  }
  return false;
}

function renderExact(geoms: GeomSnapshot[], cam: Camera, height: number, width: number, shadows: boolean): RenderResult {
  const rgb = new Uint8Array(height * width * 3);
  const depth = new Float32Array(height * width).fill(Infinity);
  // Camera origin in each geom's local frame is the same for every pixel.
  const locals = geoms.map((g) => {
    const m = g.mat;
    const dp = [cam.pos[0] - g.pos[0]!, cam.pos[1] - g.pos[1]!, cam.pos[2] - g.pos[2]!];
    return [0, 1, 2].map((j) => m[j]! * dp[0]! + m[3 + j]! * dp[1]! + m[6 + j]! * dp[2]!);
  });
  const rects = geoms.map((g) => screenRect(g, cam, height, width));
  // The light's direction in each geom's local frame, for shadow rays.
  const lightLocal = shadows
    ? geoms.map((g) => [0, 1, 2].map((j) => g.mat[j]! * LIGHT[0] + g.mat[3 + j]! * LIGHT[1] + g.mat[6 + j]! * LIGHT[2]))
    : [];
  const hit: Hit = { t: Infinity, n: [0, 0, 1] };
  const ld = [0, 0, 0];
  const rowGeoms: number[] = [];
  // Ray directions as camera.ts rayDirection computes them, inlined: this loop runs once per pixel.
  const f = height / 2 / Math.tan(cam.fovy / 2);
  const dir = [0, 0, 0];
  for (let row = 0; row < height; row++) {
    // Geoms that may cover this row, in scene order (so ties resolve exactly as without culling).
    rowGeoms.length = 0;
    for (let gi = 0; gi < geoms.length; gi++) if (rects[gi]![2] <= row && row <= rects[gi]![3]) rowGeoms.push(gi);
    for (let col = 0; col < width; col++) {
      const x = (col + 0.5 - width / 2) / f;
      const y = (height / 2 - row - 0.5) / f;
      const v0 = cam.forward[0] + x * cam.right[0] + y * cam.up[0];
      const v1 = cam.forward[1] + x * cam.right[1] + y * cam.up[1];
      const v2 = cam.forward[2] + x * cam.right[2] + y * cam.up[2];
      const l = Math.hypot(v0, v1, v2);
      dir[0] = v0 / l;
      dir[1] = v1 / l;
      dir[2] = v2 / l;
      let best = Infinity;
      let bestG = -1;
      let bn: [number, number, number] = [0, 0, 1];
      for (const gi of rowGeoms) {
        const rc = rects[gi]!;
        if (col < rc[0] || col > rc[1]) continue;
        const g = geoms[gi]!;
        const m = g.mat;
        for (let j = 0; j < 3; j++) ld[j] = m[j]! * dir[0] + m[3 + j]! * dir[1] + m[6 + j]! * dir[2];
        if (intersectLocal(g.type, g.size, locals[gi]!, ld, hit) && hit.t < best) {
          best = hit.t;
          bestG = gi;
          bn = hit.n;
        }
      }
      const p = (row * width + col) * 3;
      if (bestG < 0) {
        rgb.set(BACKGROUND, p);
        continue;
      }
      depth[row * width + col] = best;
      const g = geoms[bestG]!;
      const m = g.mat;
      // Local normal back to world: n_world = R n_local.
      const n0 = m[0]! * bn[0] + m[1]! * bn[1] + m[2]! * bn[2];
      const n1 = m[3]! * bn[0] + m[4]! * bn[1] + m[5]! * bn[2];
      const n2 = m[6]! * bn[0] + m[7]! * bn[1] + m[8]! * bn[2];
      const len = Math.hypot(n0, n1, n2) || 1;
      let lam = (n0 * LIGHT[0] + n1 * LIGHT[1] + n2 * LIGHT[2]) / len;
      if (n0 * dir[0] + n1 * dir[1] + n2 * dir[2] > 0) lam = -lam; // back face seen from inside
      const lit =
        lam > 0 && shadows
          ? inShadow(geoms, lightLocal, bestG, cam.pos[0] + best * dir[0], cam.pos[1] + best * dir[1], cam.pos[2] + best * dir[2])
            ? 0
            : 1
          : 1;
      const shade = AMBIENT + (1 - AMBIENT) * Math.max(0, lam) * lit;
      for (let c = 0; c < 3; c++) rgb[p + c] = Math.max(0, Math.min(255, Math.round(g.rgb[c]! * 255 * shade)));
    }
  }
  return { rgb, depth };
}

export interface RenderOptions {
  /** Cast shadows from the light (off by default: the shipped models were trained without them). */
  shadows?: boolean;
}

/** Renders at height x width; sizes below 256x320 are supersampled 2x and area-averaged. */
export function render(geoms: GeomSnapshot[], cam: Camera, height: number, width: number, opts: RenderOptions = {}): RenderResult {
  const shadows = opts.shadows ?? false;
  if (height >= 256 || width >= 320) return renderExact(geoms, cam, height, width, shadows);
  const big = renderExact(geoms, cam, height * 2, width * 2, shadows);
  const small = resizeRgb({ data: big.rgb, width: width * 2, height: height * 2 }, height, width);
  const depth = new Float32Array(height * width);
  for (let r = 0; r < height; r++)
    for (let c = 0; c < width; c++)
      depth[r * width + c] = Math.min(big.depth[2 * r * 2 * width + 2 * c]!, big.depth[(2 * r + 1) * 2 * width + 2 * c + 1]!);
  const rgb = new Uint8Array(small.length);
  for (let i = 0; i < small.length; i++) rgb[i] = Math.round(small[i]!);
  return { rgb, depth };
}
