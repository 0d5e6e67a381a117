/**
 * The linear flow path in the official forward() convention: t = 0 is data, t = 1 is noise,
 * x_t = (1 - t) x + t eps, and the model predicts the velocity v = dx_t/dt = eps - x.
 * (Internally the official model runs on 1 - t; the DiT boundary does the flip.)
 */
import * as tf from '@tensorflow/tfjs';

/** Broadcasts t (any shape that is a prefix of x's, e.g. [B, F] or [B, F, N]) over x's trailing axes. */
export function expandTime(t: tf.Tensor, like: tf.Tensor): tf.Tensor {
  let e = t;
  while (e.rank < like.rank) e = e.expandDims(-1);
  return e;
}

export function noisy(x: tf.Tensor, eps: tf.Tensor, t: tf.Tensor): tf.Tensor {
  const te = expandTime(t, x);
  return tf.add(tf.mul(tf.sub(1, te), x), tf.mul(te, eps));
}

export function velocityTarget(x: tf.Tensor, eps: tf.Tensor): tf.Tensor {
  return tf.sub(eps, x);
}

/** The clean estimate implied by a velocity at time t: x = x_t - t v. */
export function cleanEstimate(xt: tf.Tensor, v: tf.Tensor, t: tf.Tensor): tf.Tensor {
  return tf.sub(xt, tf.mul(expandTime(t, xt), v));
}
