import { describe, expect, it } from 'vitest';
import { parse } from '@foxglove/rosmsg';
import { safeAction } from '../../src/core/action.js';
import { ROS_TYPES, rosCodec } from '../../src/robot/msgs.js';
import {
  actionToMultiArray,
  actionToTwist,
  compressedToObservation,
  imageToObservation,
  jointPositions,
  multiArrayToAction,
  observationToCompressed,
  observationToImage,
  type ImageMsg,
} from '../../src/robot/messages.js';

describe('ROS 2 codec from msgs/', () => {
  it('builds a parseable ros2msg schema for every type, dependencies included once', () => {
    for (const t of ROS_TYPES) {
      const s = rosCodec().schema(t);
      expect(() => parse(s.text, { ros2: true })).not.toThrow();
    }
    const img = rosCodec().schema('sensor_msgs/msg/Image').text;
    expect(img.match(/MSG: std_msgs\/Header/g)).toHaveLength(1);
    expect(img).toContain('MSG: builtin_interfaces/Time');
  });

  it('round-trips an image through CDR, with the known byte layout of a header', () => {
    const obs = { image: Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => i), height: 2, width: 4, stamp: 1500.25 };
    const bytes = rosCodec().encode('sensor_msgs/msg/Image', observationToImage(obs, 'cam'));
    // CDR little-endian encapsulation header, then sec=1 (int32), nanosec=500250000 (uint32).
    expect([...bytes.subarray(0, 4)]).toEqual([0, 1, 0, 0]);
    expect(new DataView(bytes.buffer, bytes.byteOffset).getInt32(4, true)).toBe(1);
    expect(new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true)).toBe(500_250_000);
    const back = imageToObservation(rosCodec().decode<ImageMsg>('sensor_msgs/msg/Image', bytes));
    expect([...back.image]).toEqual([...obs.image]);
    expect(back.stamp).toBeCloseTo(1500.25, 6);
  });

  it('converts bgr8 with row padding and rejects short data naming the topic', () => {
    const msg: ImageMsg = {
      header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
      height: 1,
      width: 2,
      encoding: 'bgr8',
      is_bigendian: 0,
      step: 8,
      data: Uint8Array.from([1, 2, 3, 4, 5, 6, 0, 0]),
    };
    expect([...imageToObservation(msg).image]).toEqual([3, 2, 1, 6, 5, 4]);
    expect(() => imageToObservation({ ...msg, data: new Uint8Array(3) }, 'camera/image_raw')).toThrow(
      /camera\/image_raw: image data holds 3 bytes/,
    );
    expect(() => imageToObservation({ ...msg, encoding: '16UC1' }, 'cam')).toThrow(/encoding '16UC1'/);
  });

  it('rejects truncated CDR with the topic in the message', () => {
    const bytes = rosCodec().encode('std_msgs/msg/Float32MultiArray', actionToMultiArray(safeAction()));
    expect(() => rosCodec().decode('std_msgs/msg/Float32MultiArray', bytes.subarray(0, 10), 'ns/selfflow/action')).toThrow(
      /ns\/selfflow\/action: malformed/,
    );
  });

  it('carries the RT-1 action in layout order and checks its size', () => {
    const a = { worldVector: [0.01, -0.02, 0.03], rotationDelta: [0, 0, 0.1], gripperClosedness: 1, terminateEpisode: [0, 1, 0] } as const;
    const msg = rosCodec().decode<never>(
      'std_msgs/msg/Float32MultiArray',
      rosCodec().encode(
        'std_msgs/msg/Float32MultiArray',
        actionToMultiArray({
          ...a,
          worldVector: [...a.worldVector],
          rotationDelta: [...a.rotationDelta],
          terminateEpisode: [...a.terminateEpisode],
        }),
      ),
    );
    const back = multiArrayToAction(msg);
    expect(back.worldVector[1]).toBeCloseTo(-0.02, 6);
    expect(back.gripperClosedness).toBe(1);
    expect(() => multiArrayToAction({ layout: { dim: [], data_offset: 0 }, data: [1, 2] })).toThrow(/10 values, the message has 2/);
  });

  it('turns an action into a twist over the control period', () => {
    const t = actionToTwist(
      { worldVector: [0.03, 0, 0], rotationDelta: [0, 0, 0.1], gripperClosedness: 0, terminateEpisode: [0, 1, 0] },
      1 / 3,
      0,
      'base',
    );
    expect(t.twist.linear.x).toBeCloseTo(0.09, 9);
    expect(t.twist.angular.z).toBeCloseTo(0.3, 9);
  });

  it('decodes JPEG CompressedImage and joint positions by name', () => {
    const obs = { image: new Uint8Array(16 * 8 * 3).fill(128), height: 8, width: 16, stamp: 0 };
    const c = rosCodec().decode<never>(
      'sensor_msgs/msg/CompressedImage',
      rosCodec().encode('sensor_msgs/msg/CompressedImage', observationToCompressed(obs, 'cam')),
    );
    const back = compressedToObservation(c);
    expect([back.width, back.height]).toEqual([16, 8]);
    expect(Math.abs(back.image[0]! - 128)).toBeLessThan(4);
    const js = { header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' }, name: ['a', 'b'], position: [1, 2], velocity: [], effort: [] };
    expect([...jointPositions(js, ['b', 'a'])]).toEqual([2, 1]);
    expect(() => jointPositions(js, ['c'])).toThrow(/joint 'c' is missing/);
  });
});
