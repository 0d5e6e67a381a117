/**
 * One CDR codec for every transport (rclnodejs raw mode, foxglove_bridge, MCAP): the `.msg`
 * definitions in msgs/ are read once, concatenated the way rosbag2 and foxglove_bridge write
 * `ros2msg` schemas (main text, then `MSG: pkg/Type` sections), and handed to
 * @foxglove/rosmsg2-serialization.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@foxglove/rosmsg';
import { MessageReader, MessageWriter } from '@foxglove/rosmsg2-serialization';
import { UserError } from '../core/errors.js';
import { packageRoot } from '../util/package-root.js';

export const ROS_TYPES = [
  'sensor_msgs/msg/Image',
  'sensor_msgs/msg/CompressedImage',
  'sensor_msgs/msg/JointState',
  'geometry_msgs/msg/TwistStamped',
  'geometry_msgs/msg/PoseStamped',
  'std_msgs/msg/Float32MultiArray',
  'std_msgs/msg/Bool',
  'std_msgs/msg/String',
  'control_msgs/msg/GripperCommand',
] as const;
export type RosType = (typeof ROS_TYPES)[number];

const SEPARATOR = '='.repeat(80);

export function isRosType(name: string): name is RosType {
  return (ROS_TYPES as readonly string[]).includes(name);
}

/** `pkg/msg/Type` and `pkg/Type` both name the same message. */
export function normaliseRosType(name: string): string {
  const parts = name.split('/');
  return parts.length === 2 ? `${parts[0]}/msg/${parts[1]}` : name;
}

function msgFile(fullType: string): string {
  const [pkg, , name] = normaliseRosType(fullType).split('/');
  return join(packageRoot(), 'msgs', pkg!, 'msg', `${name}.msg`);
}

/** Complex field types a definition refers to, fully qualified as `pkg/msg/Type`. */
function dependencies(text: string, pkg: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const type = line
      .split(/\s+/)[0]!
      .replace(/\[.*\]$/, '')
      .replace(/<=\d+$/, '');
    if (/^(bool|byte|char|u?int(8|16|32|64)|float(32|64)|string|wstring)$/.test(type) || type.startsWith('string<')) continue;
    const dep = type.includes('/') ? normaliseRosType(type) : `${pkg}/msg/${type}`;
    out.push(type === 'Header' ? 'std_msgs/msg/Header' : dep);
  }
  return out;
}

export interface RosSchema {
  type: RosType;
  /** The concatenated `ros2msg` text, as MCAP schemas and foxglove channels carry it. */
  text: string;
}

function readText(type: string): string {
  try {
    return readFileSync(msgFile(type), 'utf8');
  } catch (e) {
    throw new UserError(`${msgFile(type)}: cannot read the message definition of ${type} (${(e as Error).message})`);
  }
}

export function buildSchema(type: RosType): RosSchema {
  const main = readText(type);
  const seen = new Set<string>([type]);
  const sections: string[] = [];
  const queue = dependencies(main, type.split('/')[0]!);
  while (queue.length) {
    const dep = queue.shift()!;
    if (seen.has(dep)) continue;
    seen.add(dep);
    const text = readText(dep);
    const [pkg, , name] = dep.split('/');
    sections.push(`${SEPARATOR}\nMSG: ${pkg}/${name}\n${text.trimEnd()}\n`);
    queue.push(...dependencies(text, pkg!));
  }
  return { type, text: [main.trimEnd() + '\n', ...sections].join('') };
}

interface Entry {
  schema: RosSchema;
  reader: MessageReader;
  writer: MessageWriter;
}

/** Encode and decode the service's ROS 2 messages as CDR (the bytes every ROS 2 transport carries). */
export class RosCodec {
  private readonly entries = new Map<string, Entry>();

  private entry(type: string): Entry {
    const key = normaliseRosType(type);
    let e = this.entries.get(key);
    if (!e) {
      if (!isRosType(key)) throw new UserError(`message type ${type} is not one the service speaks (${ROS_TYPES.join(', ')})`);
      const schema = buildSchema(key);
      const defs = parse(schema.text, { ros2: true });
      e = { schema, reader: new MessageReader(defs), writer: new MessageWriter(defs) };
      this.entries.set(key, e);
    }
    return e;
  }

  schema(type: RosType): RosSchema {
    return this.entry(type).schema;
  }

  encode(type: RosType, message: unknown): Uint8Array {
    return this.entry(type).writer.writeMessage(message);
  }

  /** Decodes CDR; `where` names the topic or file in the error a malformed message raises. */
  decode<T>(type: RosType, bytes: ArrayBufferView, where: string = type): T {
    try {
      return this.entry(type).reader.readMessage<T>(bytes);
    } catch (e) {
      throw new UserError(`${where}: malformed ${type} message (${(e as Error).message})`);
    }
  }
}

let shared: RosCodec | undefined;

export function rosCodec(): RosCodec {
  return (shared ??= new RosCodec());
}
