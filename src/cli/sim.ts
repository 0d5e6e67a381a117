import { encodePng } from '../image/png.js';
import { writeGif, type GifFrame } from '../image/gif.js';
import { writeFileAtomic } from '../util/atomic.js';
import { shippedModel, SHIPPED_MODEL } from '../util/package-root.js';
import { BACKEND_OPTION, bool, int, num, requireStr, SHADOWS_OPTION, str, UsageError, type Command } from './command.js';

function imageSize(text: string | undefined, fallback: [number, number]): [number, number] {
  if (!text) return fallback;
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--image-size expects HxW (e.g. 64x80), got '${text}'`);
  const [h, w] = [Number(m[1]), Number(m[2])];
  if (h > 256 || w > 320 || h < 8 || w < 8) throw new UsageError(`--image-size must be between 8x8 and the native 256x320, got ${text}`);
  return [h, w];
}

/** Task names from a comma list, each checked (an unknown one is a UserError naming it). */
async function taskList(text: string): Promise<string[]> {
  const { taskByName } = await import('../sim/tasks.js');
  const tasks = text.split(',').map((t) => t.trim());
  tasks.forEach((t) => taskByName(t));
  return tasks;
}

/** Runs a collection that Ctrl-C stops after its current episode, keeping the complete shards. */
async function untilInterrupted(run: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const abort = new AbortController();
  const onSigint = () => {
    console.error('\ninterrupt: finishing the episode, keeping complete shards');
    abort.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    await run(abort.signal);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export const simTasksCommand: Command = {
  name: 'sim tasks',
  summary: 'list the simulator tasks with their instructions, stages and time limits',
  options: { json: { type: 'boolean', description: 'print JSON' } },
  async run(opts) {
    const { listTasks } = await import('../sim/tasks.js');
    const tasks = listTasks();
    if (bool(opts, 'json')) return void console.log(JSON.stringify(tasks, null, 2));
    for (const t of tasks)
      console.log(
        `${t.name.padEnd(14)} "${t.instruction}"  stages: ${t.stages.join(' -> ')}  limit ${t.timeLimitSteps} steps (${(t.timeLimitSteps / 3).toFixed(0)} s at 3 Hz)`,
      );
  },
};

export const simRenderCommand: Command = {
  name: 'sim render',
  summary: 'render the camera view of a task at reset (or after the expert) to a PNG',
  options: {
    task: { type: 'string', arg: 'T', description: 'task name (see sim tasks)', default: 'pick-can' },
    seed: { type: 'string', arg: 'S', description: 'randomisation seed', default: '0' },
    out: { type: 'string', arg: 'FILE.png', description: 'output PNG', default: 'frame.png' },
    'image-size': { type: 'string', arg: 'HxW', description: 'image size (native 256x320)' },
    'after-expert': { type: 'boolean', description: 'render the final state after the scripted expert ran' },
  },
  async run(opts) {
    const { SimEnv } = await import('../sim/env.js');
    const [h, w] = imageSize(str(opts, 'image-size'), [256, 320]);
    const task = requireStr(opts, 'task');
    const seed = int(opts, 'seed', 0);
    const env = await SimEnv.create({ task, seed, imageHeight: h, imageWidth: w });
    let r = env.reset(seed);
    if (bool(opts, 'after-expert')) {
      const { makeScriptedPolicy } = await import('../sim/expert.js');
      const p = makeScriptedPolicy('expert', task, seed);
      p.reset(env);
      while (!r.done) r = env.step(p.act(r));
    }
    const out = requireStr(opts, 'out');
    writeFileAtomic(out, encodePng(r.observation.image, w, h));
    console.log(`wrote ${out} (${task}, seed ${seed}, ${h}x${w}, stage ${r.stagesDone}/${r.stageCount})`);
    env.close();
  },
};

export const simCameraCommand: Command = {
  name: 'sim camera',
  summary: "write the simulator head camera's pose as a model directory's camera.json",
  options: {
    out: { type: 'string', arg: 'FILE', description: "output file (a model directory's camera.json)", default: 'camera.json' },
  },
  async run(opts) {
    const { HEAD_CAMERA } = await import('../sim/camera.js');
    const { cameraJson } = await import('../core/camera.js');
    const out = requireStr(opts, 'out');
    writeFileAtomic(
      out,
      cameraJson(HEAD_CAMERA, "the simulator's head camera (src/sim/camera.ts), which took every picture of sim collect"),
    );
    console.log(`wrote ${out}`);
  },
};

export const simRunCommand: Command = {
  name: 'sim run',
  summary: 'run the scripted expert or the random policy on a task and write an episode GIF',
  options: {
    task: { type: 'string', arg: 'T', description: 'task name', default: 'pick-can' },
    policy: { type: 'string', arg: 'P', description: 'expert or random', default: 'expert' },
    seed: { type: 'string', arg: 'S', description: 'seed', default: '0' },
    episodes: { type: 'string', arg: 'N', description: 'episodes (seeds S..S+N-1); prints the success rate', default: '1' },
    noise: { type: 'string', arg: 'X', description: 'expert action noise (std, metres per step)', default: '0' },
    explore: { type: 'string', arg: 'P', description: 'expert: probability per step of a random exploration segment', default: '0' },
    gif: { type: 'string', arg: 'FILE.gif', description: 'write the first episode as a GIF (captioned with step and stage)' },
    'image-size': { type: 'string', arg: 'HxW', description: 'camera size for the GIF', default: '128x160' },
  },
  async run(opts) {
    const { SimEnv } = await import('../sim/env.js');
    const { makeScriptedPolicy } = await import('../sim/expert.js');
    const task = requireStr(opts, 'task');
    const policyName = requireStr(opts, 'policy');
    if (policyName !== 'expert' && policyName !== 'random') throw new UsageError(`--policy must be expert or random, got '${policyName}'`);
    const seed = int(opts, 'seed', 0);
    const n = int(opts, 'episodes', 1);
    if (n < 1) throw new UsageError(`--episodes must be at least 1, got ${n}`);
    const [h, w] = imageSize(str(opts, 'image-size'), [128, 160]);
    const gifPath = str(opts, 'gif');
    let ok = 0;
    let okSteps = 0;
    for (let i = 0; i < n; i++) {
      const s = seed + i;
      const env = await SimEnv.create({ task, seed: s, imageHeight: gifPath && i === 0 ? h : 16, imageWidth: gifPath && i === 0 ? w : 20 });
      const p = makeScriptedPolicy(policyName, task, s, { noise: num(opts, 'noise', 0), explore: num(opts, 'explore', 0) });
      let r = env.reset(s);
      p.reset(env);
      const frame = (res: typeof r): GifFrame => ({
        data: res.observation.image,
        width: res.observation.width,
        height: res.observation.height,
        lines: [
          `${task} ${policyName} seed ${s}`,
          `step ${res.step} · stage ${res.stagesDone}/${res.stageCount}${res.success ? ' success' : res.done ? ' failure' : ''}`,
        ],
        delayMs: res.done ? 1500 : 333,
      });
      const frames = [frame(r)];
      while (!r.done) {
        r = env.step(p.act(r));
        frames.push(frame(r));
      }
      ok += r.success ? 1 : 0;
      okSteps += r.success ? r.step : 0;
      if (n <= 10) console.log(`seed ${s}: ${r.success ? 'success' : 'failure'}, stage ${r.stagesDone}/${r.stageCount}, ${r.step} steps`);
      if (gifPath && i === 0) writeGif(gifPath, frames);
      env.close();
    }
    // The mean length of the successful episodes: an expert that wastes steps leaves a policy trained on it less of the time limit.
    const meanSteps = ok ? `, ${(okSteps / ok).toFixed(1)} steps on average` : '';
    console.log(`${task} ${policyName}: ${ok}/${n} successful (${((100 * ok) / n).toFixed(1)} %)${meanSteps}`);
  },
};

export const simCollectCommand: Command = {
  name: 'sim collect',
  summary: 'collect expert episodes as RT-1 (fractal20220817_data) RLDS shards',
  options: {
    task: { type: 'string', arg: 'T[,T2]', description: 'task(s), episodes alternate between them', default: 'pick-can' },
    episodes: { type: 'string', arg: 'N', description: 'episodes to collect', default: '100' },
    out: { type: 'string', arg: 'DIR', description: 'output directory (shards, features.json, dataset_info.json)' },
    seed: { type: 'string', arg: 'S', description: 'episode i uses seed S+i', default: '0' },
    noise: { type: 'string', arg: 'X', description: 'Gaussian action noise of the expert (m per step)', default: '0.005' },
    explore: { type: 'string', arg: 'P', description: 'probability per step of a random exploration segment', default: '0.05' },
    'image-size': { type: 'string', arg: 'HxW', description: 'camera resolution (RT-1 native 256x320)', default: '256x320' },
    'episodes-per-shard': { type: 'string', arg: 'N', description: 'episodes per TFRecord shard', default: '50' },
    shadows: SHADOWS_OPTION,
  },
  async run(opts) {
    const { collect } = await import('../sim/collect.js');
    const tasks = await taskList(requireStr(opts, 'task'));
    const [h, w] = imageSize(str(opts, 'image-size'), [256, 320]);
    const atLeast = (key: string, v: number, min: number) => {
      if (v < min) throw new UsageError(`--${key} must be at least ${min}, got ${v}`);
      return v;
    };
    const explore = num(opts, 'explore', 0.05);
    if (explore > 1) throw new UsageError(`--explore is a probability per step (0..1), got ${explore}`);
    await untilInterrupted(async (signal) => {
      const r = await collect({
        tasks,
        episodes: atLeast('episodes', int(opts, 'episodes', 100), 1),
        outDir: requireStr(opts, 'out'),
        seed: int(opts, 'seed', 0),
        noise: atLeast('noise', num(opts, 'noise', 0.005), 0),
        explore: atLeast('explore', explore, 0),
        imageHeight: h,
        imageWidth: w,
        shadows: bool(opts, 'shadows'),
        episodesPerShard: atLeast('episodes-per-shard', int(opts, 'episodes-per-shard', 50), 1),
        signal,
      });
      for (const [t, s] of Object.entries(r.perTask)) console.log(`${t}: ${s.successes}/${s.episodes} successful`);
      console.log(
        `${r.interrupted ? 'interrupted: ' : ''}wrote ${r.episodes} episodes in ${r.shards.length} shard(s) to ${requireStr(opts, 'out')} (read with --data rt1 --data-dir ${requireStr(opts, 'out')})`,
      );
    });
  },
};

export const simDaggerCommand: Command = {
  name: 'sim dagger',
  summary: 'collect DAgger episodes: a planner policy drives the robot, the scripted expert labels every step with its move',
  options: {
    checkpoint: {
      type: 'string',
      arg: 'RUN',
      description: `the model directory whose policy drives (default: the shipped ${SHIPPED_MODEL})`,
    },
    policy: {
      type: 'string',
      arg: 'PRESET',
      description:
        "the planner preset that drives; one that plans towards goal pictures (e.g. wm) plans towards the expert replay's storyboard, as in eval",
      default: 'wm-policy',
    },
    task: { type: 'string', arg: 'T[,T2]', description: 'task(s), episodes alternate between them', default: 'pick-can' },
    episodes: { type: 'string', arg: 'N', description: 'episodes to collect', default: '100' },
    out: { type: 'string', arg: 'DIR', description: 'output directory (shards, features.json, dataset_info.json)' },
    seed: { type: 'string', arg: 'S', description: 'episode i uses seed S+i', default: '0' },
    beta: {
      type: 'string',
      arg: 'P',
      description: "share of steps on which the expert's move is executed instead of the policy's (0: the policy alone)",
      default: '0.3',
    },
    'image-size': { type: 'string', arg: 'HxW', description: 'camera resolution', default: '64x80' },
    'episodes-per-shard': { type: 'string', arg: 'N', description: 'episodes per TFRecord shard', default: '50' },
    shadows: SHADOWS_OPTION,
    backend: BACKEND_OPTION,
  },
  details:
    "The recorded actions are the expert's labels, whatever the episode's outcome, so train on the directory with `model train-policy --relabelled DIR` (kept even with --successful-only). Runs as `sim collect` does: complete shards are kept on an interrupt.",
  async run(opts) {
    const tasks = await taskList(requireStr(opts, 'task'));
    const out = requireStr(opts, 'out');
    const [h, w] = imageSize(str(opts, 'image-size'), [64, 80]);
    const beta = num(opts, 'beta', 0.3);
    if (!(beta >= 0 && beta <= 1)) throw new UsageError(`--beta is a share of steps (0..1), got ${beta}`);
    const episodes = int(opts, 'episodes', 100);
    const perShard = int(opts, 'episodes-per-shard', 50);
    if (episodes < 1 || perShard < 1) throw new UsageError('--episodes and --episodes-per-shard must be >= 1');
    const { loadEpisodePlanning } = await import('../planner/episode-planning.js');
    const { plannerPolicy } = await import('../planner/policy-name.js');
    const policy = plannerPolicy(requireStr(opts, 'policy'));
    if (policy.kind !== 'world-model')
      throw new UsageError(`--policy ${str(opts, 'policy')}: DAgger needs a world-model preset, not the simulator oracle`);
    const checkpoint = str(opts, 'checkpoint') ?? shippedModel();
    // Lockstep: every plan waits for its iteration cap, so a seed gives the same episode however loaded the machine is.
    const planning = await loadEpisodePlanning(policy, checkpoint, { backend: str(opts, 'backend'), lockstep: true });
    const { collectDagger } = await import('../eval/dagger.js');
    await untilInterrupted(async (signal) => {
      const r = await collectDagger({
        planning,
        beta,
        tasks,
        episodes,
        outDir: out,
        seed: int(opts, 'seed', 0),
        imageHeight: h,
        imageWidth: w,
        shadows: bool(opts, 'shadows'),
        episodesPerShard: perShard,
        signal,
      });
      for (const [t, s] of Object.entries(r.perTask))
        console.log(`${t}: ${s.successes}/${s.episodes} successful (${Math.round(100 * (1 - beta))} % of steps the policy's)`);
      if (r.skipped.length) console.log(`skipped, the expert's replay that makes the goal pictures failed: ${r.skipped.join(', ')}`);
      console.log(
        `${r.interrupted ? 'interrupted: ' : ''}wrote ${r.episodes} expert-labelled episodes in ${r.shards.length} shard(s) to ${out} (train with --relabelled ${out})`,
      );
    }).finally(() => planning.dispose());
  },
};
