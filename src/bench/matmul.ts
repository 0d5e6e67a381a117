/** The active backend's matmul throughput: the peak that model and planner throughput are compared against. */
import * as tf from '@tensorflow/tfjs';
import { timeMs } from './table.js';

export async function matmulGflops(n: number, reps: number): Promise<number> {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  // Not returned from tidy: tidy would walk a returned typed array element by element.
  const ms = await timeMs(() => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }, reps);
  tf.dispose([a, b]);
  return (2 * n ** 3) / (ms / 1000) / 1e9;
}
