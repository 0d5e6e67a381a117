import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldModelConfig } from '../../src/core/model-config.js';
import { toTf, worldModelInit } from '../../src/model/params.js';
import {
  actionControllability,
  describeControllability,
  otherWindowOrder,
  psnr,
  type ImagineFutures,
} from '../../src/train/controllability.js';
import type { WindowLike } from '../../src/train/training-window.js';
import { predictFutures } from '../../src/train/val-strip.js';
import { Rng } from '../../src/util/rng.js';
import { squareSource } from '../helpers/synthetic-windows.js';
import { randomiseWeights, useTestBackend } from '../helpers/tf.js';

const [H, W, K, F, A] = [16, 16, 1, 2, 2];
const PX = H * W * 3;
/** The toy world's background value and its move per action unit (pixels), as test/helpers/synthetic-windows.ts draws it. */
const BACKGROUND = -0.8;
const STEP_PX = 2;

const valWindows = (n: number) => squareSource(11, H, W, K, F, A).val(n);

/** Copies the last context frame forward: reads the future off the context, never the action. */
const actionBlind: ImagineFutures = (windows) =>
  windows.map((w) => {
    const last = w.frames.subarray((K - 1) * PX, K * PX);
    const out = new Float32Array(F * PX);
    for (let t = 0; t < F; t++) out.set(last, t * PX);
    return out;
  });

/** The same, plus sampling noise seeded by the window's index (as the world model's flow noise is). */
const noisyBlind: ImagineFutures = (windows, actions) =>
  actionBlind(windows, actions).map((frames, i) => {
    const rng = new Rng(100 + i);
    return frames.map((v) => v + 0.05 * rng.normal());
  });

/** Handed the true displacement: each future frame is the previous one shifted by the action, background filling in. */
const shiftByAction: ImagineFutures = (windows, actions) =>
  windows.map((w, i) => {
    const out = new Float32Array(F * PX);
    let prev = w.frames.subarray((K - 1) * PX, K * PX);
    for (let t = 0; t < F; t++) {
      const dx = Math.round(actions[i]![t * A]!) * STEP_PX;
      const dy = Math.round(actions[i]![t * A + 1]!) * STEP_PX;
      const frame = new Float32Array(PX).fill(BACKGROUND);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const [sx, sy] = [x - dx, y - dy];
          if (sx < 0 || sy < 0 || sx >= W || sy >= H) continue;
          frame.set(prev.subarray((sy * W + sx) * 3, (sy * W + sx) * 3 + 3), (y * W + x) * 3);
        }
      }
      out.set(frame, t * PX);
      prev = frame;
    }
    return out;
  });

describe('action controllability (ΔPSNR)', () => {
  it('pairs every window with another one, the same for a given count', () => {
    for (let n = 2; n <= 9; n++) {
      const order = otherWindowOrder(n);
      expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      order.forEach((j, i) => expect(j).not.toBe(i));
      expect(otherWindowOrder(n)).toEqual(order);
    }
    expect(() => otherWindowOrder(1)).toThrow(/at least 2 windows/);
  });

  it('PSNR over [-1, 1] pixels: 10·log10(4 / MSE), an exact prediction capped', () => {
    expect(psnr([0, 0], [0.2, -0.2])).toBeCloseTo(10 * Math.log10(4 / 0.04), 9);
    expect(psnr([1, -1], [1, -1])).toBeCloseTo(10 * Math.log10(4e8), 6);
    expect(() => psnr([1], [1, 2])).toThrow(/1 predicted values against 2/);
  });

  it('a model that ignores its action scores zero, noise and all; one handed the true displacement scores high', async () => {
    const windows = await valWindows(8);
    for (const blind of [actionBlind, noisyBlind]) {
      const r = actionControllability(blind, windows, K, PX)!;
      expect(r.figure.deltaPsnr).toBe(0);
      expect(r.figure.recordedWins).toBe(0.5);
      expect(r.figure.psnr).toBe(r.figure.otherPsnr);
      expect(r.figure.windows).toBe(8);
    }
    const r = actionControllability(shiftByAction, windows, K, PX)!;
    expect(r.figure.deltaPsnr).toBeGreaterThan(5);
    expect(r.figure.recordedWins).toBeGreaterThanOrEqual(0.75);
    expect(r.figure.psnr).toBeGreaterThan(r.figure.otherPsnr);
    expect(describeControllability(r.figure)).toMatch(/^action dPSNR \+\d+\.\d\d dB \(recorded actions better in \d+(\.5)?\/8 windows\)$/);
  });

  it('imagines only the other-action futures when the recorded ones are passed in', async () => {
    const windows = await valWindows(4);
    const calls: Float32Array[][] = [];
    const counting: ImagineFutures = (ws, actions) => {
      calls.push(actions);
      return shiftByAction(ws, actions);
    };
    const recorded = shiftByAction(
      windows,
      windows.map((w) => w.actions),
    );
    const r = actionControllability(counting, windows, K, PX, recorded)!;
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(otherWindowOrder(4).map((j) => windows[j]!.actions));
    expect(r.recorded).toBe(recorded);
    expect(r.figure).toEqual(actionControllability(shiftByAction, windows, K, PX)!.figure);
    // One window has no other window to borrow actions from.
    expect(actionControllability(shiftByAction, windows.slice(0, 1), K, PX)).toBeUndefined();
  });

  describe('on the world model', () => {
    beforeAll(useTestBackend);
    const cfg = worldModelConfig('tiny', { imageHeight: H, imageWidth: W, actionDim: A, languageDim: 0, prediction: 'residual' });
    const imagineWith =
      (params: ReturnType<typeof toTf>): ImagineFutures =>
      (ws: WindowLike[], actions: Float32Array[]) =>
        predictFutures(params, cfg, ws, K, F, 3, actions);

    it('an untrained residual model (nothing moves) scores 0 dB; one whose weights read the action does not', async () => {
      const windows = await valWindows(3);
      const still = toTf(worldModelInit(cfg, 0));
      const zero = actionControllability(imagineWith(still), windows, K, PX)!;
      expect(zero.figure.deltaPsnr).toBeCloseTo(0, 9);
      const random = toTf(randomiseWeights(worldModelInit(cfg, 1), 2, 0.1));
      const r = actionControllability(imagineWith(random), windows, K, PX)!;
      expect(Math.abs(r.figure.deltaPsnr)).toBeGreaterThan(1e-4);
      // Same noise per window: the recorded-action pass equals predictFutures without actions.
      expect(r.recorded).toEqual(predictFutures(random, cfg, windows, K, F, 3));
      tf.dispose([...Object.values(still), ...Object.values(random)]);
    });
  });
});
