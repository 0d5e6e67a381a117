/**
 * Simulator benchmark: raw physics steps/s, rendered frames/s at 256x320 and 64x80, collected
 * episodes/min, and the scripted experts' success over seeded episodes (100 per task; 10 with --quick).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import type { BenchTable } from './table.js';
import { collect } from '../sim/collect.js';
import { SimEnv } from '../sim/env.js';
import { makeScriptedPolicy } from '../sim/expert.js';
import { loadScene } from '../sim/mujoco.js';
import { listTasks } from '../sim/tasks.js';

export async function expertSuccess(
  task: string,
  episodes: number,
  policy: 'expert' | 'random' = 'expert',
  opts: { noise?: number; explore?: number } = {},
): Promise<{ successes: number; meanSteps: number }> {
  let successes = 0;
  let steps = 0;
  for (let seed = 0; seed < episodes; seed++) {
    const env = await SimEnv.create({ task, seed, imageHeight: 8, imageWidth: 10 });
    const p = makeScriptedPolicy(policy, task, seed, opts);
    let r = env.reset(seed);
    p.reset(env);
    while (!r.done) r = env.step(p.act(r));
    successes += r.success ? 1 : 0;
    steps += r.step;
    env.close();
  }
  return { successes, meanSteps: steps / episodes };
}

export async function benchSim(opts: BenchOptions): Promise<BenchTable[]> {
  const perf: BenchTable = { title: 'Simulator speed', columns: ['measure', 'rate', 'unit'], rows: [] };
  const { mj, model } = await loadScene('tabletop');
  const data = new mj.MjData(model);
  const n = opts.quick ? 2000 : 20000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) mj.mj_step(model, data);
  perf.rows.push(['physics steps (2 ms timestep, full tabletop scene)', n / ((performance.now() - t0) / 1000), 'steps/s']);
  data.delete();
  const env = await SimEnv.create({ task: 'drawer-place', seed: 0 });
  for (const [h, w] of [
    [256, 320],
    [64, 80],
  ] as const) {
    const reps = opts.quick ? 3 : 10;
    t0 = performance.now();
    for (let i = 0; i < reps; i++) env.render(h, w);
    perf.rows.push([`rendered frames at ${h}x${w}`, reps / ((performance.now() - t0) / 1000), 'frames/s']);
  }
  env.close();
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-bench-'));
  const episodes = opts.quick ? 2 : 12;
  t0 = performance.now();
  // Noisy experts, as `sim collect` defaults: failed episodes run to the time limit, so steps/s is the steadier figure.
  const c = await collect({
    tasks: ['pick-can', 'drawer-open'],
    episodes,
    outDir: dir,
    seed: 0,
    noise: 0.005,
    explore: 0.05,
    imageHeight: 64,
    imageWidth: 80,
  });
  const sec = (performance.now() - t0) / 1000;
  perf.rows.push([
    `collected episodes at 64x80 (pick-can, drawer-open, noise 0.005, explore 0.05: ${c.successes}/${episodes} succeeded; render + JPEG + RLDS)`,
    (episodes * 60) / sec,
    'episodes/min',
  ]);
  perf.rows.push(['collected steps at 64x80 (same run)', c.steps / sec, 'steps/s']);
  rmSync(dir, { recursive: true, force: true });

  const count = opts.quick ? 10 : 100;
  const few = Math.min(count, 20);
  const experts: BenchTable = {
    title: `Scripted expert and random policy success (${count} seeded episodes per task, seeds 0-${count - 1}; noisy expert and random: seeds 0-${few - 1})`,
    columns: ['task', 'expert success', 'expert mean steps', 'noisy expert success (noise 0.005, explore 0.05)', 'random success'],
    rows: [],
  };
  for (const t of listTasks()) {
    const e = await expertSuccess(t.name, count);
    const n = await expertSuccess(t.name, few, 'expert', { noise: 0.005, explore: 0.05 });
    const r = await expertSuccess(t.name, few, 'random');
    experts.rows.push([
      t.name,
      `${e.successes}/${count} (${((100 * e.successes) / count).toFixed(0)} %)`,
      e.meanSteps,
      `${n.successes}/${few}`,
      `${r.successes}/${few}`,
    ]);
  }
  return [perf, experts];
}
