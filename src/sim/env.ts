/**
 * The simulated robot: an RT-1-style end-effector action drives a floating parallel-jaw gripper
 * (position actuators on x, y, z, yaw and both fingers) in MuJoCo; observations are camera frames
 * from the software renderer plus proprioception.
 */
import type { Observation } from '../core/types.js';
import { gripperCommand, type Rt1Action } from '../core/action.js';
import { UserError } from '../core/errors.js';
import { jpegRoundTrip } from '../image/jpeg.js';
import { Rng } from '../util/rng.js';
import type { Vec3 } from '../util/vec3.js';
import { HEAD_CAMERA } from './camera.js';
import { loadScene, type MjData, type MjModel, type Mujoco } from './mujoco.js';
import { render, type GeomSnapshot } from './render.js';
import { SceneState } from './state.js';
import { taskByName, type TaskInfo, type TaskSetup, type TaskSpec } from './tasks.js';

export { listTasks, type TaskInfo } from './tasks.js';

/** How the simulated head camera delivers its pictures. */
export interface CameraSettings {
  /** Render shadows (src/sim/render.ts); frames then differ from the data the shipped models saw. */
  shadows?: boolean;
  /**
   * Deliver every picture as it comes back from a JPEG of this quality (1-100), as a compressed
   * camera stream does and as `sim collect` stores its episodes (at 92): models trained on stored
   * episodes saw such pictures. Undefined: the raw render.
   */
  jpegQuality?: number;
}

export interface SimEnvOptions extends CameraSettings {
  task: string;
  seed: number;
  imageHeight?: number;
  imageWidth?: number;
  /** Control rate (Hz): one action per 1/controlHz seconds of physics. RT-1 runs at 3 Hz. */
  controlHz?: number;
  /** Physics timestep (s); default the scene's 2 ms. */
  physicsTimestep?: number;
  maxSteps?: number;
}

export interface StepResult {
  observation: Observation;
  reward: number;
  stagesDone: number;
  stageCount: number;
  success: boolean;
  done: boolean;
  truncated: boolean;
  step: number;
}

/** Robot limits: what one action can do, and the reachable workspace. */
export const LIMITS = {
  maxTranslation: 0.06,
  maxYaw: 0.3,
  workspace: { x: [0.2, 0.92], y: [-0.42, 0.42], z: [0.02, 0.42] },
  yaw: [-1.5, 1.5],
  fingerOpen: 0.045,
} as const;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** The nearest point of the robot's reachable workspace (LIMITS.workspace) to `p`. */
export function intoWorkspace(p: Vec3): Vec3 {
  const { x, y, z } = LIMITS.workspace;
  return [clamp(p[0], x[0], x[1]), clamp(p[1], y[0], y[1]), clamp(p[2], z[0], z[1])];
}

export interface SimSnapshot {
  qpos: Float64Array;
  qvel: Float64Array;
  ctrl: Float64Array;
  time: number;
  target: { x: number; y: number; z: number; yaw: number; finger: number };
  stages: number;
  stepCount: number;
  terminated: boolean;
}

export class SimEnv {
  readonly task: TaskInfo;
  private readonly spec: TaskSpec;
  private readonly state: SceneState;
  private setup!: TaskSetup;
  private target = { x: 0.4, y: 0, z: 0.3, yaw: 0, finger: LIMITS.fingerOpen as number };
  private stages = 0;
  private stepCount = 0;
  private terminated = false;
  readonly height: number;
  readonly width: number;
  private readonly substeps: number;
  private readonly controlHz: number;
  private readonly maxSteps: number;
  private seed: number;
  private readonly shadows: boolean;
  private readonly jpegQuality?: number;

  private constructor(
    private readonly mj: Mujoco,
    private readonly model: MjModel,
    private readonly data: MjData,
    opts: SimEnvOptions,
  ) {
    this.spec = taskByName(opts.task);
    this.task = {
      name: this.spec.name,
      instruction: this.spec.instruction,
      stages: this.spec.stages,
      timeLimitSteps: this.spec.timeLimitSteps,
    };
    this.state = new SceneState(mj, model, data);
    this.height = opts.imageHeight ?? 256;
    this.width = opts.imageWidth ?? 320;
    if (opts.physicsTimestep !== undefined) {
      if (!(opts.physicsTimestep > 0 && opts.physicsTimestep <= 0.02))
        throw new UserError(`physicsTimestep must be in (0, 0.02] s, got ${opts.physicsTimestep}`);
      model.opt.timestep = opts.physicsTimestep;
    }
    this.controlHz = opts.controlHz ?? 3;
    if (!(this.controlHz > 0 && this.controlHz <= 1 / model.opt.timestep))
      throw new UserError(
        `controlHz must be in (0, ${1 / model.opt.timestep}] (one physics step per action at most), got ${opts.controlHz}`,
      );
    this.substeps = Math.max(1, Math.round(1 / (this.controlHz * model.opt.timestep)));
    this.maxSteps = opts.maxSteps ?? this.spec.timeLimitSteps;
    this.seed = opts.seed;
    this.shadows = opts.shadows ?? false;
    const q = opts.jpegQuality;
    if (q !== undefined && !(Number.isInteger(q) && q >= 1 && q <= 100))
      throw new UserError(`the camera's JPEG quality must be an integer from 1 to 100, got ${q}`);
    this.jpegQuality = q;
  }

  static async create(opts: SimEnvOptions): Promise<SimEnv> {
    taskByName(opts.task);
    const { mj, model } = await loadScene('tabletop');
    const env = new SimEnv(mj, model, new mj.MjData(model), opts);
    env.reset(opts.seed);
    return env;
  }

  /** Privileged scene state, for scripted experts and task predicates only. */
  get scene(): SceneState {
    return this.state;
  }

  get taskSetup(): TaskSetup {
    return this.setup;
  }

  /** Control steps taken since the last reset. */
  get stepIndex(): number {
    return this.stepCount;
  }

  reset(seed = this.seed): StepResult {
    this.seed = seed;
    const rng = new Rng(seed);
    this.mj.mj_resetData(this.model, this.data);
    this.setup = this.spec.setup(this.state, rng);
    this.state.setJoint('drawer', -this.setup.drawerOpening);
    this.target = { x: rng.uniform(0.3, 0.42), y: rng.uniform(-0.12, 0.12), z: rng.uniform(0.25, 0.32), yaw: 0, finger: LIMITS.fingerOpen };
    for (const [j, v] of [
      ['grip_x', this.target.x],
      ['grip_y', this.target.y],
      ['grip_z', this.target.z],
      ['grip_yaw', 0],
      ['finger_left', LIMITS.fingerOpen],
      ['finger_right', LIMITS.fingerOpen],
    ] as const)
      this.state.setJoint(j, v);
    this.applyTargets();
    this.mj.mj_forward(this.model, this.data);
    // Let objects settle on the table (0.2 s of physics) before the episode starts.
    for (let i = 0, n = Math.round(0.2 / this.model.opt.timestep); i < n; i++) this.mj.mj_step(this.model, this.data);
    this.stages = 0;
    this.stepCount = 0;
    this.terminated = false;
    this.updateStages();
    return this.result();
  }

  private applyTargets(): void {
    const c = this.data.ctrl;
    c[0] = this.target.x;
    c[1] = this.target.y;
    c[2] = this.target.z;
    c[3] = this.target.yaw;
    c[4] = this.target.finger;
    c[5] = this.target.finger;
  }

  /** Applies one RT-1 action (clamped to the robot's limits) and advances physics by one control period. */
  step(action: Rt1Action): StepResult {
    const [dx, dy, dz] = action.worldVector.map((v) => clamp(Number.isFinite(v) ? v : 0, -LIMITS.maxTranslation, LIMITS.maxTranslation));
    // Displacements are relative to where the end effector is, not to the previous target: a gripper
    // blocked by the cabinet must not wind up a target that it then jumps to once it slips free.
    const g = this.state.gripper();
    [this.target.x, this.target.y, this.target.z] = intoWorkspace([g.pos[0] + dx!, g.pos[1] + dy!, g.pos[2] + dz!]);
    const dyaw = clamp(Number.isFinite(action.rotationDelta[2]) ? action.rotationDelta[2] : 0, -LIMITS.maxYaw, LIMITS.maxYaw);
    this.target.yaw = clamp(g.yaw + dyaw, LIMITS.yaw[0], LIMITS.yaw[1]);
    // RT-1 semantics: +1 close, -1 open; values near 0 keep the current command.
    const grip = gripperCommand(action);
    if (grip === 'close') this.target.finger = 0;
    else if (grip === 'open') this.target.finger = LIMITS.fingerOpen;
    this.applyTargets();
    for (let i = 0; i < this.substeps; i++) this.mj.mj_step(this.model, this.data);
    this.stepCount++;
    if (action.terminateEpisode[0] > 0.5) this.terminated = true;
    this.updateStages();
    return this.result();
  }

  /** Everything `restore` needs to put the episode back exactly here (physics state, targets, progress). */
  snapshot(): SimSnapshot {
    const d = this.data;
    return {
      qpos: Float64Array.from(d.qpos),
      qvel: Float64Array.from(d.qvel),
      ctrl: Float64Array.from(d.ctrl),
      time: d.time,
      target: { ...this.target },
      stages: this.stages,
      stepCount: this.stepCount,
      terminated: this.terminated,
    };
  }

  restore(s: SimSnapshot): void {
    const d = this.data;
    d.qpos.set(s.qpos);
    d.qvel.set(s.qvel);
    d.ctrl.set(s.ctrl);
    d.time = s.time;
    this.target = { ...s.target };
    this.stages = s.stages;
    this.stepCount = s.stepCount;
    this.terminated = s.terminated;
    this.mj.mj_forward(this.model, this.data);
  }

  /** Same as `step`; the name the evaluation and planner were first written against. */
  stepAction(action: Rt1Action): StepResult {
    return this.step(action);
  }

  private updateStages(): void {
    while (this.stages < this.spec.predicates.length && this.spec.predicates[this.stages]!(this.state, this.setup)) this.stages++;
  }

  /** Whether the last gripper command was "close" (a restored episode's storyboard starts from it). */
  get gripperClosedCommanded(): boolean {
    return this.target.finger === 0;
  }

  /** The episode as it stands, without stepping (after `restore`). */
  result(): StepResult {
    const success = this.stages === this.spec.predicates.length;
    const truncated = !success && this.stepCount >= this.maxSteps;
    return {
      observation: this.observation(),
      reward: success ? 1 : 0,
      stagesDone: this.stages,
      stageCount: this.spec.predicates.length,
      success,
      done: success || truncated || this.terminated,
      truncated,
      step: this.stepCount,
    };
  }

  proprio(): Float32Array {
    const g = this.state.gripper();
    return Float32Array.from([...g.pos, g.yaw, g.opening]);
  }

  observation(): Observation {
    return {
      image: this.render(this.height, this.width),
      height: this.height,
      width: this.width,
      proprio: this.proprio(),
      stamp: (this.stepCount * 1000) / this.controlHz,
    };
  }

  geoms(): GeomSnapshot[] {
    const out: GeomSnapshot[] = [];
    const m = this.model;
    const d = this.data;
    for (let g = 0; g < m.ngeom; g++) {
      const rgba = [m.geom_rgba[g * 4]!, m.geom_rgba[g * 4 + 1]!, m.geom_rgba[g * 4 + 2]!, m.geom_rgba[g * 4 + 3]!];
      if (rgba[3]! <= 0) continue;
      const pos = d.geom_xpos.subarray(g * 3, g * 3 + 3);
      if (pos[1]! < -0.7) continue; // parked objects
      out.push({
        type: m.geom_type[g]!,
        pos,
        mat: d.geom_xmat.subarray(g * 9, g * 9 + 9),
        size: m.geom_size.subarray(g * 3, g * 3 + 3),
        rgb: [rgba[0]!, rgba[1]!, rgba[2]!],
      });
    }
    return out;
  }

  render(height = this.height, width = this.width): Uint8Array {
    const rgb = render(this.geoms(), HEAD_CAMERA, height, width, { shadows: this.shadows }).rgb;
    return this.jpegQuality === undefined ? rgb : jpegRoundTrip(rgb, width, height, this.jpegQuality);
  }

  close(): void {
    this.data.delete();
    this.model.delete();
  }
}
