/**
 * The ROS 2 messages the service exchanges, as plain objects, and their conversions to and from
 * the planner's Observation and the RT-1 action. Field names follow the .msg files in msgs/.
 */
import { decodeImage } from '../image/decode.js';
import { encodeJpeg } from '../image/jpeg.js';
import type { Observation } from '../core/types.js';
import { UserError } from '../core/errors.js';
import { flattenAction, gripperCommand, RT1_ACTION_SIZE, unflattenAction, type Rt1Action } from '../core/action.js';

export interface TimeMsg {
  sec: number;
  nanosec: number;
}
export interface HeaderMsg {
  stamp: TimeMsg;
  frame_id: string;
}
export interface ImageMsg {
  header: HeaderMsg;
  height: number;
  width: number;
  encoding: string;
  is_bigendian: number;
  step: number;
  data: Uint8Array;
}
export interface CompressedImageMsg {
  header: HeaderMsg;
  format: string;
  data: Uint8Array;
}
export interface JointStateMsg {
  header: HeaderMsg;
  name: string[];
  position: Float64Array | number[];
  velocity: Float64Array | number[];
  effort: Float64Array | number[];
}
export interface Vector3Msg {
  x: number;
  y: number;
  z: number;
}
export interface TwistStampedMsg {
  header: HeaderMsg;
  twist: { linear: Vector3Msg; angular: Vector3Msg };
}
export interface PoseStampedMsg {
  header: HeaderMsg;
  pose: { position: Vector3Msg; orientation: { x: number; y: number; z: number; w: number } };
}
export interface Float32MultiArrayMsg {
  layout: { dim: { label: string; size: number; stride: number }[]; data_offset: number };
  data: Float32Array | number[];
}
export interface BoolMsg {
  data: boolean;
}
export interface StringMsg {
  data: string;
}
export interface GripperCommandMsg {
  position: number;
  max_effort: number;
}

export function msToStamp(ms: number): TimeMsg {
  const sec = Math.floor(ms / 1000);
  return { sec, nanosec: Math.round((ms - sec * 1000) * 1e6) };
}

export function stampToMs(t: TimeMsg): number {
  return t.sec * 1000 + t.nanosec / 1e6;
}

export function header(ms: number, frameId: string): HeaderMsg {
  return { stamp: msToStamp(ms), frame_id: frameId };
}

const CHANNELS: Record<string, { n: number; order: [number, number, number] }> = {
  rgb8: { n: 3, order: [0, 1, 2] },
  bgr8: { n: 3, order: [2, 1, 0] },
  rgba8: { n: 4, order: [0, 1, 2] },
  bgra8: { n: 4, order: [2, 1, 0] },
  mono8: { n: 1, order: [0, 0, 0] },
};

/** sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8; any row step) to an RGB Observation. */
export function imageToObservation(msg: ImageMsg, where = 'image'): Observation {
  const c = CHANNELS[msg.encoding];
  if (!c) throw new UserError(`${where}: image encoding '${msg.encoding}' is not supported (${Object.keys(CHANNELS).join(', ')})`);
  const { height, width, step } = msg;
  if (!(height > 0 && width > 0)) throw new UserError(`${where}: image is ${width}x${height}`);
  if (step < width * c.n || msg.data.length < step * height) {
    throw new UserError(
      `${where}: image data holds ${msg.data.length} bytes, ${width}x${height} ${msg.encoding} with step ${step} needs ${step * height}`,
    );
  }
  const src = msg.data;
  let image: Uint8Array;
  if (c.n === 3 && c.order[0] === 0 && step === width * 3)
    image = src.length === width * height * 3 ? src : src.subarray(0, width * height * 3);
  else {
    image = new Uint8Array(width * height * 3);
    const [r, g, b] = c.order;
    for (let y = 0; y < height; y++) {
      let s = y * step;
      let d = y * width * 3;
      for (let x = 0; x < width; x++, s += c.n, d += 3) {
        image[d] = src[s + r]!;
        image[d + 1] = src[s + g]!;
        image[d + 2] = src[s + b]!;
      }
    }
  }
  return { image, height, width, stamp: stampToMs(msg.header.stamp) };
}

export function observationToImage(obs: Observation, frameId: string): ImageMsg {
  return {
    header: header(obs.stamp, frameId),
    height: obs.height,
    width: obs.width,
    encoding: 'rgb8',
    is_bigendian: 0,
    step: obs.width * 3,
    data: obs.image,
  };
}

/** Decodes a compressed frame; one that declares more than `maxPixels` pixels is refused before decoding. */
export function compressedToObservation(msg: CompressedImageMsg, where = 'image', maxPixels?: number): Observation {
  const img = decodeImage(msg.data, where, { maxPixels });
  return { image: img.data, height: img.height, width: img.width, stamp: stampToMs(msg.header.stamp) };
}

export function observationToCompressed(obs: Observation, frameId: string, quality = 85): CompressedImageMsg {
  return { header: header(obs.stamp, frameId), format: 'jpeg', data: encodeJpeg(obs.image, obs.width, obs.height, quality) };
}

/** Joint positions in the order of `names` (all of them, in message order, when `names` is empty). */
export function jointPositions(msg: JointStateMsg, names: string[], where = 'joint_states'): Float32Array {
  if (names.length === 0) return Float32Array.from(msg.position);
  return Float32Array.from(
    names.map((n) => {
      const i = msg.name.indexOf(n);
      if (i < 0 || i >= msg.position.length)
        throw new UserError(`${where}: joint '${n}' is missing (message has ${msg.name.join(', ') || 'no names'})`);
      return msg.position[i]!;
    }),
  );
}

/** The RT-1 action as std_msgs/Float32MultiArray: one dimension `rt1_action` of 10 values, RT1_ACTION_LAYOUT order. */
export function actionToMultiArray(a: Rt1Action): Float32MultiArrayMsg {
  return {
    layout: { dim: [{ label: 'rt1_action', size: RT1_ACTION_SIZE, stride: RT1_ACTION_SIZE }], data_offset: 0 },
    data: flattenAction(a),
  };
}

export function multiArrayToAction(msg: Float32MultiArrayMsg, where = 'selfflow/action'): Rt1Action {
  const v = Array.from(msg.data).slice(msg.layout.data_offset);
  if (v.length !== RT1_ACTION_SIZE)
    throw new UserError(`${where}: an RT-1 action has ${RT1_ACTION_SIZE} values, the message has ${v.length}`);
  if (v.some((x) => !Number.isFinite(x))) throw new UserError(`${where}: action holds a non-finite value`);
  return unflattenAction(v);
}

/** The end-effector twist that carries one RT-1 step over `periodS` seconds (m/s, rad/s). */
export function actionToTwist(a: Rt1Action, periodS: number, ms: number, frameId: string): TwistStampedMsg {
  const [x, y, z] = a.worldVector.map((v) => v / periodS) as [number, number, number];
  const [ax, ay, az] = a.rotationDelta.map((v) => v / periodS) as [number, number, number];
  return { header: header(ms, frameId), twist: { linear: { x, y, z }, angular: { x: ax, y: ay, z: az } } };
}

export function zeroTwist(ms: number, frameId: string): TwistStampedMsg {
  return { header: header(ms, frameId), twist: { linear: { x: 0, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } } };
}

export interface GripperConfig {
  /** Finger position (m) for open and closed. */
  openPosition: number;
  closedPosition: number;
  maxEffort: number;
}

/** RT-1 semantics (gripperCommand): close, open, otherwise hold (no command). */
export function gripperCommandFor(a: Rt1Action, g: GripperConfig): GripperCommandMsg | undefined {
  const cmd = gripperCommand(a);
  if (cmd === 'keep') return undefined;
  return { position: cmd === 'close' ? g.closedPosition : g.openPosition, max_effort: g.maxEffort };
}
