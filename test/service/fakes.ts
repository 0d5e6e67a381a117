import { map, type Observable } from 'rxjs';
import { LinkBase } from '../../src/robot/link.js';
import type { RosType } from '../../src/robot/msgs.js';
import type { Plan, Planner } from '../../src/core/types.js';

/** A link whose incoming messages the test injects and whose publications it reads. */
export class FakeLink extends LinkBase {
  readonly sent: { topic: string; data: Uint8Array }[] = [];
  constructor(clock: () => number) {
    super('fake', clock);
    this.setState('up');
  }
  inject(topic: string, type: RosType, data: Uint8Array): void {
    this.deliver(topic, type, data);
  }
  drop(): void {
    this.setState('lost');
  }
  restore(): void {
    this.setState('up');
  }
  publish(topic: string, data: Uint8Array): boolean {
    if (this.state !== 'up') return false;
    this.sent.push({ topic, data });
    return true;
  }
  on(topic: string): Uint8Array[] {
    return this.sent.filter((s) => s.topic === topic).map((s) => s.data);
  }
}

/** Deterministic planner: moves +x by `dx` per plan whatever it sees; cost = the frame's first pixel. */
export function constantPlanner(dx: number): Planner {
  return (obs$: Observable<{ stamp: number; image: Uint8Array }>) =>
    obs$.pipe(
      map((o): Plan => ({
        actions: [{ worldVector: [dx, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] }],
        cost: o.image[0] ?? 0,
        iterations: 1,
        candidatesEvaluated: 1,
        latencyMs: 0,
        observationStamp: o.stamp,
        safe: false,
      })),
    );
}

/** A planner whose action depends on the picture: the mean pixel steers y, so a replay must feed the same frames. */
export function imageDrivenPlanner(): Planner {
  return (obs$) =>
    obs$.pipe(
      map((o): Plan => {
        let s = 0;
        for (let i = 0; i < o.image.length; i += 97) s += o.image[i]!;
        const m = s / Math.ceil(o.image.length / 97) / 255;
        return {
          actions: [
            {
              worldVector: [0.02, 0.04 * (m - 0.5), -0.01],
              rotationDelta: [0, 0, 0],
              gripperClosedness: m > 0.5 ? 1 : -1,
              terminateEpisode: [0, 1, 0],
            },
          ],
          cost: m,
          iterations: 1,
          candidatesEvaluated: 1,
          latencyMs: 0,
          observationStamp: o.stamp,
          safe: false,
        };
      }),
    );
}
