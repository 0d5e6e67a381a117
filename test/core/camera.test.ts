/**
 * The camera file (a model directory's camera.json) and the slide along a camera ray that the
 * set-down goal prior uses (src/planner/goal-priors.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CAMERA_FORMAT, cameraJson, readCameraFile, slideToHeight } from '../../src/core/camera.js';
import { UserError } from '../../src/core/errors.js';
import { HEAD_CAMERA, project } from '../../src/sim/camera.js';

const dir = mkdtempSync(join(tmpdir(), 'sfwm-camera-'));
const file = (name: string, body: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof body === 'string' ? body : JSON.stringify(body));
  return path;
};

describe('camera file', () => {
  it("round-trips the simulator's head camera", () => {
    const cam = readCameraFile(file('head.json', cameraJson(HEAD_CAMERA, 'sim')));
    for (const k of ['pos', 'right', 'up', 'forward'] as const) cam[k].forEach((x, i) => expect(x).toBeCloseTo(HEAD_CAMERA[k][i]!, 8));
    expect(cam.fovy).toBeCloseTo(HEAD_CAMERA.fovy, 9);
  });

  it('names the file and the field of what is wrong', () => {
    const good = JSON.parse(cameraJson(HEAD_CAMERA)) as Record<string, unknown>;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, format: 'other' }, new RegExp(`'format' must be "${CAMERA_FORMAT}"`)],
      [{ ...good, position: [0, 0] }, /'position' must be three finite numbers, got \[0,0\]/],
      [{ ...good, up: [0, 0, 2] }, /'up' must be a unit vector, got length 2\.0000/],
      [{ ...good, up: [0, -1, 0] }, /'right', 'up' and 'forward' must be perpendicular/],
      [{ ...good, fovyDegrees: 0 }, /'fovyDegrees' must be a number in \(0, 180\), got 0/],
      [{ ...good, focal: 500 }, /'focal' is not a camera field/],
    ];
    for (const [body, message] of cases) {
      const path = file('bad.json', body);
      expect(() => readCameraFile(path)).toThrow(UserError);
      expect(() => readCameraFile(path)).toThrow(new RegExp(`${path}: ${message.source}`));
    }
    expect(() => readCameraFile(file('torn.json', '{"format":'))).toThrow(/torn\.json: a camera file is not valid JSON/);
  });
});

describe('slideToHeight', () => {
  it('moves a point along its camera ray to a height: the same pixel, the height asked for', () => {
    const read: [number, number, number] = [0.45, -0.2, 0.13];
    const slid = slideToHeight(HEAD_CAMERA.pos, read, 0.093)!;
    expect(slid[2]).toBe(0.093);
    // Lower on a ray that points down and forward is further from the camera.
    expect(slid[0]).toBeGreaterThan(read[0]);
    const [a, b] = [project(HEAD_CAMERA, read, 64, 80)!, project(HEAD_CAMERA, slid, 64, 80)!];
    expect(b[0]).toBeCloseTo(a[0], 9);
    expect(b[1]).toBeCloseTo(a[1], 9);
  });

  it('has no answer where the ray never reaches the height in front of the camera', () => {
    expect(slideToHeight([0, 0, 0.7], [0.5, 0, 0.7], 0.1)).toBeUndefined();
    expect(slideToHeight([0, 0, 0.7], [0.5, 0, 0.3], 0.9)).toBeUndefined();
  });
});
