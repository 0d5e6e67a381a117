import * as tf from '@tensorflow/tfjs';
import { toModelFrame } from '../image/resize.js';
import type { Observation } from './types.js';

/** Camera frames to the model's input [h, w, 3] in [-1, 1] (area-filtered, as training data is). */
export function observationToTensor(obs: Observation, height: number, width: number): tf.Tensor3D {
  if (obs.image.length !== obs.height * obs.width * 3) throw new Error(`observation image has ${obs.image.length} bytes, expected ${obs.height}x${obs.width}x3`);
  return tf.tensor3d(toModelFrame({ data: obs.image, width: obs.width, height: obs.height }, height, width), [height, width, 3]);
}

/** [-1, 1] frame(s) to RGB uint8, row-major h x w x 3 each. */
export function tensorToImages(frames: tf.Tensor): Uint8Array[] {
  const [h, w] = frames.shape.slice(-3, -1) as [number, number];
  const data = frames.dataSync();
  const per = h * w * 3;
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length / per; i++) {
    const img = new Uint8Array(per);
    for (let j = 0; j < per; j++) img[j] = Math.max(0, Math.min(255, Math.round((data[i * per + j]! + 1) * 127.5)));
    out.push(img);
  }
  return out;
}
