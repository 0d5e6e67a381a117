/**
 * The simulator's scripted policies (expert, random) as a Planner, for `serve --robot sim
 * --policy expert|random`: they read the privileged simulator state, so they only work with the
 * in-process simulated robot. Goals are ignored (the task defines them).
 */
import { map } from 'rxjs';
import type { Plan, Planner } from '../core/types.js';
import type { Policy } from '../sim/expert.js';
import type { SimRobot } from '../robot/sim-robot.js';

export function scriptedPlanner(robot: SimRobot, policy: Policy): Planner {
  return (observations$) =>
    observations$.pipe(
      map((obs): Plan => {
        const t0 = performance.now();
        const action = policy.act(robot.result);
        return {
          actions: [action],
          cost: 0,
          iterations: 0,
          candidatesEvaluated: 0,
          latencyMs: performance.now() - t0,
          observationStamp: obs.stamp,
          safe: false,
        };
      }),
    );
}
