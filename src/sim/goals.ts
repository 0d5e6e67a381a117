/**
 * Goal images for planning: the planner is given pictures, not instructions. For a task and seed
 * we replay the scripted expert and keep the frame at which each stage was first completed.
 */
import type { Observation } from '../planner/types.js';
import { SimEnv } from './env.js';
import { makeScriptedPolicy } from './expert.js';

export async function goalObservations(task: string, seed: number, height: number, width: number): Promise<Observation[]> {
  const env = await SimEnv.create({ task, seed, imageHeight: height, imageWidth: width });
  try {
    const policy = makeScriptedPolicy('expert', task, seed);
    let r = env.reset(seed);
    policy.reset(env);
    const goals: Observation[] = [];
    while (!r.done) {
      const before = r.stagesDone;
      r = env.step(policy.act(r));
      if (r.stagesDone > before) goals.push(r.observation);
    }
    if (goals.length < r.stageCount) throw new Error(`expert did not complete ${task} on seed ${seed} (stage ${r.stagesDone}/${r.stageCount}); no goal images`);
    return goals;
  } finally {
    env.close();
  }
}
