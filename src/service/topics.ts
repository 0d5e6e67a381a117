/**
 * The service's topic I/O over a RobotLink: the configured topic names resolved in the namespace,
 * subscribed and advertised on the link, incoming messages decoded into what they mean for the
 * service, and outgoing commands and status encoded. Decoding throws on a malformed message (the
 * service counts it); a failed publish is reported to `onPublishError`, never thrown.
 */
import type { Goal, Observation } from '../core/types.js';
import type { EncodedGoal } from './goal-decoder.js';
import type { Rt1Action } from '../core/action.js';
import { resolveTopic, type RawMessage, type RobotLink } from '../robot/link.js';
import {
  actionToMultiArray,
  compressedToObservation,
  gripperCommandFor,
  stampToMs,
  imageToObservation,
  jointPositions,
  type BoolMsg,
  type CompressedImageMsg,
  type ImageMsg,
  type JointStateMsg,
  type PoseStampedMsg,
  type TwistStampedMsg,
} from '../robot/messages.js';
import { rosCodec, type RosCodec, type RosType } from '../robot/msgs.js';
import { errorMessage } from '../core/errors.js';
import type { ServiceConfig } from './config.js';

/** What an incoming message means to the service. */
export type Inbound =
  | { kind: 'camera'; observation: Observation }
  | { kind: 'joints'; positions: Float32Array }
  | { kind: 'pose'; position: [number, number, number] }
  | { kind: 'goal'; goal: Goal }
  /** A compressed goal image: decoded off the service's thread (GoalDecoder). */
  | { kind: 'encodedGoal'; goal: EncodedGoal }
  | { kind: 'estop'; latch: boolean }
  | { kind: 'run'; start: boolean };

export type ServiceTopicNames = ReturnType<typeof topicNames>;

function topicNames(config: ServiceConfig) {
  const t = (name: string) => resolveTopic(config.namespace, name);
  return {
    image: t(config.topics.useCompressed ? config.topics.compressedImage : config.topics.image),
    joints: t(config.topics.jointStates),
    pose: t(config.topics.eePose),
    goal: t(config.topics.goalImage),
    goalCompressed: t(config.topics.goalImageCompressed),
    estop: t(config.topics.estop),
    run: t(config.topics.run),
    action: t(config.topics.action),
    twist: t(config.topics.twist),
    gripper: t(config.topics.gripper),
    status: t(config.topics.status),
  };
}

export class ServiceTopics {
  readonly names: ServiceTopicNames;
  private readonly codec: RosCodec = rosCodec();
  private readonly imageType: RosType;

  constructor(
    private readonly link: RobotLink,
    private readonly config: ServiceConfig,
    private readonly onPublishError: (message: string) => void,
  ) {
    this.names = topicNames(config);
    this.imageType = config.topics.useCompressed ? 'sensor_msgs/msg/CompressedImage' : 'sensor_msgs/msg/Image';
    const n = this.names;
    link.subscribe(n.image, this.imageType);
    link.subscribe(n.joints, 'sensor_msgs/msg/JointState');
    link.subscribe(n.pose, 'geometry_msgs/msg/PoseStamped');
    link.subscribe(n.goal, 'sensor_msgs/msg/Image');
    link.subscribe(n.goalCompressed, 'sensor_msgs/msg/CompressedImage');
    link.subscribe(n.estop, 'std_msgs/msg/Bool');
    link.subscribe(n.run, 'std_msgs/msg/Bool');
    link.advertise(n.action, 'std_msgs/msg/Float32MultiArray');
    link.advertise(n.twist, 'geometry_msgs/msg/TwistStamped');
    link.advertise(n.gripper, 'control_msgs/msg/GripperCommand');
    link.advertise(n.status, 'std_msgs/msg/String');
  }

  /** The message's meaning, or undefined for a topic the service does not read. Throws on a malformed message. */
  decode(m: RawMessage): Inbound | undefined {
    const n = this.names;
    const c = this.codec;
    if (m.topic === n.image) {
      const observation =
        this.imageType === 'sensor_msgs/msg/Image'
          ? imageToObservation(c.decode<ImageMsg>(this.imageType, m.data, m.topic), m.topic)
          : compressedToObservation(c.decode<CompressedImageMsg>(this.imageType, m.data, m.topic), m.topic, this.config.camera.maxPixels);
      return { kind: 'camera', observation };
    }
    if (m.topic === n.joints)
      return {
        kind: 'joints',
        positions: jointPositions(
          c.decode<JointStateMsg>('sensor_msgs/msg/JointState', m.data, m.topic),
          this.config.proprioJoints,
          m.topic,
        ),
      };
    if (m.topic === n.pose) {
      const p = c.decode<PoseStampedMsg>('geometry_msgs/msg/PoseStamped', m.data, m.topic).pose.position;
      return { kind: 'pose', position: [p.x, p.y, p.z] };
    }
    if (m.topic === n.goal)
      return {
        kind: 'goal',
        goal: { images: [imageToObservation(c.decode<ImageMsg>('sensor_msgs/msg/Image', m.data, m.topic), m.topic)] },
      };
    if (m.topic === n.goalCompressed) {
      const msg = c.decode<CompressedImageMsg>('sensor_msgs/msg/CompressedImage', m.data, m.topic);
      return { kind: 'encodedGoal', goal: { images: [{ bytes: msg.data, where: m.topic, stamp: stampToMs(msg.header.stamp) }] } };
    }
    if (m.topic === n.estop) return { kind: 'estop', latch: c.decode<BoolMsg>('std_msgs/msg/Bool', m.data, m.topic).data };
    if (m.topic === n.run) return { kind: 'run', start: c.decode<BoolMsg>('std_msgs/msg/Bool', m.data, m.topic).data };
    return undefined;
  }

  publishAction(action: Rt1Action): void {
    this.publish(this.names.action, 'std_msgs/msg/Float32MultiArray', actionToMultiArray(action));
  }

  /** The gripper command an action implies, if it implies one (config.gripper). */
  publishGripperFor(action: Rt1Action): void {
    const grip = gripperCommandFor(action, this.config.gripper);
    if (grip) this.publish(this.names.gripper, 'control_msgs/msg/GripperCommand', grip);
  }

  publishTwist(msg: TwistStampedMsg): void {
    this.publish(this.names.twist, 'geometry_msgs/msg/TwistStamped', msg);
  }

  publishStatus(status: unknown): void {
    this.publish(this.names.status, 'std_msgs/msg/String', { data: JSON.stringify(status) });
  }

  private publish(topic: string, type: RosType, msg: unknown): void {
    try {
      this.link.publish(topic, this.codec.encode(type, msg));
    } catch (e) {
      this.onPublishError(`publish ${topic}: ${errorMessage(e)}`);
    }
  }
}
