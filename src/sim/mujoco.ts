/** Loads the official MuJoCo WebAssembly module once and compiles MJCF scenes from sim/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import loadMujoco from 'mujoco-js';
import { packageRoot } from '../util/package-root.js';
import { UserError } from '../core/errors.js';

// The module's own types are loose (`any` arrays); we keep a narrow view of what we use.
export interface MjModel {
  nq: number;
  nu: number;
  ngeom: number;
  nbody: number;
  opt: { timestep: number };
  geom_type: Int32Array;
  geom_size: Float64Array;
  geom_rgba: Float32Array;
  geom_bodyid: Int32Array;
  jnt_qposadr: Int32Array;
  delete(): void;
}

export interface MjData {
  qpos: Float64Array;
  qvel: Float64Array;
  ctrl: Float64Array;
  xpos: Float64Array;
  xmat: Float64Array;
  geom_xpos: Float64Array;
  geom_xmat: Float64Array;
  time: number;
  delete(): void;
}

export interface Mujoco {
  MjModel: { loadFromXML(path: string): MjModel };
  MjData: new (m: MjModel) => MjData;
  mj_step(m: MjModel, d: MjData): void;
  mj_forward(m: MjModel, d: MjData): void;
  mj_resetData(m: MjModel, d: MjData): void;
  mj_name2id(m: MjModel, type: number, name: string): number;
  FS: { writeFile(path: string, data: string): void; mkdir(path: string): void };
  mjtObj: Record<string, { value: number }>;
}

let modulePromise: Promise<Mujoco> | undefined;
const written = new Set<string>();

export function mujoco(): Promise<Mujoco> {
  modulePromise ??= (loadMujoco as unknown as () => Promise<Mujoco>)();
  return modulePromise;
}

/** Compiles sim/scenes/NAME.xml (copied into the module's in-memory file system once). */
export async function loadScene(name: string): Promise<{ mj: Mujoco; model: MjModel }> {
  const mj = await mujoco();
  const path = `/${name}.xml`;
  if (!written.has(path)) {
    const file = join(packageRoot(), 'sim', 'scenes', `${name}.xml`);
    let xml: string;
    try {
      xml = readFileSync(file, 'utf8');
    } catch {
      throw new UserError(`${file}: scene not found`);
    }
    mj.FS.writeFile(path, xml);
    written.add(path);
  }
  const model = mj.MjModel.loadFromXML(path);
  if (!model) throw new UserError(`sim/scenes/${name}.xml: MuJoCo could not compile the scene`);
  return { mj, model };
}

export const OBJ = { body: 1, joint: 3, geom: 5 } as const;

export function idOf(mj: Mujoco, model: MjModel, type: number, name: string): number {
  const id = mj.mj_name2id(model, type, name);
  if (id < 0) throw new Error(`scene has no ${type === OBJ.body ? 'body' : type === OBJ.joint ? 'joint' : 'geom'} '${name}'`);
  return id;
}
