/**
 * SIMPLER-like tasks on the tabletop: seeded randomisation of object poses, per-stage success
 * predicates computed from the physical state, and time limits in control steps (3 Hz).
 */
import { UserError } from '../core/errors.js';
import type { Rng } from '../util/rng.js';
import { OBJECTS, type ObjectName, type SceneState } from './state.js';

export interface TaskInfo {
  name: string;
  instruction: string;
  stages: string[];
  timeLimitSteps: number;
}

export interface TaskSetup {
  /** Objects the instruction refers to (e.g. move-near: [A, B]). */
  targets: ObjectName[];
  drawerOpening: number;
}

export interface TaskSpec extends TaskInfo {
  /** Positions objects (and the drawer) for a seed; returns what the predicates need. */
  setup(s: SceneState, rng: Rng): TaskSetup;
  /** stage i is reached when predicates[i] holds after stages 0..i-1 were reached. */
  predicates: ((s: SceneState, t: TaskSetup) => boolean)[];
}

/** Objects not used by a task are parked off the table, out of view and out of the way. */
function park(s: SceneState, keep: ObjectName[]): void {
  OBJECTS.forEach((o, i) => {
    if (!keep.includes(o)) s.placeObject(o, [0.05 + 0.08 * i, -0.9, 0.03]);
  });
}

const REST_Z: Record<ObjectName, number> = { can: 0.056, apple: 0.031, block_blue: 0.026, block_yellow: 0.026, block_purple: 0.021 };

/** Random free spot on the table (away from the cabinet and from `taken`). */
function spot(
  rng: Rng,
  taken: [number, number][],
  x: [number, number] = [0.38, 0.6],
  y: [number, number] = [-0.28, 0.02],
  clearance = 0.1,
): [number, number] {
  for (let i = 0; i < 200; i++) {
    const p: [number, number] = [rng.uniform(x[0], x[1]), rng.uniform(y[0], y[1])];
    if (taken.every((q) => Math.hypot(p[0] - q[0], p[1] - q[1]) > clearance)) return p;
  }
  throw new Error('could not place objects without overlap');
}

function place(s: SceneState, rng: Rng, objs: ObjectName[], region?: { x: [number, number]; y: [number, number] }, clearance = 0.1): void {
  // Greedy placement can paint itself into a corner; start over (same rng stream, so still seeded) when it does.
  for (let attempt = 0; ; attempt++) {
    const taken: [number, number][] = [];
    try {
      for (let i = 0; i < objs.length; i++) taken.push(spot(rng, taken, region?.x, region?.y, clearance));
    } catch (e) {
      if (attempt < 20) continue;
      throw e;
    }
    objs.forEach((o, i) => s.placeObject(o, [taken[i]![0], taken[i]![1], REST_Z[o]], rng.uniform(-Math.PI, Math.PI)));
    return;
  }
}

const lifted = (o: ObjectName, height: number) => (s: SceneState) => s.bodyPos(o)[2] > REST_Z[o] + height;
const drawerOpen = (s: SceneState) => s.drawerOpening() > 0.12;
const drawerClosed = (s: SceneState) => s.drawerOpening() < 0.03;
const inDrawer = (o: ObjectName) => (s: SceneState) => {
  const [x, y, z] = s.bodyPos(o);
  const d = s.drawerInterior();
  return x > d.xMin && x < d.xMax && y > d.yMin && y < d.yMax && z < d.rim && z > d.floor;
};

export const TASKS: TaskSpec[] = [
  {
    name: 'pick-can',
    instruction: 'pick coke can',
    stages: ['can lifted 8 cm'],
    timeLimitSteps: 40,
    setup(s, rng) {
      park(s, ['can', 'block_blue', 'block_yellow']);
      place(s, rng, ['can', 'block_blue', 'block_yellow']);
      return { targets: ['can'], drawerOpening: 0 };
    },
    predicates: [lifted('can', 0.08)],
  },
  {
    name: 'move-near',
    instruction: 'move blue block near yellow block',
    stages: ['blue block within 10 cm of yellow block (centres)'],
    timeLimitSteps: 50,
    setup(s, rng) {
      park(s, ['block_blue', 'block_yellow', 'block_purple', 'apple']);
      // Objects are placed >= 14 cm apart, so A is never near B at reset.
      place(s, rng, ['block_blue', 'block_yellow', 'block_purple', 'apple'], { x: [0.35, 0.62], y: [-0.32, 0.06] }, 0.14);
      return { targets: ['block_blue', 'block_yellow'], drawerOpening: 0 };
    },
    predicates: [
      (s) => {
        const a = s.bodyPos('block_blue');
        const b = s.bodyPos('block_yellow');
        return Math.hypot(a[0] - b[0], a[1] - b[1]) < 0.1 && a[2] < 0.05;
      },
    ],
  },
  {
    name: 'drawer-open',
    instruction: 'open top drawer',
    stages: ['drawer open 12 cm'],
    timeLimitSteps: 40,
    setup(s, rng) {
      park(s, ['can']);
      place(s, rng, ['can']);
      return { targets: [], drawerOpening: 0 };
    },
    predicates: [drawerOpen],
  },
  {
    name: 'drawer-close',
    instruction: 'close top drawer',
    stages: ['drawer closed'],
    timeLimitSteps: 30,
    setup(s, rng) {
      park(s, ['can']);
      place(s, rng, ['can']);
      return { targets: [], drawerOpening: rng.uniform(0.14, 0.18) };
    },
    predicates: [drawerClosed],
  },
  {
    name: 'drawer-place',
    instruction: 'open top drawer and place apple into top drawer',
    stages: ['drawer open 12 cm', 'apple in drawer'],
    timeLimitSteps: 90,
    setup(s, rng) {
      park(s, ['apple']);
      place(s, rng, ['apple'], { x: [0.38, 0.55], y: [-0.25, -0.05] });
      return { targets: ['apple'], drawerOpening: 0 };
    },
    predicates: [drawerOpen, inDrawer('apple')],
  },
  {
    name: 'drawer-chain',
    instruction: 'open top drawer, place apple into top drawer and close it',
    stages: ['drawer open 12 cm', 'apple in drawer', 'drawer closed with apple inside'],
    timeLimitSteps: 120,
    setup(s, rng) {
      park(s, ['apple']);
      place(s, rng, ['apple'], { x: [0.38, 0.55], y: [-0.25, -0.05] });
      return { targets: ['apple'], drawerOpening: 0 };
    },
    predicates: [drawerOpen, inDrawer('apple'), (s) => drawerClosed(s) && inDrawer('apple')(s)],
  },
];

export function taskByName(name: string): TaskSpec {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new UserError(`unknown task '${name}'; known: ${TASKS.map((x) => x.name).join(', ')}`);
  return t;
}

export function listTasks(): TaskInfo[] {
  return TASKS.map(({ name, instruction, stages, timeLimitSteps }) => ({ name, instruction, stages, timeLimitSteps }));
}
