/**
 * ODE integration of the flow from noise (t = 1) to data (t = 0) with a few Euler or Heun
 * steps. Works on any tensor state; the caller's velocity function sees the current time.
 */
import * as tf from '@tensorflow/tfjs';

export type Integrator = 'euler' | 'heun';

/** Velocity of the state at scalar time t (dx/dt in the forward() convention). */
export type VelocityFn = (x: tf.Tensor, t: number) => tf.Tensor;

/** Uniform time grid 1 -> 0 with `steps` intervals. */
export function timeGrid(steps: number): number[] {
  return Array.from({ length: steps + 1 }, (_, i) => 1 - i / steps);
}

/**
 * Integrates from t = 1 to t = 0. Each step is tidied, so only the returned tensor survives;
 * `x1` itself is not disposed. Heun's corrector is skipped on the final step into t = 0,
 * as SiT's sampler does (the velocity at t = 0 is not needed).
 */
export function integrate(velocity: VelocityFn, x1: tf.Tensor, steps: number, method: Integrator = 'euler'): tf.Tensor {
  if (!(steps >= 1)) throw new Error(`flow steps must be >= 1, got ${steps}`);
  const grid = timeGrid(steps);
  let x = x1;
  for (let i = 0; i < steps; i++) {
    const t = grid[i]!;
    const tNext = grid[i + 1]!;
    const prev = x;
    x = tf.tidy(() => {
      const v = velocity(prev, t);
      const euler = tf.add(prev, tf.mul(tNext - t, v));
      if (method === 'euler' || tNext === 0) return euler;
      const v2 = velocity(euler, tNext);
      return tf.add(prev, tf.mul((tNext - t) / 2, tf.add(v, v2)));
    });
    if (prev !== x1) prev.dispose();
  }
  return x;
}
