/**
 * The service's configuration: topics, rates, safety limits, gripper and WebSocket API. The same
 * tree is read from a ROS 2 params file (`NODE: ros__parameters: ...`, nested maps = dotted
 * parameter names) and from `-p name:=value` overrides, so launch files and the CLI agree.
 */
import { readFileSync } from 'node:fs';
import { isScalar, parseDocument } from 'yaml';
import { UserError } from '../core/errors.js';

export interface Box {
  x: [number, number];
  y: [number, number];
  z: [number, number];
}

export interface SafetyConfig {
  /** End-effector speed limits; one RT-1 step may move at most this times the action period. */
  maxLinearVelocity: number;
  maxAngularVelocity: number;
  /** Workspace box (m, robot base frame); needs an end-effector pose. Omit to disable. */
  workspace?: Box;
  /** Zero the command when the newest camera frame arrived longer ago than this. */
  maxImageAgeMs: number;
  /**
   * Zero the command when the newest frame's header stamp is older than this by the wall clock
   * (camera and service clocks synchronised, no sim time); 0 disables the check.
   */
  maxHeaderAgeMs: number;
  /**
   * Zero the command when no plan arrived for this long (the planner missed its deadline);
   * 0 = auto: the planner preset's budget + grace + one action period (see resolvePlanDeadline).
   */
  planDeadlineMs: number;
  /** Zero the command when the end-effector pose (workspace check) is older than this. */
  maxPoseAgeMs: number;
  /**
   * After a robot link loss the service stops and waits for an explicit start (API `start` or true
   * on the run topic); true lets motion resume from new frames once the link is back.
   */
  resumeAfterLinkLoss: boolean;
}

export interface ServiceConfig {
  namespace: string;
  topics: {
    image: string;
    compressedImage: string;
    /** Subscribe to `image_raw/compressed` (sensor_msgs/CompressedImage) instead of `image_raw`. */
    useCompressed: boolean;
    jointStates: string;
    eePose: string;
    action: string;
    twist: string;
    gripper: string;
    goalImage: string;
    /** The goal as sensor_msgs/CompressedImage (JPEG/PNG), subscribed alongside goalImage. */
    goalImageCompressed: string;
    estop: string;
    /** std_msgs/Bool: true starts planning and commands, false stops them (the ROS side of the API's start/stop). */
    run: string;
    status: string;
  };
  /** frame_id of the twist (MoveIt Servo's planning frame). */
  twistFrame: string;
  /** Joints (in order) that make the planner's proprioception; empty = every joint in message order. */
  proprioJoints: string[];
  /** RT-1 action rate (Hz) and the twist republish rate (Hz; MoveIt Servo stops after 0.1 s without a command). */
  actionHz: number;
  twistHz: number;
  statusHz: number;
  /** `rate`: one action per 1/actionHz from the latest plan. `lockstep`: one action per observation (simulators, replays). */
  controlMode: 'rate' | 'lockstep';
  /** Start planning as soon as the service is up (otherwise wait for a `start` on the WebSocket API). */
  autoStart: boolean;
  safety: SafetyConfig;
  gripper: { openPosition: number; closedPosition: number; maxEffort: number };
  api: {
    enabled: boolean;
    host: string;
    port: number;
    /** Every client message must carry this token; empty disables control messages entirely. */
    token: string;
    maxMessageBytes: number;
    /** A client whose unsent data (replies and streams) exceeds this is closed; streams are skipped for it above it. */
    maxPendingBytes: number;
    /** A client that sends more than this many frames per second (bursts up to one second's worth) is closed. */
    maxMessagesPerSecond: number;
    /** Connections beyond this many are refused. */
    maxClients: number;
  };
  goal: {
    /** Goal images (API setGoal, goal image topic) that declare more pixels than this are refused before decoding. */
    maxPixels: number;
  };
  camera: {
    /**
     * Compressed camera frames that declare more pixels than this are dropped before decoding: they are
     * decoded on the thread that runs the safety gate, so their size bounds how long it can be held.
     */
    maxPixels: number;
  };
}

export function defaultConfig(): ServiceConfig {
  return {
    namespace: '',
    topics: {
      image: 'image_raw',
      compressedImage: 'image_raw/compressed',
      useCompressed: false,
      jointStates: 'joint_states',
      eePose: 'ee_pose',
      action: 'selfflow/action',
      twist: 'servo/delta_twist_cmds',
      gripper: 'gripper/command',
      goalImage: 'selfflow/goal_image',
      goalImageCompressed: 'selfflow/goal_image/compressed',
      estop: 'selfflow/estop',
      run: 'selfflow/run',
      status: 'selfflow/status',
    },
    twistFrame: 'base_link',
    proprioJoints: [],
    actionHz: 3,
    twistHz: 20,
    statusHz: 2,
    controlMode: 'rate',
    autoStart: true,
    // No workspace box in code: it is robot-specific and needs an ee_pose topic; launch/params.yaml ships one.
    safety: {
      maxLinearVelocity: 0.25,
      maxAngularVelocity: 1.0,
      maxImageAgeMs: 500,
      maxHeaderAgeMs: 0,
      planDeadlineMs: 0,
      maxPoseAgeMs: 500,
      resumeAfterLinkLoss: false,
    },
    gripper: { openPosition: 0.045, closedPosition: 0, maxEffort: 40 },
    api: {
      enabled: true,
      host: '127.0.0.1',
      port: 8765,
      token: '',
      maxMessageBytes: 4 * 1024 * 1024,
      maxPendingBytes: 8 * 1024 * 1024,
      maxMessagesPerSecond: 100,
      maxClients: 32,
    },
    goal: { maxPixels: DEFAULT_MAX_GOAL_PIXELS },
    camera: { maxPixels: DEFAULT_MAX_CAMERA_PIXELS },
  };
}

/** The largest compressed camera frame decoded by default: 1920x1080 (about 50 ms of JPEG decoding on one core here). */
export const DEFAULT_MAX_CAMERA_PIXELS = 1920 * 1080;

/** The largest goal image decoded by default: 4096x4096 pixels (a 48 MiB RGB buffer). */
export const DEFAULT_MAX_GOAL_PIXELS = 4096 * 4096;

/** api.max_message_bytes above this is a typo, not a goal image (the default is 4 MiB). */
export const MAX_MESSAGE_BYTES_LIMIT = 256 * 1024 * 1024;

/** snake_case parameter name (params YAML, `-p`) -> path in ServiceConfig; `integer` with its allowed range. */
const PARAMS: Record<
  string,
  { path: string[]; kind: 'string' | 'number' | 'boolean' | 'strings' | 'range' | 'enum'; values?: string[]; integer?: [number, number] }
> = {
  namespace: { path: ['namespace'], kind: 'string' },
  'topics.image': { path: ['topics', 'image'], kind: 'string' },
  'topics.compressed_image': { path: ['topics', 'compressedImage'], kind: 'string' },
  'topics.use_compressed': { path: ['topics', 'useCompressed'], kind: 'boolean' },
  'topics.joint_states': { path: ['topics', 'jointStates'], kind: 'string' },
  'topics.ee_pose': { path: ['topics', 'eePose'], kind: 'string' },
  'topics.action': { path: ['topics', 'action'], kind: 'string' },
  'topics.twist': { path: ['topics', 'twist'], kind: 'string' },
  'topics.gripper': { path: ['topics', 'gripper'], kind: 'string' },
  'topics.goal_image': { path: ['topics', 'goalImage'], kind: 'string' },
  'topics.goal_image_compressed': { path: ['topics', 'goalImageCompressed'], kind: 'string' },
  'topics.estop': { path: ['topics', 'estop'], kind: 'string' },
  'topics.run': { path: ['topics', 'run'], kind: 'string' },
  'topics.status': { path: ['topics', 'status'], kind: 'string' },
  twist_frame: { path: ['twistFrame'], kind: 'string' },
  proprio_joints: { path: ['proprioJoints'], kind: 'strings' },
  'rates.action_hz': { path: ['actionHz'], kind: 'number' },
  'rates.twist_hz': { path: ['twistHz'], kind: 'number' },
  'rates.status_hz': { path: ['statusHz'], kind: 'number' },
  control_mode: { path: ['controlMode'], kind: 'enum', values: ['rate', 'lockstep'] },
  auto_start: { path: ['autoStart'], kind: 'boolean' },
  'safety.max_linear_velocity': { path: ['safety', 'maxLinearVelocity'], kind: 'number' },
  'safety.max_angular_velocity': { path: ['safety', 'maxAngularVelocity'], kind: 'number' },
  'safety.max_image_age_ms': { path: ['safety', 'maxImageAgeMs'], kind: 'number' },
  'safety.max_header_age_ms': { path: ['safety', 'maxHeaderAgeMs'], kind: 'number' },
  'safety.plan_deadline_ms': { path: ['safety', 'planDeadlineMs'], kind: 'number' },
  'safety.max_pose_age_ms': { path: ['safety', 'maxPoseAgeMs'], kind: 'number' },
  'safety.resume_after_link_loss': { path: ['safety', 'resumeAfterLinkLoss'], kind: 'boolean' },
  'safety.workspace.x': { path: ['safety', 'workspace', 'x'], kind: 'range' },
  'safety.workspace.y': { path: ['safety', 'workspace', 'y'], kind: 'range' },
  'safety.workspace.z': { path: ['safety', 'workspace', 'z'], kind: 'range' },
  'gripper.open_position': { path: ['gripper', 'openPosition'], kind: 'number' },
  'gripper.closed_position': { path: ['gripper', 'closedPosition'], kind: 'number' },
  'gripper.max_effort': { path: ['gripper', 'maxEffort'], kind: 'number' },
  'api.enabled': { path: ['api', 'enabled'], kind: 'boolean' },
  'api.host': { path: ['api', 'host'], kind: 'string' },
  'api.port': { path: ['api', 'port'], kind: 'number' },
  'api.token': { path: ['api', 'token'], kind: 'string' },
  'api.max_message_bytes': { path: ['api', 'maxMessageBytes'], kind: 'number', integer: [1, MAX_MESSAGE_BYTES_LIMIT] },
  'api.max_pending_bytes': { path: ['api', 'maxPendingBytes'], kind: 'number', integer: [1024, MAX_MESSAGE_BYTES_LIMIT] },
  'api.max_messages_per_second': { path: ['api', 'maxMessagesPerSecond'], kind: 'number', integer: [1, 100_000] },
  'api.max_clients': { path: ['api', 'maxClients'], kind: 'number', integer: [1, 10_000] },
  'goal.max_pixels': { path: ['goal', 'maxPixels'], kind: 'number', integer: [1, 2 ** 31] },
  'camera.max_pixels': { path: ['camera', 'maxPixels'], kind: 'number', integer: [1, 2 ** 31] },
};

export const PARAM_NAMES = Object.keys(PARAMS);

/** Whether a parameter is declared as a string (its value is taken as written, never as a YAML number). */
export function isStringParam(name: string): boolean {
  return PARAMS[name]?.kind === 'string';
}

function coerce(name: string, value: unknown, where: string): unknown {
  const spec = PARAMS[name]!;
  const bad = (want: string) => new UserError(`${where}: parameter '${name}' expects ${want}, got ${JSON.stringify(value)}`);
  switch (spec.kind) {
    case 'string':
      if (typeof value === 'number') return String(value);
      if (typeof value !== 'string') throw bad('a string');
      return value;
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw bad('a non-negative number');
      if (spec.integer && !(Number.isInteger(n) && n >= spec.integer[0] && n <= spec.integer[1]))
        throw bad(`an integer from ${spec.integer[0]} to ${spec.integer[1]}`);
      return n;
    }
    case 'boolean':
      if (value === true || value === 'true' || value === 'True') return true;
      if (value === false || value === 'false' || value === 'False') return false;
      throw bad('true or false');
    case 'enum':
      if (typeof value !== 'string' || !spec.values!.includes(value)) throw bad(spec.values!.join(' or '));
      return value;
    case 'strings': {
      const arr = typeof value === 'string' ? parseListString(value) : value;
      if (!Array.isArray(arr) || arr.some((v) => typeof v !== 'string')) throw bad('a list of strings');
      return arr;
    }
    case 'range': {
      const arr = typeof value === 'string' ? parseListString(value).map(Number) : value;
      if (!Array.isArray(arr) || arr.length !== 2 || arr.some((v) => typeof v !== 'number' || !Number.isFinite(v)) || arr[0] >= arr[1])
        throw bad('[min, max] with min < max');
      return arr;
    }
  }
}

/** `[a, b]` or `a,b` as `-p` passes lists. */
function parseListString(v: string): string[] {
  const inner = v.trim().replace(/^\[/, '').replace(/\]$/, '');
  return inner === '' ? [] : inner.split(',').map((s) => s.trim().replace(/^['"]|['"]$/g, ''));
}

/** Sets one snake_case parameter (dotted name) on a config. */
export function setParam(cfg: ServiceConfig, name: string, value: unknown, where: string): void {
  if (!PARAMS[name]) throw new UserError(`${where}: unknown parameter '${name}' (known: ${PARAM_NAMES.join(', ')})`);
  const v = coerce(name, value, where);
  let node = cfg as unknown as Record<string, unknown>;
  const path = PARAMS[name].path;
  for (const key of path.slice(0, -1)) {
    if (node[key] === undefined)
      node[key] = key === 'workspace' ? { x: [-Infinity, Infinity], y: [-Infinity, Infinity], z: [-Infinity, Infinity] } : {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = v;
}

/** Flattens nested maps into dotted names (the ROS 2 convention for params files), keeping each value's key path. */
function flatten(obj: Record<string, unknown>, prefix: string, keys: string[], out: [string, unknown, string[]][]): void {
  for (const [k, v] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !PARAMS[name])
      flatten(v as Record<string, unknown>, name, [...keys, k], out);
    else out.push([name, v, [...keys, k]]);
  }
}

/**
 * Applies a ROS 2 params file: parameters under `/**`, the node's name or its fully qualified name
 * (`/ns/name`), each with `ros__parameters`. Unknown parameters are errors naming file and key.
 */
export function applyParamsFile(cfg: ServiceConfig, file: string, nodeName: string, namespace = ''): void {
  let yamlDoc: ReturnType<typeof parseDocument>;
  let doc: unknown;
  try {
    yamlDoc = parseDocument(readFileSync(file, 'utf8'));
    if (yamlDoc.errors.length) throw yamlDoc.errors[0]!;
    doc = yamlDoc.toJS();
  } catch (e) {
    throw new UserError(`${file}: cannot read params file (${(e as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object') throw new UserError(`${file}: expected a map of node names to ros__parameters`);
  const fq = `${namespace.replace(/\/$/, '')}/${nodeName}`.replace(/^\/?/, '/');
  const matches = new Set(['/**', nodeName, fq, fq.slice(1)]);
  let found = false;
  for (const [key, section] of Object.entries(doc as Record<string, unknown>)) {
    if (!matches.has(key)) continue;
    const params = (section as { ros__parameters?: unknown } | null)?.ros__parameters;
    if (params === undefined || params === null || typeof params !== 'object')
      throw new UserError(`${file}: '${key}' has no ros__parameters map`);
    found = true;
    const flat: [string, unknown, string[]][] = [];
    flatten(params as Record<string, unknown>, '', [], flat);
    for (const [name, value, keys] of flat) {
      // A string parameter written as a plain number or boolean (token: 007) keeps its text.
      const node =
        isStringParam(name) && (typeof value === 'number' || typeof value === 'boolean')
          ? (yamlDoc.getIn([key, 'ros__parameters', ...keys], true) as unknown)
          : undefined;
      const text = isScalar(node) && typeof node.source === 'string' ? node.source : undefined;
      setParam(cfg, name, text ?? value, `${file} (${key}.ros__parameters)`);
    }
  }
  if (!found)
    throw new UserError(`${file}: no section for node '${nodeName}' (expected '/**', '${nodeName}' or '${fq}' with ros__parameters)`);
}

/** Cross-field checks once every source has been applied. */
export function validateConfig(cfg: ServiceConfig, where = 'config'): ServiceConfig {
  if (!(cfg.actionHz > 0)) throw new UserError(`${where}: rates.action_hz must be > 0`);
  if (cfg.twistHz !== 0 && (cfg.twistHz < 10 || cfg.twistHz > 30))
    throw new UserError(`${where}: rates.twist_hz must be 10..30 (MoveIt Servo's 0.1 s timeout) or 0 to disable, got ${cfg.twistHz}`);
  if (cfg.twistHz !== 0 && cfg.twistHz < cfg.actionHz)
    throw new UserError(`${where}: rates.twist_hz (${cfg.twistHz}) must not be below rates.action_hz (${cfg.actionHz})`);
  if (!Number.isInteger(cfg.api.port) || cfg.api.port > 65535)
    throw new UserError(`${where}: api.port must be an integer port, got ${cfg.api.port}`);
  // 0 would reach ws as maxPayload 0, which means no limit at all.
  const mmb = cfg.api.maxMessageBytes;
  if (!Number.isInteger(mmb) || mmb < 1 || mmb > MAX_MESSAGE_BYTES_LIMIT)
    throw new UserError(`${where}: api.max_message_bytes must be an integer from 1 to ${MAX_MESSAGE_BYTES_LIMIT} (256 MiB), got ${mmb}`);
  const w = cfg.safety.workspace;
  if (w)
    for (const axis of ['x', 'y', 'z'] as const)
      if (!(w[axis][0] < w[axis][1])) throw new UserError(`${where}: safety.workspace.${axis} needs all three axes set as [min, max]`);
  return cfg;
}

/** Plan deadline of planners without a time budget of their own (the scripted sim policies answer at once). */
export const UNBUDGETED_PLAN_DEADLINE_MS = 1500;

/**
 * safety.plan_deadline_ms, with 0 (auto) resolved: a planner that gives up at budget + grace (and
 * then sends the safe plan) plans again from a frame that may wait up to one action period, so
 * fresh plans can be that far apart without the planner failing.
 */
export function resolvePlanDeadline(cfg: ServiceConfig, timing?: { budgetMs: number; graceMs: number }): number {
  if (cfg.safety.planDeadlineMs > 0) return cfg.safety.planDeadlineMs;
  if (!timing) return UNBUDGETED_PLAN_DEADLINE_MS;
  return Math.ceil(timing.budgetMs + timing.graceMs + 1000 / cfg.actionHz);
}

/** ROS remapping rules (`-r from:=to`) applied to the configured topic names. */
export function applyRemaps(cfg: ServiceConfig, remaps: { from: string; to: string }[]): void {
  const topics = cfg.topics as unknown as Record<string, unknown>;
  for (const { from, to } of remaps) {
    for (const [key, name] of Object.entries(topics)) {
      if (typeof name === 'string' && (name === from || name === from.replace(/^~?\//, ''))) topics[key] = to;
    }
  }
}
