/**
 * Seeded standard-normal noise for sampling. tfjs takes a seed of 0 as "no seed" and draws from
 * Math.random, so seed 0 (the probe's and `imagineSequences`' default) gave different imagined
 * frames on every run; it is mapped to another fixed value. Every other seed is passed unchanged,
 * so the noise, and the evaluation numbers measured with it, stay as they were.
 */
import * as tf from '@tensorflow/tfjs';

const SEED_ZERO = -1;

export function seededNormal(shape: number[], seed?: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed === 0 ? SEED_ZERO : seed);
}
