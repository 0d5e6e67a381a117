/**
 * Goal images are decoded in a worker thread: while a large image decodes, the service's thread
 * keeps running its timers (a control period is at most 333 ms; the twist republish 50 ms), and
 * a burst of goals keeps one decode in flight and one waiting, the newest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../src/image/png.js';
import { GoalDecoder, GoalSupersededError, decodeGoalImage } from '../../src/service/goal-decoder.js';
import { ensureDist, ROOT } from '../helpers/dist.js';
import { join } from 'node:path';

const SCRIPT = join(ROOT, 'dist', 'src', 'service', 'goal-decoder-worker.js');
let decoder: GoalDecoder;
let big: Uint8Array;
const small = (v: number) => encodePng(new Uint8Array(4 * 6 * 3).fill(v), 6, 4);

beforeAll(() => {
  ensureDist();
  decoder = new GoalDecoder({ maxPixels: 4096 * 4096, script: SCRIPT });
  // A noisy 1600x1600 PNG: its decoding takes a few hundred ms on one core.
  const w = 1600;
  const rgb = new Uint8Array(w * w * 3);
  let x = 12345;
  for (let i = 0; i < rgb.length; i++) rgb[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  big = encodePng(rgb, w, w);
}, 180_000);
afterAll(() => decoder.close());

describe('goal images decoded off the service thread', () => {
  it('keeps the thread free while a large goal image decodes in the worker', async () => {
    await decoder.decode({ images: [{ bytes: small(1), where: 'warm-up' }] });
    // Control: the same decode on this thread holds it for its whole duration.
    const t0 = performance.now();
    decodeGoalImage(big, 'big', 4096 * 4096);
    const inThreadMs = performance.now() - t0;
    expect(inThreadMs).toBeGreaterThan(100);
    let last = performance.now();
    let maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    const goal = await decoder.decode({ images: [{ bytes: big, where: 'big' }], instruction: 'reach' });
    clearInterval(timer);
    expect(goal.images[0]).toMatchObject({ width: 1600, height: 1600 });
    expect(goal.instruction).toBe('reach');
    // Generous: the machine is shared, but nothing near the in-thread decode time.
    expect(maxGap).toBeLessThan(Math.max(100, inThreadMs / 2));
  });

  it('keeps one decode in flight and only the newest waiting goal', async () => {
    const first = decoder.decode({ images: [{ bytes: big, where: 'first' }] });
    const second = decoder.decode({ images: [{ bytes: small(50), where: 'second' }] });
    const third = decoder.decode({ images: [{ bytes: small(150), where: 'third' }] });
    await expect(second).rejects.toBeInstanceOf(GoalSupersededError);
    expect((await first).images[0]!.width).toBe(1600);
    const g = await third;
    expect(g.images[0]!.image[0]).toBe(150);
  });

  it('names the image in a decoding error and carries on with the next goal', async () => {
    await expect(decoder.decode({ images: [{ bytes: Uint8Array.from([1, 2, 3]), where: 'setGoal.images[0]' }] })).rejects.toThrow(
      /setGoal.images\[0\]: not a JPEG or PNG/,
    );
    expect((await decoder.decode({ images: [{ bytes: small(7), where: 'ok' }] })).images[0]!.image[0]).toBe(7);
  });
});
