/**
 * The small convolutional trunk the state reader and the action policy share: a patch stem, two
 * residual 3x3 convolutions, then a spatial softmax (each channel's expected image position,
 * sub-patch precision for "where is the gripper, where is the can") and the channels' means.
 * The convolutions are written as shifted slices and one matrix product so that training runs on
 * the wasm backend, which has no filter gradient for tf.conv2d.
 */
import * as tf from '@tensorflow/tfjs';
import { linear, type Params } from './layers.js';

/** The trunk's weights (names `stem`, `conv1`, `conv2`) for `channels` channels over patch x patch RGB patches. */
export function convTrunkLayout(channels: number, patch: number): [string, number[]][] {
  const k = channels;
  return [
    ['stem.weight', [k, 3 * patch * patch]],
    ['stem.bias', [k]],
    ['conv1.weight', [k, 9 * k]],
    ['conv1.bias', [k]],
    ['conv2.weight', [k, 9 * k]],
    ['conv2.bias', [k]],
  ];
}

/** Features per picture: 2 spatial-softmax coordinates and a mean per channel. */
export const trunkFeatures = (channels: number) => 3 * channels;

/** [B, H, W, C] -> [B, H, W, 9C]: each pixel with its 3x3 neighbourhood (zero padded), row-major. */
function neighbourhoods(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const parts: tf.Tensor4D[] = [];
  for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) parts.push(tf.slice(padded, [0, dy, dx, 0], [-1, h, w, -1]));
  return tf.concat(parts, 3) as tf.Tensor4D;
}

/** Expected (row, column) in [-1, 1] of every channel's softmax over the positions: [B, 2C]. */
function spatialSoftmax(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  const weights = tf.softmax(tf.transpose(x.reshape([b, h * w, c]), [0, 2, 1])); // [B, C, HW]
  const rows = new Float32Array(h * w * 2);
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      rows[(i * w + j) * 2] = h > 1 ? (2 * i) / (h - 1) - 1 : 0;
      rows[(i * w + j) * 2 + 1] = w > 1 ? (2 * j) / (w - 1) - 1 : 0;
    }
  const grid = tf.tensor2d(rows, [h * w, 2]);
  return tf.matMul(weights.reshape([b * c, h * w]), grid).reshape([b, 2 * c]) as tf.Tensor2D;
}

/** Pictures [B, H, W, 3] in [-1, 1] (H and W multiples of `patch`) to features [B, 3C]. */
export function convTrunk(p: Params, patch: number, images: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [b, h, w] = images.shape;
    const gh = h / patch;
    const gw = w / patch;
    const patches = images
      .reshape([b, gh, patch, gw, patch, 3])
      .transpose([0, 1, 3, 2, 4, 5])
      .reshape([b, gh, gw, patch * patch * 3]);
    let x = tf.relu(linear(patches, p, 'stem')) as tf.Tensor4D;
    x = tf.add(x, tf.relu(linear(neighbourhoods(x), p, 'conv1'))) as tf.Tensor4D;
    x = tf.add(x, tf.relu(linear(neighbourhoods(x), p, 'conv2'))) as tf.Tensor4D;
    return tf.concat([spatialSoftmax(x), tf.mean(x, [1, 2])], 1) as tf.Tensor2D;
  });
}
