/**
 * MCAP record and replay (rosbag2's default storage): `serve --record out.mcap` wraps the robot
 * link and writes every message the service saw and sent (profile `ros2`, `cdr` messages,
 * `ros2msg` schemas, one channel per topic, `ros2 bag play`-able); `--robot mcap:FILE` replays
 * what the service saw as if it came from the robot.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { McapStreamReader, McapWriter, type IWritable } from '@mcap/core';
import { Subscription } from 'rxjs';
import { UserError, errorMessage } from '../core/errors.js';
import { LinkBase, type RobotLink } from './link.js';
import { isRosType, normaliseRosType, rosCodec, type RosType } from './msgs.js';

/** Writes to a temp file beside the target; `commit` fsyncs and renames it into place (atomic output). */
class TempFileWritable implements IWritable {
  private readonly fd: number;
  private pos = 0n;
  readonly tmp: string;
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    this.fd = openSync(this.tmp, 'w');
  }
  async write(buffer: Uint8Array): Promise<void> {
    let off = 0;
    while (off < buffer.length) off += writeSync(this.fd, buffer, off, buffer.length - off);
    this.pos += BigInt(buffer.length);
  }
  position(): bigint {
    return this.pos;
  }
  commit(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
  }
  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* closed by a commit that failed later */
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      /* already gone */
    }
  }
}

export type Direction = 'in' | 'out';

/** Records messages into an MCAP file; nothing is visible at `path` until close(). */
export class McapRecorder {
  private readonly out: TempFileWritable;
  private readonly writer: McapWriter;
  private chain: Promise<unknown>;
  private readonly channels = new Map<string, Promise<number>>();
  private readonly schemas = new Map<string, Promise<number>>();
  private sequence = 0;
  private failed?: unknown;
  count = 0;

  constructor(readonly path: string) {
    this.out = new TempFileWritable(path);
    this.writer = new McapWriter({ writable: this.out, useChunks: true, chunkSize: 1 << 20 });
    this.chain = this.writer.start({ profile: 'ros2', library: 'selfflow-wm' });
  }

  private then(fn: () => Promise<unknown>): Promise<unknown> {
    this.chain = this.chain.then(fn).catch((e: unknown) => {
      this.failed ??= e;
    });
    return this.chain;
  }

  private channel(topic: string, type: RosType, direction: Direction): Promise<number> {
    let ch = this.channels.get(topic);
    if (!ch) {
      let schema = this.schemas.get(type);
      if (!schema) {
        const text = new TextEncoder().encode(rosCodec().schema(type).text);
        schema = this.chain.then(() => this.writer.registerSchema({ name: type, encoding: 'ros2msg', data: text }));
        this.schemas.set(type, schema);
      }
      const s = schema;
      ch = s.then((schemaId) =>
        this.writer.registerChannel({ topic, schemaId, messageEncoding: 'cdr', metadata: new Map([['selfflow.direction', direction]]) }),
      );
      this.channels.set(topic, ch);
      this.chain = ch;
    }
    return ch;
  }

  record(topic: string, type: RosType, data: Uint8Array, direction: Direction, wallMs = Date.now()): void {
    if (this.failed) return;
    const ch = this.channel(topic, type, direction);
    const t = BigInt(Math.round(wallMs * 1e6));
    const seq = this.sequence++;
    const copy = data.slice();
    this.count++;
    void this.then(async () => this.writer.addMessage({ channelId: await ch, sequence: seq, logTime: t, publishTime: t, data: copy }));
  }

  async close(): Promise<void> {
    await this.then(() => this.writer.end());
    if (this.failed) {
      this.out.abort();
      throw new UserError(`${this.path}: recording failed (${errorMessage(this.failed)})`);
    }
    try {
      this.out.commit();
    } catch (e) {
      this.out.abort();
      throw new UserError(`${this.path}: cannot write the recording (${errorMessage(e)})`);
    }
  }
}

/** A link that records everything it delivers and everything published through it. */
export class RecordingLink implements RobotLink {
  readonly name: string;
  readonly messages$: RobotLink['messages$'];
  readonly state$: RobotLink['state$'];
  private readonly types = new Map<string, RosType>();
  private readonly sub: Subscription;

  constructor(
    private readonly inner: RobotLink,
    readonly recorder: McapRecorder,
  ) {
    this.name = `${inner.name} (recording ${recorder.path})`;
    this.messages$ = inner.messages$;
    this.state$ = inner.state$;
    // Record on our own subscription so recording does not depend on who else listens.
    this.sub = inner.messages$.subscribe((m) => recorder.record(m.topic, m.type, m.data, 'in'));
  }
  subscribe(topic: string, type: RosType): void {
    this.inner.subscribe(topic, type);
  }
  advertise(topic: string, type: RosType): void {
    this.types.set(topic, type);
    this.inner.advertise(topic, type);
  }
  publish(topic: string, data: Uint8Array): boolean {
    const ok = this.inner.publish(topic, data);
    const type = this.types.get(topic);
    if (ok && type) this.recorder.record(topic, type, data, 'out');
    return ok;
  }
  /** Commits the recording without waiting for the link: a link whose close hangs must not lose it. */
  async close(): Promise<void> {
    this.sub.unsubscribe();
    const link = this.inner.close();
    try {
      await this.recorder.close();
    } finally {
      await link;
    }
  }
}

export interface RecordedMessage {
  topic: string;
  type: RosType;
  direction: Direction;
  logTimeMs: number;
  data: Uint8Array;
}

/** Every message of an MCAP file written with cdr/ros2msg, in log-time order. */
export function readMcap(path: string): RecordedMessage[] {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new UserError(`${path}: cannot read recording (${errorMessage(e)})`);
  }
  const reader = new McapStreamReader({ validateCrcs: true });
  reader.append(bytes);
  const schemas = new Map<number, string>();
  const channels = new Map<number, { topic: string; type?: RosType; direction?: Direction; encoding: string; schema: string }>();
  const out: RecordedMessage[] = [];
  const skipped = new Set<string>();
  try {
    for (let rec = reader.nextRecord(); rec; rec = reader.nextRecord()) {
      if (rec.type === 'Schema') schemas.set(rec.id, rec.name);
      else if (rec.type === 'Channel') {
        const schema = normaliseRosType(schemas.get(rec.schemaId) ?? '');
        const dir = rec.metadata.get('selfflow.direction');
        channels.set(rec.id, {
          topic: rec.topic,
          type: isRosType(schema) ? schema : undefined,
          direction: dir === 'in' || dir === 'out' ? dir : undefined,
          encoding: rec.messageEncoding,
          schema,
        });
      } else if (rec.type === 'Message') {
        const ch = channels.get(rec.channelId);
        if (!ch) throw new UserError(`${path}: message on unknown channel ${rec.channelId}`);
        if (!ch.type || ch.encoding !== 'cdr') {
          skipped.add(`${ch.topic} (${ch.schema || 'no schema'}, ${ch.encoding})`);
          continue;
        }
        out.push({ topic: ch.topic, type: ch.type, direction: ch.direction ?? 'in', logTimeMs: Number(rec.logTime) / 1e6, data: rec.data });
      }
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: not a readable MCAP file (${errorMessage(e)})`);
  }
  if (!reader.done()) throw new UserError(`${path}: MCAP file is truncated (${reader.bytesRemaining()} bytes left unparsed)`);
  out.sort((a, b) => a.logTimeMs - b.logTimeMs);
  return out;
}

export interface ReplayOptions {
  /** `lockstep`: after each camera frame wait for an action before the next (deterministic). `timed`: recorded timing / speed. */
  mode?: 'lockstep' | 'timed';
  speed?: number;
  clock?: () => number;
}

/**
 * A recording as the robot: replays the messages the service saw (direction `in`, or topics the
 * service subscribes to in recordings made elsewhere). When the recording runs out the link closes.
 */
export class McapReplayLink extends LinkBase {
  readonly recorded: RecordedMessage[];
  private inbound: RecordedMessage[] = [];
  private next = 0;
  private started = false;
  private timers: NodeJS.Timeout[] = [];
  private immediate?: NodeJS.Immediate;
  private readonly mode: 'lockstep' | 'timed';
  private cameraTopic?: string;

  constructor(
    readonly path: string,
    private readonly opts: ReplayOptions = {},
  ) {
    super(`mcap ${path}`, opts.clock);
    this.recorded = readMcap(path);
    this.mode = opts.mode ?? 'lockstep';
  }

  /** What the recorded service published, e.g. to compare action streams. */
  outputs(topic: string): Uint8Array[] {
    return this.recorded.filter((m) => m.direction === 'out' && m.topic === topic).map((m) => m.data);
  }

  override subscribe(topic: string, type: RosType): void {
    super.subscribe(topic, type);
    if (this.started) return;
    this.started = true;
    this.immediate = setImmediate(() => this.begin());
  }

  private begin(): void {
    this.inbound = this.recorded.filter((m) => m.direction === 'in' && this.subscriptions.has(m.topic));
    const missing = [...new Set(this.recorded.filter((m) => m.direction === 'in' && !this.subscriptions.has(m.topic)).map((m) => m.topic))];
    if (this.inbound.length === 0)
      throw new UserError(
        `${this.path}: no recorded messages on the topics the service reads (${[...this.subscriptions.keys()].join(', ')}); recorded: ${missing.join(', ') || 'none'}`,
      );
    // The camera is the image topic with the most frames (a goal image topic has a few).
    const counts = new Map<string, number>();
    for (const m of this.inbound) if (this.isCamera(m)) counts.set(m.topic, (counts.get(m.topic) ?? 0) + 1);
    this.cameraTopic = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
    this.setState('up');
    if (this.mode === 'timed') {
      const t0 = this.inbound[0]!.logTimeMs;
      const speed = this.opts.speed ?? 1;
      for (const m of this.inbound) this.timers.push(setTimeout(() => this.emitOne(m), (m.logTimeMs - t0) / speed));
      this.timers.push(setTimeout(() => this.finish(), (this.inbound.at(-1)!.logTimeMs - t0) / speed + 1));
    } else this.emitBatch();
  }

  private emitOne(m: RecordedMessage): void {
    if (this.state === 'up') this.deliver(m.topic, m.type, m.data);
  }

  private isCamera(m: RecordedMessage): boolean {
    return m.type === 'sensor_msgs/msg/Image' || m.type === 'sensor_msgs/msg/CompressedImage';
  }

  /** Up to and including the next camera frame on the subscribed camera topic. */
  private emitBatch(): void {
    if (this.next >= this.inbound.length) return this.finish();
    while (this.next < this.inbound.length) {
      const m = this.inbound[this.next++]!;
      this.emitOne(m);
      if (m.topic === this.cameraTopic) break;
    }
  }

  private finish(): void {
    if (this.state === 'up') this.setState('closed');
  }

  /** True once every recorded message has been replayed. */
  get done(): boolean {
    return this.next >= this.inbound.length && this.inbound.length > 0;
  }

  publish(topic: string, _data: Uint8Array): boolean {
    if (this.state !== 'up') return false;
    if (this.mode === 'lockstep' && this.advertised.get(topic) === 'std_msgs/msg/Float32MultiArray') {
      this.immediate = setImmediate(() => this.emitBatch());
    }
    return true;
  }

  override async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    if (this.immediate) clearImmediate(this.immediate);
    await super.close();
  }
}
