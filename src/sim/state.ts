/** Named access to the tabletop scene's state (positions, joints) over raw MuJoCo arrays. */
import type { Vec3 } from '../util/vec3.js';
import { idOf, OBJ, type MjData, type MjModel, type Mujoco } from './mujoco.js';

export const OBJECTS = ['can', 'apple', 'block_blue', 'block_yellow', 'block_purple'] as const;
export type ObjectName = (typeof OBJECTS)[number];

export type { Vec3 };

export class SceneState {
  private readonly body = new Map<string, number>();
  private readonly qadr = new Map<string, number>();

  constructor(
    readonly mj: Mujoco,
    readonly model: MjModel,
    readonly data: MjData,
  ) {
    for (const b of [...OBJECTS, 'gripper', 'drawer', 'cabinet', 'finger_left', 'finger_right'])
      this.body.set(b, idOf(mj, model, OBJ.body, b));
    for (const j of ['grip_x', 'grip_y', 'grip_z', 'grip_yaw', 'finger_left', 'finger_right', 'drawer', ...OBJECTS]) {
      this.qadr.set(j, model.jnt_qposadr[idOf(mj, model, OBJ.joint, j)]!);
    }
  }

  bodyPos(name: string): Vec3 {
    const i = this.body.get(name)! * 3;
    const x = this.data.xpos;
    return [x[i]!, x[i + 1]!, x[i + 2]!];
  }

  /** Heading of a body about the vertical axis (rad), from its world rotation matrix. */
  bodyYaw(name: string): number {
    const i = this.body.get(name)! * 9;
    const m = this.data.xmat;
    return Math.atan2(m[i + 3]!, m[i]!);
  }

  joint(name: string): number {
    return this.data.qpos[this.qadr.get(name)!]!;
  }

  setJoint(name: string, value: number): void {
    this.data.qpos[this.qadr.get(name)!] = value;
  }

  /** Places a free-joint object at `pos` with yaw `yaw`, at rest. */
  placeObject(name: ObjectName, pos: Vec3, yaw = 0): void {
    const a = this.qadr.get(name)!;
    const q = this.data.qpos;
    q[a] = pos[0];
    q[a + 1] = pos[1];
    q[a + 2] = pos[2];
    q[a + 3] = Math.cos(yaw / 2);
    q[a + 4] = 0;
    q[a + 5] = 0;
    q[a + 6] = Math.sin(yaw / 2);
  }

  /** Gripper position (x, y, z) and yaw from its joints. */
  gripper(): { pos: Vec3; yaw: number; opening: number } {
    return {
      pos: [this.joint('grip_x'), this.joint('grip_y'), this.joint('grip_z')],
      yaw: this.joint('grip_yaw'),
      opening: this.joint('finger_left') + this.joint('finger_right'),
    };
  }

  /** Drawer opening in metres (0 closed, positive = pulled out towards the robot). */
  drawerOpening(): number {
    return -this.joint('drawer');
  }

  /** Interior of the drawer in world coordinates: x/y bounds and the floor height. */
  drawerInterior(): { xMin: number; xMax: number; yMin: number; yMax: number; floor: number; rim: number } {
    const [dx, dy, dz] = this.bodyPos('drawer');
    return { xMin: dx - 0.11, xMax: dx + 0.105, yMin: dy - 0.12, yMax: dy + 0.12, floor: dz + 0.01, rim: dz + 0.085 };
  }

  /** The part of the drawer interior that is pulled out of the carcass (x range), where things can be dropped in. */
  drawerExposed(): { xMin: number; xMax: number } {
    const d = this.drawerInterior();
    const front = this.bodyPos('cabinet')[0] - 0.14;
    return { xMin: d.xMin, xMax: Math.min(d.xMax, front) };
  }

  /** Knob centre (where the expert grasps to pull). */
  knob(): Vec3 {
    const [dx, dy, dz] = this.bodyPos('drawer');
    return [dx - 0.19, dy, dz + 0.085];
  }
}
