/**
 * A real ROS 2 node through rclnodejs, in raw (serialized CDR) mode so the one codec of
 * src/robot/msgs.ts serves it like every other transport. rclnodejs is an optionalDependency
 * that only builds against a sourced ROS 2 (npm skips it elsewhere), so it is imported
 * dynamically and only when ROS_DISTRO is set.
 */
import { UserError, errorMessage } from '../core/errors.js';
import { LinkBase } from './link.js';
import type { RosType } from './msgs.js';
import { stripRosArgs } from './ros-args.js';

/** The part of rclnodejs this link uses (subscriptions with `isRaw` hand over the CDR Buffer; publish(Buffer) sends raw). */
interface RclPublisher {
  publish(message: Buffer): void;
}
interface RclNode {
  createSubscription(type: string, topic: string, options: { qos?: unknown; isRaw?: boolean }, callback: (msg: Buffer) => void): unknown;
  createPublisher(type: string, topic: string, options?: { qos?: unknown }): RclPublisher;
  spin(): void;
  destroy(): void;
}
export interface Rclnodejs {
  /** rclnodejs 2.x: `init(context = Context.defaultContext(), argv = process.argv)`. */
  init(context?: unknown, argv?: string[]): Promise<void>;
  Node: new (name: string, namespace?: string) => RclNode;
  QoS?: { profileSensorData?: unknown; profileDefault?: unknown };
  shutdown(): void;
  isShutdown?(): boolean;
}

export async function loadRclnodejs(): Promise<Rclnodejs> {
  if (!process.env.ROS_DISTRO) {
    throw new UserError('--robot ros2 needs a ROS 2 environment: ROS_DISTRO is not set (source /opt/ros/<distro>/setup.bash first)');
  }
  const name = 'rclnodejs';
  try {
    const mod = (await import(name)) as { default?: Rclnodejs } & Rclnodejs;
    return mod.default ?? mod;
  } catch (e) {
    // npm skips the optional rclnodejs when ROS 2 was not sourced at install time.
    throw new UserError(
      `--robot ros2: cannot load rclnodejs (${errorMessage(e)}); it builds only against a sourced ROS 2: source ROS 2 ${process.env.ROS_DISTRO}, then install selfflow-wm again (or \`npm install rclnodejs\` beside it)`,
    );
  }
}

/**
 * The argv for rcl: process.argv without its `--ros-args … [--]` sections. The CLI has applied
 * them already (node name, namespace, remaps, -p, --params-file); rcl would apply the remaps a
 * second time and parse the params file with its own YAML parser.
 */
export function rclInitArgv(argv: string[] = process.argv): string[] {
  return [...argv.slice(0, 2), ...stripRosArgs(argv.slice(2)).argv];
}

const SENSOR_TYPES = new Set<RosType>([
  'sensor_msgs/msg/Image',
  'sensor_msgs/msg/CompressedImage',
  'sensor_msgs/msg/JointState',
  'geometry_msgs/msg/PoseStamped',
]);

export class RclnodejsLink extends LinkBase {
  private readonly publishers = new Map<string, RclPublisher>();
  private readonly subscribed = new Set<string>();

  private constructor(
    private readonly rcl: Rclnodejs,
    private readonly node: RclNode,
    clock?: () => number,
  ) {
    super('ros2 (rclnodejs)', clock);
  }

  /**
   * Starts a node named `nodeName` in `namespace` (as launch_ros passes them in --ros-args).
   * `deps` replaces the rclnodejs module and the process argv (tests).
   */
  static async create(
    nodeName: string,
    namespace = '',
    clock?: () => number,
    deps: { rcl?: Rclnodejs; argv?: string[] } = {},
  ): Promise<RclnodejsLink> {
    const rcl = deps.rcl ?? (await loadRclnodejs());
    // undefined: rclnodejs's default context.
    await rcl.init(undefined, rclInitArgv(deps.argv));
    const node = new rcl.Node(nodeName, namespace);
    const link = new RclnodejsLink(rcl, node, clock);
    node.spin();
    link.setState('up');
    return link;
  }

  override subscribe(topic: string, type: RosType): void {
    super.subscribe(topic, type);
    if (this.subscribed.has(topic)) return;
    this.subscribed.add(topic);
    // Cameras and joint states are best-effort sensor streams on most robots.
    const qos = SENSOR_TYPES.has(type) ? this.rcl.QoS?.profileSensorData : undefined;
    this.node.createSubscription(type, topic, { isRaw: true, ...(qos ? { qos } : {}) }, (buf) => {
      this.deliver(topic, type, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice());
    });
  }

  override advertise(topic: string, type: RosType): void {
    super.advertise(topic, type);
    if (!this.publishers.has(topic)) this.publishers.set(topic, this.node.createPublisher(type, topic));
  }

  publish(topic: string, data: Uint8Array): boolean {
    const p = this.publishers.get(topic);
    if (!p || this.state !== 'up') return false;
    p.publish(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return true;
  }

  override async close(): Promise<void> {
    try {
      this.node.destroy();
      if (!this.rcl.isShutdown?.()) this.rcl.shutdown();
    } finally {
      await super.close();
    }
  }
}
