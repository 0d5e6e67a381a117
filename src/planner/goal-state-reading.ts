/**
 * Goal states read off the goal pictures by the model's learned state reader (src/model/state-reader.ts),
 * for presets with `goalState: "read"`. The pose cost, the straight-move proposal, the gripper
 * command and the handover then use where the reader sees the gripper in each goal picture and
 * whether it looks closed, instead of the position and state a storyboard recorded with it.
 * Reading looks only at the pictures (their pixels and size) and passes the instruction on, so a
 * real robot's goal, which carries nothing else, is enough.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CAMERA_FILE, readCameraFile, type Camera } from '../core/camera.js';
import { UserError } from '../core/errors.js';
import { loadStateReader, STATE_READER_FILE, type StateReader } from '../model/state-reader.js';
import type { Goal, Observation } from '../core/types.js';
import { GoalPriors, type GoalPriorSettings } from './goal-priors.js';
import { distance, gripperPosition, type Vec3 } from './gripper-position.js';

/**
 * Closedness above which a picture's gripper counts as closed: the simulator's open fingers (9 cm
 * apart) read 0.1, fingers closed on the tasks' objects (a knob, a can, an apple: 2-6 cm) 0.44-0.79,
 * and 0.25 sits between.
 */
export const CLOSED_ABOVE = 0.25;

/** The finger opening (m) under which fingers of full opening `fullOpening` count as closed (closedness above CLOSED_ABOVE). */
export function closedBelow(fullOpening: number): number {
  return (1 - CLOSED_ABOVE) * fullOpening;
}

/** A closed-gripper goal this far or nearer from where the gripper was when it came (a grasp in place) is aimed at, not past. */
export const OVERSHOOT_MIN_MOVE = 0.03;

/**
 * Preset section `closedGoalPush` (metres): while a closed-gripper goal stays the current one and
 * the gripper has come within `reach` of where it is aimed, the aim moves `step` further along the
 * move, up to `max` past the reading. A push or pull ends where its picture shows the gripper,
 * but the picture shows the scene too: a drawer that a fast shove slid shut in the demonstration
 * (drawer-close's completion picture can have the gripper 16 cm short of the closed front) stays
 * open under a slower or slightly slanted push that reaches the same gripper position. Without
 * this the planner holds the gripper there until the stage's patience runs out and starts the
 * stage again.
 */
export interface ClosedGoalPush {
  step: number;
  reach: number;
  max: number;
}

/** A goal as read, where its move started, and how far past the reading it is aimed now. */
interface ReadGoal {
  read: Goal;
  start?: Vec3;
  past: number;
  aimed: Goal;
}

export class GoalStateReading {
  /** Per goal object: the planner is handed the same object until the goal changes. */
  private readonly goals = new WeakMap<Goal, ReadGoal>();
  private readonly pictures = new WeakMap<Observation, { picture: Observation; closed: boolean }>();
  private readonly priors?: GoalPriors;

  /**
   * `overshoot` (m, preset field `closedGoalOvershoot`): how far past a closed-gripper goal's read
   * position to aim, along the move from where the gripper was when that goal came. A pull or a
   * carry ends where its picture shows it, and the reader's centimetre of error stops the robot
   * short as often as long; short of a drawer's last millimetres, the stage is not done.
   *
   * `priors` (preset section `goalPriors`): what the robot's own state corrects in a read goal
   * (src/planner/goal-priors.ts); `camera`, the pose of the camera that took the goal pictures,
   * for its `setDown`. `push` (preset section `closedGoalPush`): how a reached closed-gripper
   * goal is aimed further while it stays current.
   */
  constructor(
    readonly reader: StateReader,
    readonly overshoot = 0,
    priors?: GoalPriorSettings,
    camera?: Camera,
    readonly push?: ClosedGoalPush,
  ) {
    if (priors) this.priors = new GoalPriors(priors, closedBelow(reader.cfg.fullOpening), camera);
  }

  /** A picture with the reader's gripper state as its proprioception (x, y, z, yaw 0, opening). */
  readPicture(o: Observation): Observation {
    return this.readOne(o).picture;
  }

  private readOne(o: Observation): { picture: Observation; closed: boolean } {
    let r = this.pictures.get(o);
    if (!r) {
      const picture = { image: o.image, width: o.width, height: o.height, stamp: o.stamp };
      const [s] = this.reader.read([picture]);
      const opening = (1 - s!.closedness) * this.reader.cfg.fullOpening;
      r = { picture: { ...picture, proprio: Float32Array.from([...s!.position, 0, opening]) }, closed: s!.closedness > CLOSED_ABOVE };
      this.pictures.set(o, r);
    }
    return r;
  }

  /**
   * The goal with every picture read, and the gripper state the last picture shows. `obs`, the
   * robot's observation when the goal is first read, gives the start of the move an overshoot
   * extends; without its proprioception there is no overshoot. At every later plan `obs` moves a
   * reached closed-gripper goal's aim on (`push`), and with goal priors lets the robot's state
   * correct the read goal. The same goal object comes back until its aim moves.
   */
  read(goal: Goal, obs?: Observation): Goal {
    const r = this.readGoal(goal, obs);
    if (this.push && obs) this.pushOn(r, this.push, gripperPosition(obs));
    return this.priors && obs ? this.priors.apply(obs, r.aimed) : r.aimed;
  }

  private readGoal(goal: Goal, obs?: Observation): ReadGoal {
    let r = this.goals.get(goal);
    if (!r) {
      const read = goal.images.map((o) => this.readOne(o));
      const g: Goal = { images: read.map((p) => p.picture), instruction: goal.instruction };
      if (read.length) g.gripper = read[read.length - 1]!.closed ? 'closed' : 'open';
      const start = gripperPosition(obs);
      const past = g.gripper === 'closed' ? this.overshoot : 0;
      r = { read: g, start, past, aimed: aimPast(g, start, past) };
      this.goals.set(goal, r);
    }
    return r;
  }

  /** Moves `r`'s aim `push.step` further when the gripper at `at` has come within `push.reach` of it. */
  private pushOn(r: ReadGoal, push: ClosedGoalPush, at: Vec3 | undefined): void {
    if (r.read.gripper !== 'closed' || !at || r.past >= push.max) return;
    const aim = gripperPosition(r.aimed.images[r.aimed.images.length - 1]);
    if (!aim || distance(at, aim) > push.reach) return;
    const past = Math.min(push.max, r.past + push.step);
    const moved = aimPast(r.read, r.start, past);
    if (moved === r.read) return; // a grasp in place, or no start: no move to push along
    r.past = past;
    r.aimed = moved;
  }

  /** A new episode (the priors track what the fingers hold). */
  reset(): void {
    this.priors?.reset();
  }

  dispose(): void {
    this.reader.dispose();
  }
}

/**
 * `g` with its last picture's gripper moved `past` metres further along the move from `start` (the
 * read pictures stay as read); `g` itself where there is nothing to move or the move is a grasp in place.
 */
function aimPast(g: Goal, start: Vec3 | undefined, past: number): Goal {
  const last = g.images[g.images.length - 1];
  const target = gripperPosition(last);
  if (!last || !start || !target || past <= 0) return g;
  const length = distance(start, target);
  if (length <= OVERSHOOT_MIN_MOVE) return g;
  const proprio = Float32Array.from(last.proprio!);
  for (let i = 0; i < 3; i++) proprio[i] = target[i]! + (past * (target[i]! - start[i]!)) / length;
  return { ...g, images: [...g.images.slice(0, -1), { ...last, proprio }] };
}

/** A file shipped next to the world model: in its model directory, or in the directory holding a weight file. */
export function modelDirFile(checkpoint: string, file: string): string {
  const dir = existsSync(checkpoint) && statSync(checkpoint).isFile() ? dirname(checkpoint) : checkpoint;
  return join(dir, file);
}

/** The state reader of a model directory (or of the directory holding a weight file). */
export function stateReaderPath(checkpoint: string): string {
  return modelDirFile(checkpoint, STATE_READER_FILE);
}

/** The goal reading a preset asks for: none unless its `goalState` is "read". */
export function loadGoalStateReading(
  preset: {
    name: string;
    goalState?: 'recorded' | 'read';
    closedGoalOvershoot?: number;
    closedGoalPush?: ClosedGoalPush;
    goalPriors?: GoalPriorSettings;
  },
  checkpoint: string,
): GoalStateReading | undefined {
  if (preset.goalState !== 'read') return undefined;
  const path = stateReaderPath(checkpoint);
  if (!existsSync(path))
    throw new UserError(
      `planner preset '${preset.name}' reads the goal pictures' gripper states with a learned state reader, and ${path} does not exist ` +
        `(train one with: selfflow-wm model train-reader --data-dir DIR --out ${dirname(path)})`,
    );
  const camera = preset.goalPriors?.setDown ? loadCamera(preset.name, checkpoint) : undefined;
  return new GoalStateReading(loadStateReader(path), preset.closedGoalOvershoot, preset.goalPriors, camera, preset.closedGoalPush);
}

/** The pose of the camera that took the pictures a model directory's state reader reads (its camera.json). */
function loadCamera(presetName: string, checkpoint: string): Camera {
  const path = modelDirFile(checkpoint, CAMERA_FILE);
  if (!existsSync(path))
    throw new UserError(
      `planner preset '${presetName}' slides set-down goals along the camera's rays (goalPriors.setDown), and ${path} does not exist ` +
        `(write the camera's pose there: selfflow-wm sim camera --out ${path} for the simulator's head camera, or your robot's calibration in that format)`,
    );
  return readCameraFile(path);
}
