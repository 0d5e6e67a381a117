/**
 * What a planner read of its goals, recorded on the objects it is handed. A simulator storyboard
 * records with each picture where the gripper was (the picture's proprioception) and whether it
 * was closed (`goal.gripper`); a real robot's goal carries neither. Wrapping the goal in recording
 * proxies lets the demo say, from the planner's actual reads rather than from preset names, what
 * it knew, and lets the tests assert that product presets never read the recorded fields.
 */
import type { Goal } from '../core/types.js';

/** `target` behind a proxy that adds `name.property` to `reads` for every property looked up, tested or enumerated. */
export function recordReads<T extends object>(target: T, name: string, reads: Set<string>): T {
  return new Proxy(target, {
    get(t, p, receiver) {
      if (typeof p === 'string') reads.add(`${name}.${p}`);
      return Reflect.get(t, p, receiver);
    },
    has(t, p) {
      reads.add(`${name}.${String(p)}`);
      return Reflect.has(t, p);
    },
    getOwnPropertyDescriptor(t, p) {
      reads.add(`${name}.${String(p)}`);
      return Reflect.getOwnPropertyDescriptor(t, p);
    },
    // Copying or enumerating the object ({ ...goal }) would pass every recorded field on unseen.
    ownKeys(t) {
      reads.add(`${name}.*`);
      return Reflect.ownKeys(t);
    },
  });
}

/** A copy of `goal` whose every read (of the goal, its picture list and each picture) lands in `reads`. */
export function recordGoalReads(goal: Goal, reads: Set<string>): Goal {
  const images = goal.images.map((p, i) => recordReads({ ...p }, `goal.images[${i}]`, reads));
  return recordReads({ ...goal, images: recordReads(images, 'goal.images', reads) }, 'goal', reads);
}

/** The reads of information a real robot's goal does not carry: recorded gripper states and positions (or a whole-object copy). */
export function oracleGoalReads(reads: Set<string>): string[] {
  return [...reads].filter((r) => r === 'goal.gripper' || r === 'goal.*' || /^goal\.images\[\d+\]\.(proprio|\*)$/.test(r));
}

/** One line on what the planner read of its goals, for the demo's output. */
export function describeGoalReads(reads: Set<string>): string {
  const pictures = [...reads].some((r) => /^goal\.images\[\d+\]\.image$/.test(r));
  const instruction = reads.has('goal.instruction');
  const knew = [pictures && 'the goal pictures', instruction && 'the instruction'].filter(Boolean).join(' and ') || 'nothing of its goals';
  const oracle = oracleGoalReads(reads);
  const recorded = [
    oracle.some((r) => r.endsWith('.proprio') || r.endsWith('.*')) && 'gripper positions',
    oracle.some((r) => r === 'goal.gripper' || r === 'goal.*') && 'open/closed gripper states',
  ].filter(Boolean);
  return recorded.length === 0
    ? `the planner read ${knew}, and never the gripper positions or open/closed states recorded with the pictures`
    : `ORACLE: the planner read ${knew} and the ${recorded.join(' and ')} recorded with the pictures, which a real robot's goal does not carry`;
}
