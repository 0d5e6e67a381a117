/**
 * A robot running foxglove_bridge (or any Foxglove WebSocket server): subscribe to its channels,
 * advertise our command topics as client channels (encoding `cdr`, schema `ros2msg`) and publish
 * CDR bytes on them. Reconnects after the socket drops; the link reports `lost` meanwhile.
 */
import { FoxgloveClient, type Channel } from './foxglove-protocol.js';
import WebSocket from 'ws';
import { errorMessage } from '../core/errors.js';
import { LinkBase } from './link.js';
import { normaliseRosType, rosCodec, type RosType } from './msgs.js';

/** Both names of the protocol: foxglove_bridge speaks v1, the Foxglove SDK servers sdk.v1. */
export const FOXGLOVE_SUBPROTOCOLS = ['foxglove.websocket.v1', 'foxglove.sdk.v1'];

export interface FoxgloveLinkOptions {
  clock?: () => number;
  /** Delay before reconnecting after a drop (ms); 0 disables reconnecting. */
  reconnectMs?: number;
  log?: (line: string) => void;
  /** Largest incoming WebSocket message (bytes). */
  maxPayload?: number;
  /** close() waits this long for the server's close reply, then drops the socket (ws alone waits 30 s). */
  closeTimeoutMs?: number;
}

export class FoxgloveLink extends LinkBase {
  private client?: FoxgloveClient;
  private ws?: WebSocket;
  private readonly channels = new Map<string, Channel>();
  private readonly subscribed = new Map<number, { topic: string; type: RosType }>();
  private readonly outChannels = new Map<string, number>();
  private reconnectTimer?: NodeJS.Timeout;
  private closing = false;
  private readonly log: (line: string) => void;

  constructor(
    readonly url: string,
    private readonly opts: FoxgloveLinkOptions = {},
  ) {
    super(`foxglove ${url}`, opts.clock);
    this.log = opts.log ?? (() => {});
    this.connect();
  }

  /** Resolves once the link is up (rejects if it closes first). */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => (sub.unsubscribe(), reject(new Error(`${this.url}: no connection within ${timeoutMs} ms`))),
        timeoutMs,
      );
      const sub = this.state$.subscribe((s) => {
        if (s === 'up') {
          clearTimeout(timer);
          queueMicrotask(() => sub.unsubscribe());
          resolve();
        }
        if (s === 'closed') {
          clearTimeout(timer);
          reject(new Error(`${this.url}: link closed`));
        }
      });
    });
  }

  private connect(): void {
    const ws = new WebSocket(this.url, FOXGLOVE_SUBPROTOCOLS, { maxPayload: this.opts.maxPayload ?? 64 * 1024 * 1024 });
    this.ws = ws;
    const client = new FoxgloveClient({ ws: ws });
    this.client = client;
    this.channels.clear();
    this.subscribed.clear();
    this.outChannels.clear();
    client.on('open', () => {
      for (const [topic, type] of this.advertised) this.advertiseOn(client, topic, type);
      this.setState('up');
    });
    client.on('advertise', (chs) => {
      for (const ch of chs) {
        this.channels.set(ch.topic, ch);
        this.trySubscribe(ch.topic);
      }
    });
    client.on('unadvertise', (ids) => {
      for (const [topic, ch] of this.channels) if (ids.includes(ch.id)) this.channels.delete(topic);
    });
    client.on('message', (m) => {
      const sub = this.subscribed.get(m.subscriptionId);
      if (!sub) return;
      const d = m.data;
      // Copy: the socket's buffer is reused.
      this.deliver(sub.topic, sub.type, new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice());
    });
    client.on('error', (e) => this.log(`${this.url}: ${errorMessage(e)}`));
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = undefined;
      if (this.closing) return;
      this.setState('lost');
      const delay = this.opts.reconnectMs ?? 1000;
      if (delay > 0) this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private trySubscribe(topic: string): void {
    const type = this.subscriptions.get(topic);
    const ch = this.channels.get(topic);
    if (!type || !ch || !this.client) return;
    if ([...this.subscribed.values()].some((s) => s.topic === topic)) return;
    if (normaliseRosType(ch.schemaName) !== type || ch.encoding !== 'cdr') {
      this.log(`${this.url}: topic ${topic} is ${ch.schemaName} (${ch.encoding}), expected ${type} (cdr); not subscribing`);
      return;
    }
    this.subscribed.set(this.client.subscribe(ch.id), { topic, type });
  }

  private advertiseOn(client: FoxgloveClient, topic: string, type: RosType): void {
    const id = client.advertise({
      topic,
      encoding: 'cdr',
      schemaName: type,
      schema: rosCodec().schema(type).text,
      schemaEncoding: 'ros2msg',
    });
    this.outChannels.set(topic, id);
  }

  override subscribe(topic: string, type: RosType): void {
    super.subscribe(topic, type);
    this.trySubscribe(topic);
  }

  override advertise(topic: string, type: RosType): void {
    super.advertise(topic, type);
    if (this.client && this.state === 'up' && !this.outChannels.has(topic)) this.advertiseOn(this.client, topic, type);
  }

  publish(topic: string, data: Uint8Array): boolean {
    const id = this.outChannels.get(topic);
    if (this.state !== 'up' || !this.client || id === undefined || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.client.sendMessage(id, data);
    return true;
  }

  override async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.log(`${this.url}: no close reply within ${this.opts.closeTimeoutMs ?? 1000} ms; dropping the connection`);
          ws.terminate();
        }, this.opts.closeTimeoutMs ?? 1000);
        ws.once('close', () => (clearTimeout(timer), resolve()));
        // Let queued commands (the final zero command) leave before closing.
        setImmediate(() => ws.close());
      });
    }
    await super.close();
  }
}
