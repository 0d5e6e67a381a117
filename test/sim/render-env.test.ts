import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HEAD_CAMERA, project, rayError } from '../../src/sim/camera.js';
import { LIMITS, listTasks, SimEnv } from '../../src/sim/env.js';
import { makeScriptedPolicy } from '../../src/sim/expert.js';
import { goalObservations } from '../../src/sim/goals.js';
import { GEOM, LIGHT, render, type GeomSnapshot } from '../../src/sim/render.js';
import { COLLECT_JPEG_QUALITY, jpegRoundTrip } from '../../src/image/jpeg.js';
import { episodeSetup } from '../../src/cli/command.js';
import { cameraSettings } from '../../src/planner/episode.js';

const I = [1, 0, 0, 0, 1, 0, 0, 0, 1];
const table: GeomSnapshot = { type: GEOM.plane, pos: [0, 0, 0], mat: I, size: [0, 0, 0], rgb: [0, 0, 1] };
const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pixelAt(rgb: Uint8Array, p: [number, number, number], h: number, w: number): number[] {
  const [col, row] = project(HEAD_CAMERA, p, h, w)!.map(Math.round) as [number, number];
  const i = (row * w + col) * 3;
  return [rgb[i]!, rgb[i + 1]!, rgb[i + 2]!];
}

describe('renderer geometry', () => {
  it('boxes, cylinders and capsules appear where the camera model projects them, in their own colour', () => {
    const geoms: GeomSnapshot[] = [
      table,
      { type: GEOM.box, pos: [0.45, 0.2, 0.03], mat: I, size: [0.03, 0.03, 0.03], rgb: [1, 0, 0] },
      { type: GEOM.cylinder, pos: [0.6, -0.15, 0.05], mat: I, size: [0.03, 0.05, 0], rgb: [0, 1, 0] },
      { type: GEOM.capsule, pos: [0.75, 0.1, 0.05], mat: I, size: [0.03, 0.04, 0], rgb: [1, 1, 0] },
    ];
    const { rgb } = render(geoms, HEAD_CAMERA, 256, 320);
    const [r, g, b] = [
      pixelAt(rgb, [0.45, 0.2, 0.06], 256, 320),
      pixelAt(rgb, [0.6, -0.15, 0.1], 256, 320),
      pixelAt(rgb, [0.75, 0.1, 0.12], 256, 320),
    ];
    expect(r[0]).toBeGreaterThan(80);
    expect([r[1], r[2]]).toEqual([0, 0]);
    expect(g[1]).toBeGreaterThan(80);
    expect([g[0], g[2]]).toEqual([0, 0]);
    expect(b[0]).toBe(b[1]);
    expect(b[0]).toBeGreaterThan(80);
    expect(b[2]).toBe(0);
    // A table point between them is table-blue.
    expect(pixelAt(rgb, [0.5, -0.35, 0], 256, 320)[2]).toBeGreaterThan(80);
  });

  it('rotated boxes follow their orientation (a bar along y, turned 90 degrees, lies along x)', () => {
    const bar = (mat: number[]): GeomSnapshot => ({ type: GEOM.box, pos: [0.55, 0, 0.02], mat, size: [0.01, 0.12, 0.02], rgb: [1, 0, 0] });
    const rotZ90 = [0, -1, 0, 1, 0, 0, 0, 0, 1];
    const along = (rgb: Uint8Array, p: [number, number, number]) =>
      pixelAt(rgb, p, 128, 160)[0]! > 80 && pixelAt(rgb, p, 128, 160)[2] === 0;
    const straight = render([table, bar(I)], HEAD_CAMERA, 128, 160).rgb;
    const turned = render([table, bar(rotZ90)], HEAD_CAMERA, 128, 160).rgb;
    expect(along(straight, [0.55, 0.1, 0.04])).toBe(true);
    expect(along(straight, [0.65, 0, 0.04])).toBe(false);
    expect(along(turned, [0.65, 0, 0.04])).toBe(true);
    expect(along(turned, [0.55, 0.1, 0.04])).toBe(false);
  });

  it('keeps the nearest surface (depth buffer), whatever the geom order', () => {
    const far: GeomSnapshot = { type: GEOM.sphere, pos: [0.7, 0, 0.05], mat: I, size: [0.05, 0, 0], rgb: [0, 1, 0] };
    // A red box on the camera ray to the sphere's centre, closer to the camera.
    const c = HEAD_CAMERA.pos;
    const mid: [number, number, number] = [c[0] + 0.6 * (0.7 - c[0]), c[1], c[2] + 0.6 * (0.05 - c[2])];
    const near: GeomSnapshot = { type: GEOM.box, pos: mid, mat: I, size: [0.02, 0.02, 0.02], rgb: [1, 0, 0] };
    for (const order of [
      [table, far, near],
      [near, far, table],
    ]) {
      const { rgb, depth } = render(order, HEAD_CAMERA, 256, 320);
      const p = pixelAt(rgb, [0.7, 0, 0.05], 256, 320);
      expect(p[0]).toBeGreaterThan(80);
      expect(p[1]).toBe(0);
      const [col, row] = project(HEAD_CAMERA, [0.7, 0, 0.05], 256, 320)!.map(Math.round) as [number, number];
      expect(depth[row * 320 + col]!).toBeLessThan(Math.hypot(mid[0] - c[0], mid[2] - c[2]));
    }
  });

  it('rayError splits a position error into along and across the camera ray (the part a picture cannot show)', () => {
    const q: [number, number, number] = [0.5, -0.1, 0.15];
    const c = HEAD_CAMERA.pos;
    const len = Math.hypot(q[0] - c[0], q[1] - c[1], q[2] - c[2]);
    const further = rayError(
      HEAD_CAMERA,
      [q[0] + (0.1 * (q[0] - c[0])) / len, q[1] + (0.1 * (q[1] - c[1])) / len, q[2] + (0.1 * (q[2] - c[2])) / len],
      q,
    );
    expect(further.along).toBeCloseTo(0.1, 6);
    expect(further.across).toBeCloseTo(0, 4);
    // Same pixel, so the picture cannot tell them apart.
    const moved = project(
      HEAD_CAMERA,
      [q[0] + (0.1 * (q[0] - c[0])) / len, q[1] + (0.1 * (q[1] - c[1])) / len, q[2] + (0.1 * (q[2] - c[2])) / len],
      64,
      80,
    )!;
    expect(moved.map((v, i) => Math.abs(v - project(HEAD_CAMERA, q, 64, 80)![i]!)).every((d) => d < 1e-6)).toBe(true);
    const sideways = rayError(HEAD_CAMERA, [q[0], q[1] + 0.05, q[2]], q);
    expect(sideways.distance).toBeCloseTo(0.05, 6);
    expect(sideways.across).toBeGreaterThan(0.049);
  });

  it('shadows: a floating box darkens the table where the light ray through it lands, further away the higher it floats', () => {
    const sum = (p: number[]) => p[0]! + p[1]! + p[2]!;
    // Where the light ray through (x, y, z) meets the table.
    const under = (x: number, z: number): [number, number, number] => [x - (z * LIGHT[0]) / LIGHT[2], -(z * LIGHT[1]) / LIGHT[2], 0];
    const far: [number, number, number] = [0.45, 0.3, 0];
    for (const z of [0.12, 0.36]) {
      const box: GeomSnapshot = { type: GEOM.box, pos: [0.55, 0, z], mat: I, size: [0.025, 0.025, 0.025], rgb: [1, 0, 0] };
      const lit = render([table, box], HEAD_CAMERA, 128, 160).rgb;
      const shaded = render([table, box], HEAD_CAMERA, 128, 160, { shadows: true }).rgb;
      expect(sum(pixelAt(shaded, under(0.55, z), 128, 160))).toBeLessThan(0.7 * sum(pixelAt(lit, under(0.55, z), 128, 160)));
      expect(pixelAt(shaded, far, 128, 160)).toEqual(pixelAt(lit, far, 128, 160));
      // The other height's shadow spot is lit: the shadow tells the height.
      const other = under(0.55, z === 0.12 ? 0.36 : 0.12);
      expect(pixelAt(shaded, other, 128, 160)).toEqual(pixelAt(lit, other, 128, 160));
    }
  });

  it('SimEnv renders shadows only when asked, deterministically', async () => {
    const plain = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80 });
    const shadowed = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80, shadows: true });
    const a = shadowed.render();
    expect(hash(shadowed.render())).toBe(hash(a));
    expect(hash(plain.render())).not.toBe(hash(a));
    // Shadows only darken.
    const b = plain.render();
    expect(a.every((v, i) => v <= b[i]!)).toBe(true);
    plain.close();
    shadowed.close();
  });

  it('a camera with a JPEG quality delivers the render as a JPEG of that quality brings it back, in observations too', async () => {
    const raw = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80 });
    const jpeg = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 64, imageWidth: 80, jpegQuality: COLLECT_JPEG_QUALITY });
    const expected = jpegRoundTrip(raw.render(), 80, 64, COLLECT_JPEG_QUALITY);
    expect(hash(jpeg.render())).toBe(hash(expected));
    expect(hash(jpeg.observation().image)).toBe(hash(expected));
    expect(hash(expected)).not.toBe(hash(raw.render()));
    // Close to the render: JPEG moves pixels a little, not the scene.
    const r = raw.render();
    const mean = expected.reduce((a, v, i) => a + Math.abs(v - r[i]!), 0) / r.length;
    expect(mean).toBeGreaterThan(0);
    expect(mean).toBeLessThan(4);
    raw.close();
    jpeg.close();
    for (const q of [0, 101, 50.5])
      await expect(SimEnv.create({ task: 'pick-can', seed: 0, jpegQuality: q })).rejects.toThrow(
        /JPEG quality must be an integer from 1 to 100/,
      );
  });

  it('episodes, evaluations and goal readings see the camera through the JPEG the training episodes were stored as, unless told 0', () => {
    expect(episodeSetup({}).cameraJpeg).toBe(COLLECT_JPEG_QUALITY);
    expect(cameraSettings({}).jpegQuality).toBe(COLLECT_JPEG_QUALITY);
    expect(episodeSetup({ 'camera-jpeg': '0' }).cameraJpeg).toBe(0);
    expect(cameraSettings({ cameraJpeg: 0 }).jpegQuality).toBeUndefined();
    expect(cameraSettings({ cameraJpeg: 50, shadows: true })).toEqual({ jpegQuality: 50, shadows: true });
    expect(() => episodeSetup({ 'camera-jpeg': '-1' })).toThrow(/--camera-jpeg must be 0 \(raw\) or an integer quality/);
  });

  it('the same state gives identical pixels; smaller sizes are area-averaged views of the same scene', async () => {
    const env = await SimEnv.create({ task: 'drawer-place', seed: 2, imageHeight: 64, imageWidth: 80 });
    const a = env.render(64, 80);
    expect(hash(env.render(64, 80))).toBe(hash(a));
    expect(a).toHaveLength(64 * 80 * 3);
    const full = env.render(256, 320);
    expect(full).toHaveLength(256 * 320 * 3);
    // Mean colour agrees between sizes (same view, not a crop).
    const mean = (x: Uint8Array) => x.reduce((s, v) => s + v, 0) / x.length;
    expect(Math.abs(mean(a) - mean(full))).toBeLessThan(3);
    env.close();
  });
});

describe('environment', () => {
  it('lists tasks from env.ts and runs physics for 1/controlHz seconds per step', async () => {
    expect(listTasks().map((t) => t.name)).toContain('drawer-chain');
    const zero = {
      worldVector: [0, 0, 0] as [number, number, number],
      rotationDelta: [0, 0, 0] as [number, number, number],
      gripperClosedness: 0,
      terminateEpisode: [0, 1, 0] as [number, number, number],
    };
    for (const hz of [3, 5]) {
      const env = await SimEnv.create({ task: 'pick-can', seed: 0, imageHeight: 8, imageWidth: 10, controlHz: hz, physicsTimestep: 0.004 });
      const t0 = env.scene.data.time;
      const r = env.step(zero);
      expect(env.scene.data.time - t0).toBeCloseTo(1 / hz, 2);
      expect(r.observation.stamp).toBeCloseTo(1000 / hz, 6);
      expect(r.step).toBe(1);
      env.close();
    }
    await expect(SimEnv.create({ task: 'pick-can', seed: 0, controlHz: 0 })).rejects.toThrow(/controlHz/);
    await expect(SimEnv.create({ task: 'nope', seed: 0 })).rejects.toThrow(/unknown task 'nope'/);
  });

  it('moves the gripper by the commanded world vector and yaw; terminate ends the episode', async () => {
    const env = await SimEnv.create({ task: 'pick-can', seed: 1, imageHeight: 8, imageWidth: 10 });
    const g0 = env.scene.gripper();
    env.step({ worldVector: [0.04, -0.03, 0.02], rotationDelta: [0, 0, 0.2], gripperClosedness: 0, terminateEpisode: [0, 1, 0] });
    const g1 = env.scene.gripper();
    expect(g1.pos[0] - g0.pos[0]).toBeCloseTo(0.04, 2);
    expect(g1.pos[1] - g0.pos[1]).toBeCloseTo(-0.03, 2);
    expect(g1.pos[2] - g0.pos[2]).toBeCloseTo(0.02, 2);
    expect(g1.yaw - g0.yaw).toBeCloseTo(0.2, 1);
    const closed = env.step({ worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 1, terminateEpisode: [0, 1, 0] });
    expect(env.scene.gripper().opening).toBeLessThan(0.01);
    expect(closed.done).toBe(false);
    const end = env.step({ worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [1, 0, 0] });
    expect(end).toMatchObject({ done: true, success: false, truncated: false });
    env.close();
  });

  it('truncates at maxSteps', async () => {
    const env = await SimEnv.create({ task: 'drawer-open', seed: 0, imageHeight: 8, imageWidth: 10, maxSteps: 2 });
    const p = makeScriptedPolicy('random', 'drawer-open', 0);
    let r = env.reset();
    p.reset(env);
    while (!r.done) r = env.step(p.act(r));
    expect(r).toMatchObject({ step: 2, truncated: true, success: false });
    env.close();
  });
});

describe('policies and goal images', () => {
  it('the random policy is seeded and stays within the robot limits', () => {
    const acts = (seed: number) => {
      const p = makeScriptedPolicy('random', 'pick-can', seed);
      return Array.from({ length: 50 }, () => p.act(undefined as never));
    };
    const a = acts(3);
    expect(acts(3)).toEqual(a);
    expect(acts(4)).not.toEqual(a);
    for (const x of a) {
      for (const v of x.worldVector) expect(Math.abs(v)).toBeLessThanOrEqual(LIMITS.maxTranslation);
      expect(Math.abs(x.rotationDelta[2])).toBeLessThanOrEqual(LIMITS.maxYaw);
    }
    expect(new Set(a.map((x) => x.gripperClosedness)).size).toBeGreaterThan(1);
  });

  it('noise and exploration change the expert actions deterministically', async () => {
    const run = async (opts: { noise?: number; explore?: number }) => {
      const env = await SimEnv.create({ task: 'pick-can', seed: 2, imageHeight: 8, imageWidth: 10 });
      const p = makeScriptedPolicy('expert', 'pick-can', 2, opts);
      let r = env.reset();
      p.reset(env);
      const out: number[] = [];
      for (let i = 0; i < 6 && !r.done; i++) {
        const a = p.act(r);
        out.push(...a.worldVector);
        r = env.step(a);
      }
      env.close();
      return out;
    };
    const clean = await run({});
    const noisy = await run({ noise: 0.01, explore: 0.3 });
    expect(await run({ noise: 0.01, explore: 0.3 })).toEqual(noisy);
    expect(noisy).not.toEqual(clean);
  });

  it('goalObservations gives one frame per stage, the frame where the expert completed it', async () => {
    const goals = await goalObservations('drawer-place', 4, 16, 20);
    expect(goals).toHaveLength(2);
    expect(hash(goals[0]!.image)).not.toBe(hash(goals[1]!.image));
    // Replay: the frame right after the stage counter rises is the goal.
    const env = await SimEnv.create({ task: 'drawer-place', seed: 4, imageHeight: 16, imageWidth: 20 });
    const p = makeScriptedPolicy('expert', 'drawer-place', 4);
    let r = env.reset();
    p.reset(env);
    const seen: string[] = [];
    while (!r.done) {
      const before = r.stagesDone;
      r = env.step(p.act(r));
      if (r.stagesDone > before) seen.push(hash(r.observation.image));
    }
    expect(goals.map((g) => hash(g.image))).toEqual(seen);
    env.close();
  });
});
