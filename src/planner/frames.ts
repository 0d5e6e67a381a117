import * as tf from '@tensorflow/tfjs';
import { unitToImage } from '../image/canvas.js';
import { toModelFrame } from '../image/resize.js';
import type { Observation } from '../core/types.js';

/** Camera frames to the model's input [h, w, 3] in [-1, 1] (area-filtered, as training data is). */
export function observationToTensor(obs: Observation, height: number, width: number): tf.Tensor3D {
  if (obs.image.length !== obs.height * obs.width * 3)
    throw new Error(`observation image has ${obs.image.length} bytes, expected ${obs.height}x${obs.width}x3`);
  return tf.tensor3d(toModelFrame({ data: obs.image, width: obs.width, height: obs.height }, height, width), [height, width, 3]);
}

/** [-1, 1] frame(s) [..., h, w, 3] to RGB uint8 images, h x w x 3 each. */
export function tensorToImages(frames: tf.Tensor): Uint8Array[] {
  const [h, w] = frames.shape.slice(-3, -1) as [number, number];
  const data = frames.dataSync();
  const per = h * w * 3;
  return Array.from({ length: data.length / per }, (_, i) => unitToImage(data.subarray(i * per, (i + 1) * per), w, h).data);
}
