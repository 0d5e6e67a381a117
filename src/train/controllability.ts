/**
 * Does the world model follow the action? Genie's ΔPSNR on validation windows: the PSNR of the
 * future imagined under the window's recorded actions against the true future, minus the PSNR of
 * the future imagined (with the same noise) under another window's actions. A model that reads
 * the future off the context alone imagines the same frames under both and scores 0 dB; one that
 * follows the action scores well above 0.
 *
 * The figure takes an imagine function rather than a model, so the training loop passes the EMA
 * world model and tests pass small hand-built predictors.
 */
import type { WindowLike } from './training-window.js';

/**
 * Imagined futures (H x h x w x 3 values in [-1, 1] per window) of `windows` under `actions` (one
 * H x A sequence per window). The noise must depend on the window's index alone, not on its
 * actions, so the two imaginations of a window differ only by what the actions change.
 */
export type ImagineFutures = (windows: WindowLike[], actions: Float32Array[]) => Float32Array[];

export interface Controllability {
  /** Mean over windows of PSNR(recorded actions) - PSNR(another window's actions), dB; near 0 = action-blind. */
  deltaPsnr: number;
  /** Mean PSNR (dB) of the futures imagined under the recorded actions. */
  psnr: number;
  /** Mean PSNR (dB) of the futures imagined under another window's actions. */
  otherPsnr: number;
  /** Share of windows whose recorded actions give the higher PSNR, a tie counting one half (action-blind: 0.5). */
  recordedWins: number;
  windows: number;
}

/** Pixel values span [-1, 1]: peak-to-peak 2. */
const PEAK_SQUARED = 4;
/** An exact prediction would have infinite PSNR; its error is floored here (PSNR at most 10·log10(4e8) ≈ 86 dB). */
const MSE_FLOOR = 1e-8;
/** PSNRs closer than this (dB) count as a tie. */
const TIE_DB = 1e-9;

/**
 * The fixed derangement whose actions each window is imagined under: window i takes the actions
 * of window (i + floor(n/2)) mod n, the one half the set away (validation windows that sit next to
 * each other often come from one episode and move alike). Needs n >= 2.
 */
export function otherWindowOrder(n: number): number[] {
  if (n < 2) throw new Error(`otherWindowOrder: needs at least 2 windows, got ${n}`);
  const shift = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i + shift) % n);
}

/** PSNR (dB) of `predicted` against `truth`, both in [-1, 1]. */
export function psnr(predicted: ArrayLike<number>, truth: ArrayLike<number>): number {
  if (predicted.length !== truth.length || !truth.length)
    throw new Error(`psnr: ${predicted.length} predicted values against ${truth.length} true ones`);
  let se = 0;
  for (let i = 0; i < truth.length; i++) se += (predicted[i]! - truth[i]!) ** 2;
  return 10 * Math.log10(PEAK_SQUARED / Math.max(se / truth.length, MSE_FLOOR));
}

export interface ControllabilityRun {
  figure: Controllability;
  /** The futures imagined under the recorded actions (passed in, or imagined here). */
  recorded: Float32Array[];
  /** The futures imagined under otherWindowOrder's actions, per window. */
  other: Float32Array[];
}

/**
 * ΔPSNR over `windows` (K context frames of `px` values each, then the future). `recorded` takes
 * the futures already imagined under the recorded actions (validation has them), so only the
 * other-action futures cost an imagination pass. Undefined for fewer than two windows.
 */
export function actionControllability(
  imagine: ImagineFutures,
  windows: WindowLike[],
  contextFrames: number,
  px: number,
  recorded?: Float32Array[],
): ControllabilityRun | undefined {
  if (windows.length < 2) return undefined;
  const own =
    recorded ??
    imagine(
      windows,
      windows.map((w) => w.actions),
    );
  const order = otherWindowOrder(windows.length);
  const other = imagine(
    windows,
    order.map((j) => windows[j]!.actions),
  );
  let delta = 0;
  let sumOwn = 0;
  let sumOther = 0;
  let wins = 0;
  windows.forEach((w, i) => {
    const future = w.frames.subarray(contextFrames * px);
    const a = psnr(own[i]!, future);
    const b = psnr(other[i]!, future);
    delta += a - b;
    sumOwn += a;
    sumOther += b;
    wins += Math.abs(a - b) <= TIE_DB ? 0.5 : a > b ? 1 : 0;
  });
  const n = windows.length;
  return {
    figure: { deltaPsnr: delta / n, psnr: sumOwn / n, otherPsnr: sumOther / n, recordedWins: wins / n, windows: n },
    recorded: own,
    other,
  };
}

/** One line for logs and strip captions, e.g. "action dPSNR +3.21 dB (recorded actions better in 7/8 windows)". */
export function describeControllability(c: Controllability): string {
  const rounded = c.deltaPsnr.toFixed(2);
  // A tiny negative difference rounds to "-0.00": shown as +0.00.
  const shown = rounded.startsWith('-') && Number(rounded) === 0 ? rounded.slice(1) : rounded;
  const better = c.recordedWins * c.windows;
  return `action dPSNR ${shown.startsWith('-') ? '' : '+'}${shown} dB (recorded actions better in ${Number.isInteger(better) ? better : better.toFixed(1)}/${c.windows} windows)`;
}
