/**
 * Multi-scale pixel distance: mean squared error at full resolution and at every level of a
 * blur-and-halve pyramid down to a few pixels, averaged over levels. Plain MSE is flat while a
 * small moving part (the gripper, a can) does not overlap its place in the goal image; the coarse
 * levels spread it over overlapping neighbourhoods (~16 px at 32x40), so the distance keeps
 * falling as the part approaches.
 */
import * as tf from '@tensorflow/tfjs';

/** Levels for an h x w image: halve until the shorter side would drop below 4 pixels. */
export function pyramidLevels(h: number, w: number): number {
  let levels = 1;
  while (Math.min(h, w) / 2 ** levels >= 4 && h % 2 ** levels === 0 && w % 2 ** levels === 0) levels++;
  return levels;
}

/** a [N, h, w, 3] against b [h, w, 3] (or [N, h, w, 3]) -> [N]. */
export function pyramidDistance(a: tf.Tensor4D, b: tf.Tensor3D | tf.Tensor4D): tf.Tensor1D {
  return tf.tidy(() => {
    const [, h, w] = a.shape;
    let x: tf.Tensor4D = a;
    let y = (b.rank === 3 ? b.expandDims(0) : b) as tf.Tensor4D;
    const levels = pyramidLevels(h, w);
    let sum = tf.mean(tf.square(tf.sub(x, y)), [1, 2, 3]);
    for (let l = 1; l < levels; l++) {
      // Blur before halving: plain 2x2 pooling would snap a part to a cell and go flat between cells.
      x = tf.avgPool(tf.avgPool(x, 3, 1, 'same'), 2, 2, 'valid');
      y = tf.avgPool(tf.avgPool(y, 3, 1, 'same'), 2, 2, 'valid');
      sum = tf.add(sum, tf.mean(tf.square(tf.sub(x, y)), [1, 2, 3]));
    }
    return tf.div(sum, levels) as tf.Tensor1D;
  });
}

/** Pixel change (in [-1, 1] units) that counts fully in a change map; smaller changes count in proportion. */
export const CHANGE_SCALE = 0.2;

/** Where `x` differs from `now`, per pixel in [0, 1]: [N, h, w, 1]. Contrast-free, so a dark part over a dark background still shows. */
export function changeMap(x: tf.Tensor4D, now: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => tf.minimum(tf.div(tf.max(tf.abs(tf.sub(x, now.expandDims(0))), -1, true), CHANGE_SCALE), 1) as tf.Tensor4D);
}

/**
 * Change-map distance: the multi-scale distance between where the candidate's frames differ from
 * the current camera frame and where the goal picture does. Plain pixel distances are dominated by
 * contrast: moving the gripper in front of a dark cabinet "hides" it and lowers the pixel error
 * more than moving it towards its goal position (measured with the simulator oracle); change maps
 * mark both positions alike whatever the background.
 */
export function changeDistance(frames: tf.Tensor4D, now: tf.Tensor3D, goal: tf.Tensor3D): tf.Tensor1D {
  return tf.tidy(() =>
    pyramidDistance(changeMap(frames, now), changeMap(goal.expandDims(0) as tf.Tensor4D, now).squeeze([0]) as tf.Tensor3D),
  );
}

/** Change mass (in fully changed pixels) below which a change map counts as "nothing changed". */
const MIN_CHANGE_MASS = 0.5;

/** Centre of each change map [N, h, w, 1] -> rows [N, 2] (y, x in pixels) and masses [N]. */
function changeCentres(maps: tf.Tensor4D): { centres: tf.Tensor2D; mass: tf.Tensor1D } {
  const [, h, w] = maps.shape;
  const mass = tf.sum(maps, [1, 2, 3]) as tf.Tensor1D;
  const safe = tf.maximum(mass, 1e-6);
  const cy = tf.div(tf.sum(tf.mul(maps, tf.range(0, h).reshape([1, h, 1, 1])), [1, 2, 3]), safe);
  const cx = tf.div(tf.sum(tf.mul(maps, tf.range(0, w).reshape([1, 1, w, 1])), [1, 2, 3]), safe);
  return { centres: tf.stack([cy, cx], 1) as tf.Tensor2D, mass };
}

/**
 * Reach distance: how far the centre of what changed in each candidate frame lies from the centre of
 * what changed in the goal picture (both against the current frame), as a share of the image
 * diagonal. A part going from A to B marks A and B in the goal's change map and A and C in the
 * candidate's, so the centres are (A+B)/2 and (A+C)/2 and the distance falls in proportion as C
 * approaches B, however far apart they are; the change and pyramid distances level off once the part
 * overlaps its goal position at no scale, which left the planner drifting towards far goals (measured
 * with the simulator oracle). A goal with no change gives 0 (nothing to reach); a candidate with no
 * change while the goal has some gives 1.
 */
export function reachDistance(frames: tf.Tensor4D, now: tf.Tensor3D, goal: tf.Tensor3D): tf.Tensor1D {
  return tf.tidy(() => {
    const [n, h, w] = frames.shape;
    const cand = changeCentres(changeMap(frames, now));
    const target = changeCentres(changeMap(goal.expandDims(0) as tf.Tensor4D, now));
    const dist = tf.div(tf.norm(tf.sub(cand.centres, target.centres), 'euclidean', 1), Math.hypot(h - 1, w - 1));
    const goalMoved = tf.greaterEqual(target.mass, MIN_CHANGE_MASS).tile([n]);
    const candMoved = tf.greaterEqual(cand.mass, MIN_CHANGE_MASS);
    return tf.where(goalMoved, tf.where(candMoved, dist, tf.onesLike(dist)), tf.zerosLike(dist)) as tf.Tensor1D;
  });
}

/** Share of pixels (weighted by how much they changed, see changeMap) where two frames differ: how far from "the same picture". */
export function differingFraction(a: tf.Tensor3D, b: tf.Tensor3D): number {
  return tf.tidy(() => tf.mean(changeMap(a.expandDims(0) as tf.Tensor4D, b)).dataSync()[0]!);
}
