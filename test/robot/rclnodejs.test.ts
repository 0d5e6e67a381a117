/**
 * What the link hands rclnodejs (a stand-in module: runs everywhere), and, only where ROS 2 is
 * installed and sourced (ROS_DISTRO set) and rclnodejs is installed: the link's node publishes a
 * raw CDR image and receives it back through its own subscription (ROS 2 delivers a node's own
 * publications), byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { firstValueFrom, filter, timeout } from 'rxjs';
import { rosCodec } from '../../src/robot/msgs.js';
import { observationToImage } from '../../src/robot/messages.js';
import { RclnodejsLink, type Rclnodejs } from '../../src/robot/rclnodejs-link.js';

describe('rclnodejs link setup (stand-in module)', () => {
  it('starts rcl without the --ros-args the CLI has already applied, and names the node itself', async () => {
    const calls: { init?: unknown[]; node?: unknown[]; shutdown: number } = { shutdown: 0 };
    const rcl: Rclnodejs = {
      init: async (...args: unknown[]) => void (calls.init = args),
      Node: class {
        constructor(...args: unknown[]) {
          calls.node = args;
        }
        createSubscription() {}
        createPublisher() {
          return { publish() {} };
        }
        spin() {}
        destroy() {}
      },
      shutdown: () => void calls.shutdown++,
    };
    // What launch_ros runs: our flags, then its --ros-args section (and a second one after `--`).
    const argv = [
      '/usr/bin/node',
      '/opt/selfflow-wm/bin/selfflow-wm.js',
      'serve',
      '--robot',
      'ros2',
      '--ros-args',
      '-r',
      '__node:=planner',
      '-r',
      '__ns:=/arm',
      '-r',
      'image_raw:=/cam/image_raw',
      '--params-file',
      '/tmp/params.yaml',
      '-p',
      'api.port:=9000',
      '--',
      '--policy',
      'expert',
    ];
    const link = await RclnodejsLink.create('planner', '/arm', undefined, { rcl, argv });
    expect(calls.init).toEqual([
      undefined,
      ['/usr/bin/node', '/opt/selfflow-wm/bin/selfflow-wm.js', 'serve', '--robot', 'ros2', '--policy', 'expert'],
    ]);
    expect(calls.node).toEqual(['planner', '/arm']);
    expect(link.state).toBe('up');
    await link.close();
    expect(calls.shutdown).toBe(1);
  });
});

const hasRos = Boolean(process.env.ROS_DISTRO);
if (!hasRos) console.log('rclnodejs test skipped: ROS_DISTRO is not set (needs a sourced ROS 2 installation and `npm install rclnodejs`)');

describe.skipIf(!hasRos)('rclnodejs link (ROS 2 present)', () => {
  it('publishes and receives a raw CDR image byte for byte', async () => {
    process.env.ROS_LOCALHOST_ONLY ??= '1';
    const link = await RclnodejsLink.create('selfflow_test_service', '/selfflow_test');
    const codec = rosCodec();
    link.subscribe('/selfflow_test/image_raw', 'sensor_msgs/msg/Image');
    link.advertise('/selfflow_test/image_raw', 'sensor_msgs/msg/Image');
    const got = firstValueFrom(
      link.messages$.pipe(
        filter((m) => m.topic === '/selfflow_test/image_raw'),
        timeout(10_000),
      ),
    );
    const frame = codec.encode(
      'sensor_msgs/msg/Image',
      observationToImage({ image: new Uint8Array(12).fill(7), height: 2, width: 2, stamp: 5 }, 'cam'),
    );
    // Publish until the subscription has matched (DDS discovery takes a moment).
    const timer = setInterval(() => link.publish('/selfflow_test/image_raw', frame), 100);
    try {
      const m = await got;
      expect(m.type).toBe('sensor_msgs/msg/Image');
      expect([...m.data]).toEqual([...frame]);
    } finally {
      clearInterval(timer);
      await link.close();
    }
  });
});
