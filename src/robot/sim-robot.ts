/**
 * The MuJoCo simulator as a robot that speaks ROS 2 messages: it publishes the camera, joint
 * states and the end-effector pose, and every `selfflow/action` it receives steps physics by one
 * control period. The same core sits behind the in-process link (SimLink) and behind a Foxglove
 * WebSocket server (src/robot/foxglove-sim-server.ts), so the service drives it exactly as hardware.
 */
import type { SimEnv, StepResult } from '../sim/env.js';
import { LinkBase, resolveTopic } from './link.js';
import { header, multiArrayToAction, observationToCompressed, observationToImage, type Float32MultiArrayMsg } from './messages.js';
import { rosCodec, type RosType } from './msgs.js';

export const SIM_JOINT_NAMES = ['grip_x', 'grip_y', 'grip_z', 'grip_yaw', 'gripper_opening'];

export interface SimRobotOptions {
  namespace?: string;
  topics?: { image?: string; compressedImage?: string; jointStates?: string; eePose?: string; action?: string };
  /** Camera frame_id and base frame_id. */
  cameraFrame?: string;
  baseFrame?: string;
  /** Start the next episode (seed + 1) when one ends. */
  autoReset?: boolean;
  onEpisodeEnd?: (r: StepResult, seed: number) => void;
  onReset?: (env: SimEnv, seed: number) => void;
}

export interface OutMessage {
  topic: string;
  type: RosType;
  data: Uint8Array;
}

export class SimRobot {
  readonly topics: { image: string; compressedImage: string; jointStates: string; eePose: string; action: string };
  private readonly codec = rosCodec();
  result: StepResult;
  private seed: number;
  /** Camera stamps advance with simulated time, so every frame has its own stamp across episodes. */
  private simTimeMs = 0;
  steps = 0;

  constructor(
    readonly env: SimEnv,
    seed: number,
    private readonly opts: SimRobotOptions = {},
  ) {
    const ns = opts.namespace ?? '';
    const t = opts.topics ?? {};
    this.topics = {
      image: resolveTopic(ns, t.image ?? 'image_raw'),
      compressedImage: resolveTopic(ns, t.compressedImage ?? 'image_raw/compressed'),
      jointStates: resolveTopic(ns, t.jointStates ?? 'joint_states'),
      eePose: resolveTopic(ns, t.eePose ?? 'ee_pose'),
      action: resolveTopic(ns, t.action ?? 'selfflow/action'),
    };
    this.seed = seed;
    this.result = env.reset(seed);
    opts.onReset?.(env, seed);
  }

  /** Topics this robot publishes, with their types. */
  offered(): { topic: string; type: RosType }[] {
    return [
      { topic: this.topics.image, type: 'sensor_msgs/msg/Image' },
      { topic: this.topics.compressedImage, type: 'sensor_msgs/msg/CompressedImage' },
      { topic: this.topics.jointStates, type: 'sensor_msgs/msg/JointState' },
      { topic: this.topics.eePose, type: 'geometry_msgs/msg/PoseStamped' },
    ];
  }

  /** The current sensor messages; `wanted` limits them (encoding JPEG costs time). */
  snapshot(wanted?: (topic: string) => boolean): OutMessage[] {
    const obs = { ...this.result.observation, stamp: this.simTimeMs };
    const proprio = this.env.proprio();
    const want = wanted ?? (() => true);
    const out: OutMessage[] = [];
    const baseFrame = this.opts.baseFrame ?? 'base_link';
    // Joint states and pose first: the service pairs each camera frame with the newest proprioception.
    if (want(this.topics.jointStates)) {
      out.push({
        topic: this.topics.jointStates,
        type: 'sensor_msgs/msg/JointState',
        data: this.codec.encode('sensor_msgs/msg/JointState', {
          header: header(obs.stamp, baseFrame),
          name: SIM_JOINT_NAMES,
          position: Float64Array.from(proprio),
          velocity: new Float64Array(0),
          effort: new Float64Array(0),
        }),
      });
    }
    if (want(this.topics.eePose)) {
      out.push({
        topic: this.topics.eePose,
        type: 'geometry_msgs/msg/PoseStamped',
        data: this.codec.encode('geometry_msgs/msg/PoseStamped', {
          header: header(obs.stamp, baseFrame),
          pose: {
            position: { x: proprio[0]!, y: proprio[1]!, z: proprio[2]! },
            orientation: { x: 0, y: 0, z: Math.sin(proprio[3]! / 2), w: Math.cos(proprio[3]! / 2) },
          },
        }),
      });
    }
    const cam = this.opts.cameraFrame ?? 'head_camera';
    if (want(this.topics.image))
      out.push({
        topic: this.topics.image,
        type: 'sensor_msgs/msg/Image',
        data: this.codec.encode('sensor_msgs/msg/Image', observationToImage(obs, cam)),
      });
    if (want(this.topics.compressedImage))
      out.push({
        topic: this.topics.compressedImage,
        type: 'sensor_msgs/msg/CompressedImage',
        data: this.codec.encode('sensor_msgs/msg/CompressedImage', observationToCompressed(obs, cam)),
      });
    return out;
  }

  /** Handles a message sent to the robot; an action steps the simulation and returns the new sensor messages. */
  handle(topic: string, data: Uint8Array, wanted?: (topic: string) => boolean): OutMessage[] {
    if (topic !== this.topics.action) return [];
    const action = multiArrayToAction(this.codec.decode<Float32MultiArrayMsg>('std_msgs/msg/Float32MultiArray', data, topic), topic);
    this.result = this.env.stepAction(action);
    this.steps++;
    this.simTimeMs += 1000 / 3;
    if (this.result.done) {
      this.opts.onEpisodeEnd?.(this.result, this.seed);
      if (this.opts.autoReset) {
        this.seed++;
        this.result = this.env.reset(this.seed);
        this.opts.onReset?.(this.env, this.seed);
      }
    }
    return this.snapshot(wanted);
  }
}

/** The simulator as an in-process RobotLink: no transport, the same messages. */
export class SimLink extends LinkBase {
  private started = false;
  private pending: NodeJS.Immediate | undefined;

  constructor(
    readonly robot: SimRobot,
    clock?: () => number,
  ) {
    super('sim', clock);
  }

  override subscribe(topic: string, type: RosType): void {
    super.subscribe(topic, type);
    if (!this.started) {
      this.started = true;
      // After the caller has wired its subscribers: link up, then the first frames.
      this.pending = setImmediate(() => {
        this.setState('up');
        this.emit(this.robot.snapshot((t) => this.subscriptions.has(t)));
      });
    }
  }

  publish(topic: string, data: Uint8Array): boolean {
    if (this.state !== 'up') return false;
    if (topic === this.robot.topics.action) {
      // Deliver asynchronously, as a transport would: the service never re-enters itself.
      this.pending = setImmediate(() => {
        if (this.state !== 'up') return;
        this.emit(this.robot.handle(topic, data, (t) => this.subscriptions.has(t)));
      });
    }
    return true;
  }

  private emit(msgs: OutMessage[]): void {
    for (const m of msgs) if (this.subscriptions.has(m.topic)) this.deliver(m.topic, m.type, m.data);
  }

  override async close(): Promise<void> {
    if (this.pending) clearImmediate(this.pending);
    await super.close();
  }
}

/**
 * Serves the simulated robot through a link that can publish its sensor topics and receive actions
 * (a ROS 2 node via rclnodejs): the simulator on the same transport as hardware.
 */
export function serveSimOverLink(
  robot: SimRobot,
  link: import('./link.js').RobotLink,
  opts: { discoveryRepeatMs?: number } = {},
): { close(): Promise<void> } {
  for (const o of robot.offered()) link.advertise(o.topic, o.type);
  link.subscribe(robot.topics.action, 'std_msgs/msg/Float32MultiArray');
  const send = (msgs: OutMessage[]) => {
    for (const m of msgs) link.publish(m.topic, m.data);
  };
  let acted = false;
  const sub = link.messages$.subscribe((m) => {
    if (m.topic !== robot.topics.action) return;
    acted = true;
    send(robot.handle(m.topic, m.data));
  });
  // Until the first action arrives (DDS discovery takes a moment) repeat the current state; never
  // after, so a slow planner is not handed duplicate frames.
  const timer = setInterval(() => (acted ? clearInterval(timer) : send(robot.snapshot())), opts.discoveryRepeatMs ?? 1000);
  send(robot.snapshot());
  return {
    async close() {
      clearInterval(timer);
      sub.unsubscribe();
      await link.close();
    },
  };
}
