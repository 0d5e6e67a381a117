/**
 * One interface for every way of reaching a robot (in-process simulator, foxglove_bridge, rclnodejs,
 * MCAP replay): topics carry CDR bytes, so the same codec (src/robot/msgs.ts) serves all of them.
 */
import { BehaviorSubject, Subject, type Observable } from 'rxjs';
import type { RosType } from './msgs.js';

export interface RawMessage {
  topic: string;
  type: RosType;
  /** CDR bytes, encapsulation header included. */
  data: Uint8Array;
  /** Local clock (ms) when the message reached the service. */
  receivedMs: number;
}

/** `up` once messages can flow; `lost` when the transport dropped (the link may come back); `closed` for good. */
export type LinkState = 'connecting' | 'up' | 'lost' | 'closed';

export interface RobotLink {
  readonly name: string;
  readonly messages$: Observable<RawMessage>;
  readonly state$: Observable<LinkState>;
  /** Ask for a topic; messages arrive on messages$ as soon as the robot offers it. */
  subscribe(topic: string, type: RosType): void;
  /** Declare a topic the service publishes on. */
  advertise(topic: string, type: RosType): void;
  /** Publish CDR bytes on an advertised topic; dropped (false) while the link is not up. */
  publish(topic: string, data: Uint8Array): boolean;
  close(): Promise<void>;
}

/** Shared plumbing of the link implementations. */
export abstract class LinkBase implements RobotLink {
  protected readonly messagesSubject = new Subject<RawMessage>();
  protected readonly stateSubject = new BehaviorSubject<LinkState>('connecting');
  readonly messages$ = this.messagesSubject.asObservable();
  readonly state$ = this.stateSubject.asObservable();
  protected readonly subscriptions = new Map<string, RosType>();
  protected readonly advertised = new Map<string, RosType>();

  constructor(
    readonly name: string,
    protected readonly clock: () => number = () => performance.now(),
  ) {}

  get state(): LinkState {
    return this.stateSubject.value;
  }

  subscribe(topic: string, type: RosType): void {
    this.subscriptions.set(topic, type);
  }

  advertise(topic: string, type: RosType): void {
    this.advertised.set(topic, type);
  }

  abstract publish(topic: string, data: Uint8Array): boolean;

  protected deliver(topic: string, type: RosType, data: Uint8Array): void {
    this.messagesSubject.next({ topic, type, data, receivedMs: this.clock() });
  }

  protected setState(s: LinkState): void {
    if (this.stateSubject.value !== s && this.stateSubject.value !== 'closed') this.stateSubject.next(s);
  }

  async close(): Promise<void> {
    this.setState('closed');
    this.messagesSubject.complete();
    this.stateSubject.complete();
  }
}

/** `ns` + `name` the way ROS 2 resolves a relative topic name in a namespace. */
export function resolveTopic(namespace: string, name: string): string {
  if (name.startsWith('/')) return name;
  const ns = namespace.replace(/\/+$/, '');
  return ns === '' ? `/${name}` : `${ns.startsWith('/') ? ns : `/${ns}`}/${name}`;
}
