/**
 * Planner benchmark (tiny config, default preset geometry): replanning latency p50/p95 through
 * the full world-model planner, with the shipped model by plan workers (threads scoring one plan's candidates), imagined candidate-frames per second, the speed-up of the
 * context key/value cache over re-encoding the context for every candidate and flow step, and
 * achieved GFLOP/s against the backend's matmul peak.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { shippedModel } from '../util/package-root.js';
import { initBackend } from '../backend/backends.js';
import type { BenchOptions } from './options.js';
import { timeMs, type BenchTable } from './table.js';
import { percentile } from '../util/stats.js';
import { contextCache, disposeContext, imagine } from '../flow/imagine.js';
import { integrate } from '../flow/sampler.js';
import { worldModelConfig } from '../core/model-config.js';
import { worldModelForwardFlops } from '../model/flops.js';
import { matmulGflops } from './matmul.js';
import { toTf, worldModelInit } from '../model/params.js';
import { patchGrid, worldModelForward } from '../model/world-model.js';
import type { ActionStats } from '../core/action-stats.js';
import type { OptimizerSettings } from '../planner/optimizer.js';
import { DEFAULT_PRESET } from '../planner/policy-name.js';
import { loadPlannerPreset } from '../planner/presets.js';
import { WorldModelPlanning } from '../planner/world-model-planner.js';

export async function benchPlanner(opts: BenchOptions): Promise<BenchTable[]> {
  await initBackend(opts.backends?.[0] ?? 'wasm');
  const backend = tf.getBackend();
  const preset = loadPlannerPreset('wm-cem-fast');
  const cfg = worldModelConfig('tiny', { maxFrames: 4 });
  const params = toTf(worldModelInit(cfg, 0));
  const names = [
    'world_vector.x',
    'world_vector.y',
    'world_vector.z',
    'rotation_delta.roll',
    'rotation_delta.pitch',
    'rotation_delta.yaw',
    'gripper_closedness_action',
  ];
  const stats: ActionStats = {
    names,
    count: 1,
    mean: names.map(() => 0),
    std: names.map(() => 1),
    min: names.map(() => -1),
    max: names.map(() => 1),
    q01: names.map(() => -0.05),
    q99: names.map(() => 0.05),
  };
  const planning = new WorldModelPlanning(params, cfg, stats, 2, preset, { seed: 0 });
  const img = () => ({ image: Uint8Array.from({ length: 64 * 80 * 3 }, (_, i) => (i * 7) % 255), height: 64, width: 80, stamp: 0 });
  const goal = { images: [img()] };
  const reps = opts.quick ? 3 : 12;
  const lat: number[] = [];
  const iters: number[] = [];
  for (let i = 0; i < reps; i++) {
    const p = await planning.plan({ ...img(), stamp: i }, goal);
    lat.push(p.latencyMs);
    iters.push(p.iterations);
  }
  lat.sort((a, b) => a - b);
  const h = preset.optimizer.horizon;
  const n = preset.optimizer.candidates;
  const k = preset.rollout.flowSteps;
  const peak = await matmulGflops(512, 3);
  const latency: BenchTable = {
    title: `Replanning latency, preset wm-cem-fast (tiny config 32x40 patch 4, ${n} candidates x horizon ${h}, ${k} ${preset.rollout.integrator} flow steps, budget ${preset.budgetMs} ms, ${backend})`,
    columns: ['p50 ms', 'p95 ms', 'mean iterations within budget'],
    rows: [[percentile(lat, 50), percentile(lat, 95), iters.reduce((a, b) => a + b, 0) / iters.length]],
  };
  // Imagination throughput with and without the context cache.
  const frames = tf.randomUniform([1, 2, cfg.imageHeight, cfg.imageWidth, 3], -1, 1) as tf.Tensor5D;
  const acts = tf.randomUniform([n, h, cfg.actionDim], -1, 1) as tf.Tensor3D;
  const cached = await timeMs(() => {
    const ctx = contextCache(params, cfg, frames, tf.zeros([1, 1, cfg.actionDim]) as tf.Tensor3D);
    const out = imagine(params, cfg, ctx, acts, {}, { steps: k, integrator: preset.rollout.integrator, seed: 1 });
    out.frames.dataSync();
    tf.dispose(out.frames);
    disposeContext(ctx);
  }, reps);
  const uncached = await timeMs(() => {
    const out = tf.tidy(() =>
      integrate(
        (x, t) => {
          const all = tf.concat([tf.tile(frames, [n, 1, 1, 1, 1]), x], 1) as tf.Tensor5D;
          const frameT = tf.concat([tf.zeros([n, 2]), tf.fill([n, h], t)], 1);
          const actions = tf.concat([tf.zeros([n, 1, cfg.actionDim]), acts], 1) as tf.Tensor3D;
          return worldModelForward(params, cfg, {
            frames: all,
            frameT,
            actions,
            actionT: tf.zeros([n, h + 1]) as tf.Tensor2D,
          }).frameVelocity.slice([0, 2, 0, 0, 0], [n, h, -1, -1, -1]);
        },
        tf.randomNormal([n, h, cfg.imageHeight, cfg.imageWidth, 3]),
        k,
        preset.rollout.integrator,
      ),
    );
    out.dataSync();
    out.dispose();
  }, reps);
  const { n: tokens } = patchGrid(cfg);
  // FLOPs of the cached rollout: future tokens only, attending to the cached context as well.
  const flops = k * worldModelForwardFlops(cfg, n, h, 2 * tokens + 1) + worldModelForwardFlops(cfg, 1, 2);
  const throughput: BenchTable = {
    title: `Imagination throughput (${n} candidates x ${h} frames, ${k} flow steps, 2 context frames)`,
    columns: ['rollout', 'ms', 'candidate-frames/s', 'GFLOP/s', `% of matmul peak (${peak.toFixed(1)} GFLOP/s)`],
    rows: [
      [
        'with context KV cache',
        cached,
        (n * h) / (cached / 1000),
        flops / (cached / 1000) / 1e9,
        `${((100 * flops) / (cached / 1000) / 1e9 / peak).toFixed(0)} %`,
      ],
      ['re-encoding the context every step', uncached, (n * h) / (uncached / 1000), '', ''],
    ],
    notes: [`context cache speed-up: ${(uncached / cached).toFixed(2)}x`],
  };
  planning.dispose();
  tf.dispose([frames, acts]);
  // With trained weights, on the backend the commands pick (`auto` unless --backend): after the tables above, which it would switch.
  const shipped = await shippedLatency(opts);
  const proposals = await proposalComparison(opts);
  return [latency, throughput, ...(shipped ? [shipped] : []), ...(proposals ? [proposals] : [])];
}

/**
 * Replanning latency of the default preset with the shipped (or given) model, in real time (the
 * preset's budget, not lockstep), with one plan worker and with one per core: each plan's
 * candidates split over that many threads (src/planner/parallel-scorer.ts).
 */
async function shippedLatency(opts: BenchOptions): Promise<BenchTable | undefined> {
  const { loadWorldModelPlanning } = await import('../planner/world-model-planner.js');
  const { SimEnv } = await import('../sim/env.js');
  const { subgoals } = await import('../sim/goals.js');
  const run = opts.checkpoint ?? shippedModel();
  if (!existsSync(join(run, 'run.json'))) return undefined;
  const cores = availableParallelism();
  const counts = [...new Set([1, 2, cores])];
  const plans = opts.quick ? 4 : 12;
  const task = 'drawer-open';
  const env = await SimEnv.create({ task, seed: 100, imageHeight: 64, imageWidth: 80 });
  // The storyboard's first picture (above the knob), which the search plans for: a grasp picture would go to the
  // action policy under presets with policyGrasp, and time the policy instead.
  const goal = { images: [(await subgoals(task, 100, 64, 80, 'phase'))[0]!.observation] };
  const observations = Array.from({ length: plans + 1 }, (_, i) => ({ ...env.reset(100 + (i % 3)).observation, stamp: i }));
  env.close();
  let title = '';
  const rows: (string | number)[][] = [];
  for (const planWorkers of counts) {
    const planning = await loadWorldModelPlanning(DEFAULT_PRESET, run, { seed: 0, planWorkers, backend: opts.backends?.[0] });
    const p = planning.preset;
    title = `Replanning latency with the trained ${run.split('/').slice(-2).join('/')}, preset ${p.name} (${p.optimizer.candidates} candidates x horizon ${p.optimizer.horizon}, at most ${p.optimizer.iterations} iterations, budget ${p.budgetMs} ms), by plan workers (backend ${opts.backends?.[0] ?? 'auto'})`;
    // The first plan encodes the goal and warms the kernels up; it is not counted.
    await planning.plan(observations[0]!, goal);
    const lat: number[] = [];
    let iterations = 0;
    let scored = 0;
    for (let i = 1; i <= plans; i++) {
      const plan = await planning.plan(observations[i]!, goal);
      lat.push(plan.latencyMs);
      iterations += plan.iterations;
      scored += plan.candidatesEvaluated;
    }
    lat.sort((a, b) => a - b);
    const total = lat.reduce((a, b) => a + b, 0);
    rows.push([String(planning.planWorkers), percentile(lat, 50), percentile(lat, 95), iterations / plans, scored / (total / 1000)]);
    planning.dispose();
  }
  return {
    title,
    columns: ['plan workers', 'p50 ms', 'p95 ms', 'mean iterations within budget', 'candidates scored/s'],
    rows,
    notes: [
      `${cores} cores; a plan worker beyond the first is a worker thread with its own copy of the model, scoring a share of every iteration's candidates (policy-query proposals stay on the planner's thread).`,
    ],
  };
}

/**
 * With trained weights: the best cost one plan reaches (lower is better) with and without the
 * model's policy proposals, at several population sizes, on real simulator start states and
 * goals. Equal cost with fewer candidates is the speed-up proposals buy.
 */
async function proposalComparison(opts: BenchOptions): Promise<BenchTable | undefined> {
  const { loadWorldModelPlanning } = await import('../planner/world-model-planner.js');
  const { SimEnv } = await import('../sim/env.js');
  const { goalObservations } = await import('../sim/goals.js');
  const run = opts.checkpoint ?? shippedModel();
  if (!existsSync(join(run, 'run.json'))) return undefined;
  const configs = [
    { candidates: 8, proposalFraction: 0.5 },
    { candidates: 16, proposalFraction: 0.25 },
    { candidates: 16, proposalFraction: 0 },
    { candidates: 48, proposalFraction: 0 },
  ];
  const cases = opts.quick ? 2 : 6;
  const table: BenchTable = {
    title: `Policy proposals vs Gaussian samples (trained ${run.split('/').slice(-2).join('/')}, ${cases} start states of drawer-open/pick-can, 3 CEM iterations, no time limit)`,
    columns: ['candidates', 'proposal fraction', 'mean best cost', 'mean ms per plan'],
    rows: [],
  };
  for (const c of configs) {
    let cost = 0;
    let ms = 0;
    for (let i = 0; i < cases; i++) {
      const task = i % 2 ? 'pick-can' : 'drawer-open';
      const planning = await loadWorldModelPlanning('wm-cem-fast', run, { seed: i });
      const preset = planning.preset;
      preset.optimizer = { ...preset.optimizer, ...c, elites: Math.max(2, Math.round(c.candidates / 4)) };
      preset.budgetMs = 1e9;
      const env = await SimEnv.create({ task, seed: 100 + i, imageHeight: 64, imageWidth: 80 });
      const goals = await goalObservations(task, 100 + i, 64, 80);
      const r = env.reset(100 + i);
      const plan = await planning.plan(r.observation, { images: [goals[goals.length - 1]!] });
      cost += plan.cost;
      ms += plan.latencyMs;
      env.close();
      planning.dispose();
    }
    table.rows.push([String(c.candidates), String(c.proposalFraction), (cost / cases).toPrecision(4), ms / cases]);
  }
  return table;
}

/**
 * The optimiser's own cost per iteration, cost evaluation excluded (sampling, clipping, ranking,
 * refitting), at the sizes of the shipped presets and at the population sizes of sampling planners such as DINO-WM (hundreds), plus the
 * whole planning loop per plan with a near-free cost. Shows the optimiser is never the bottleneck
 * next to a world-model rollout.
 */
export async function benchOptimizer(opts: BenchOptions): Promise<BenchTable[]> {
  const { optimize } = await import('../planner/optimizer.js');
  const { createOptimizingPlanner } = await import('../planner/loop.js');
  const { presetNames } = await import('../planner/presets.js');
  const { Rng } = await import('../util/rng.js');
  const { Subject, firstValueFrom } = await import('rxjs');
  const actionDim = 7; // world_vector 3 + rotation_delta 3 + gripper: the model's RT-1 action vector
  const iterations = opts.quick ? 20 : 200;
  const reps = opts.quick ? 3 : 7;
  const cheapCost = async (c: Float32Array, n: number) => {
    const len = c.length / n;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < len; j++) s += (c[i * len + j]! - 0.3) ** 2;
      out[i] = s;
    }
    return out;
  };
  const shapes: { label: string; s: OptimizerSettings; budgetMs?: number }[] = presetNames()
    .map((n) => ({ name: n, preset: loadPlannerPreset(n) }))
    .map(({ name, preset }) => ({ label: `preset ${name}`, s: { ...preset.optimizer, actionDim }, budgetMs: preset.budgetMs }));
  for (const [kind, candidates, horizon] of [
    ['cem', 300, 5],
    ['mppi', 300, 5],
    ['cem', 1000, 16],
  ] as const) {
    const base = loadPlannerPreset('wm-cem-fast').optimizer;
    shapes.push({
      label: `large population: ${candidates} x horizon ${horizon}`,
      s: { ...base, kind, candidates, horizon, elites: Math.round(candidates / 10), actionDim },
      budgetMs: undefined,
    });
  }
  const overhead: BenchTable = {
    title: `Optimiser overhead per iteration, cost evaluation excluded (action dim ${actionDim}, best of ${reps} runs of ${iterations} iterations)`,
    columns: [
      'setting',
      'optimiser',
      'candidates x horizon',
      'proposal fraction',
      'µs per iteration',
      'µs per candidate',
      'share of the plan budget',
    ],
    rows: [],
  };
  for (const { label, s, budgetMs } of shapes) {
    const len = s.horizon * actionDim;
    const proposalBuf = new Float32Array(s.candidates * len).fill(0.1);
    const proposals = async (n: number) => proposalBuf.subarray(0, n * len);
    let perIt = Infinity;
    await timeMs(async () => {
      const r = await optimize({ ...s, iterations }, cheapCost, { rng: new Rng(1), proposals });
      perIt = Math.min(perIt, (r.elapsedMs - r.externalMs) / r.iterations);
    }, reps);
    const perPlan = perIt * s.iterations;
    overhead.rows.push([
      label,
      s.kind,
      `${s.candidates} x ${s.horizon}`,
      String(s.proposalFraction),
      perIt * 1000,
      (perIt * 1000) / s.candidates,
      budgetMs ? `${((100 * perPlan) / budgetMs).toFixed(3)} % (${s.iterations} it. in ${budgetMs} ms)` : '',
    ]);
  }
  overhead.notes = [
    'Best (minimum) per-iteration time over the runs; the cost here is a plain quadratic whose time is measured and subtracted. "share of the plan budget" = overhead of the preset\'s iteration cap / its budgetMs.',
  ];

  // The whole loop per plan: latest-pair bookkeeping, cost factory, optimiser, action mapping, RxJS plumbing.
  const fast = loadPlannerPreset('wm-cem-fast');
  const { planner } = createOptimizingPlanner({
    optimizer: { ...fast.optimizer, actionDim },
    makeCost: () => ({ cost: cheapCost, dispose() {} }),
    toAction: (v) => ({
      worldVector: [v[0]!, v[1]!, v[2]!],
      rotationDelta: [v[3]!, v[4]!, v[5]!],
      gripperClosedness: v[6]!,
      terminateEpisode: [0, 1, 0],
    }),
    budgetMs: fast.budgetMs,
    graceMs: fast.graceMs,
    seed: 0,
  });
  const observations = new Subject<{ image: Uint8Array; height: number; width: number; stamp: number }>();
  const goals = new Subject<{ images: { image: Uint8Array; height: number; width: number; stamp: number }[] }>();
  const plans = new Subject<number>();
  const sub = planner(observations, goals).subscribe((p) => plans.next(p.latencyMs));
  const image = { image: new Uint8Array(3), height: 1, width: 1 };
  goals.next({ images: [{ ...image, stamp: -1 }] });
  let stamp = 0;
  const planCount = opts.quick ? 50 : 500;
  const ms = await timeMs(async () => {
    for (let i = 0; i < planCount; i++) {
      const next = firstValueFrom(plans);
      observations.next({ ...image, stamp: stamp++ });
      await next;
    }
  }, 3);
  sub.unsubscribe();
  const loop: BenchTable = {
    title: `Planning loop per plan with a near-free cost (preset wm-cem-fast: ${fast.optimizer.candidates} candidates x horizon ${fast.optimizer.horizon} x ${fast.optimizer.iterations} iterations, action dim ${actionDim})`,
    columns: ['plans', 'ms per plan', 'plans/s'],
    rows: [[String(planCount), ms / planCount, planCount / (ms / 1000)]],
    notes: [
      'Observation in -> plan out through createOptimizingPlanner (cost factory, warm start, CEM, action mapping, deadline timer); the quadratic cost is included here.',
    ],
  };
  return [overhead, loop];
}
