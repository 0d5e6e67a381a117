/**
 * The RT-1 action as robots, the simulator and the service exchange it. The flat layout is
 * what `selfflow/action` (std_msgs/Float32MultiArray) carries and what dataset cards
 * pick model action parts from.
 */
export interface Rt1Action {
  /** End-effector displacement for this control step, metres, robot base frame. */
  worldVector: [number, number, number];
  /** End-effector rotation for this step, radians (roll, pitch, yaw). */
  rotationDelta: [number, number, number];
  /** RT-1 data semantics: +1 close, -1 open (0 leaves the gripper where it is). */
  gripperClosedness: number;
  /** One-hot, RT-1 convention: [1,0,0] terminate, [0,1,0] continue, [0,0,1] unused. */
  terminateEpisode: [number, number, number];
}

/** RT-1 semantics of `gripperClosedness`: above 0.3 closes, below -0.3 opens, in between keeps the last command. */
export function gripperCommand(a: Rt1Action): 'close' | 'open' | 'keep' {
  return a.gripperClosedness > 0.3 ? 'close' : a.gripperClosedness < -0.3 ? 'open' : 'keep';
}

/** Names of the 10 values of the flat layout, in order. */
export const RT1_ACTION_LAYOUT = [
  'world_vector.x',
  'world_vector.y',
  'world_vector.z',
  'rotation_delta.roll',
  'rotation_delta.pitch',
  'rotation_delta.yaw',
  'gripper_closedness_action',
  'terminate_episode.terminate',
  'terminate_episode.continue',
  'terminate_episode.unused',
] as const;

export const RT1_ACTION_SIZE = RT1_ACTION_LAYOUT.length;

export function flattenAction(a: Rt1Action): Float32Array {
  return Float32Array.from([...a.worldVector, ...a.rotationDelta, a.gripperClosedness, ...a.terminateEpisode]);
}

export function unflattenAction(v: ArrayLike<number>): Rt1Action {
  if (v.length !== RT1_ACTION_SIZE) throw new Error(`RT-1 action needs ${RT1_ACTION_SIZE} values, got ${v.length}`);
  return {
    worldVector: [v[0]!, v[1]!, v[2]!],
    rotationDelta: [v[3]!, v[4]!, v[5]!],
    gripperClosedness: v[6]!,
    terminateEpisode: [v[7]!, v[8]!, v[9]!],
  };
}

/**
 * The safe action: no motion, gripper command unchanged (0 = hold), episode continues.
 * Emitted on stale input, missed deadlines, errors and e-stop.
 */
export function safeAction(): Rt1Action {
  return { worldVector: [0, 0, 0], rotationDelta: [0, 0, 0], gripperClosedness: 0, terminateEpisode: [0, 1, 0] };
}
