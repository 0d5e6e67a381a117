/**
 * One plan's candidates scored on several threads (src/planner/parallel-scorer.ts): the split
 * gives the costs of the whole batch, a seeded plan chooses the same actions on 2 threads as on 1,
 * and a scoring worker that dies or hangs is a planning error (the safe plan), never a hang.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Worker } from 'node:worker_threads';
import { firstValueFrom, of } from 'rxjs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/backends.js';
import { toTf } from '../../src/model/params.js';
import { loadInferenceWeights } from '../../src/train/run-files.js';
import { modelCost } from '../../src/planner/cost.js';
import { ScorePool, splitModelCost } from '../../src/planner/parallel-scorer.js';
import { splitShares } from '../../src/util/shares.js';
import { loadPlannerPreset } from '../../src/planner/presets.js';
import { loadWorldModelPlanning, WorldModelPlanning } from '../../src/planner/world-model-planner.js';
import type { Goal, Observation } from '../../src/core/types.js';
import { Rng } from '../../src/util/rng.js';
import { ensureDist } from '../helpers/dist.js';

const RUN = 'models/tiny-sim';

function image(seed: number, stamp: number): Observation {
  const h = 64;
  const w = 80;
  return {
    image: Uint8Array.from({ length: h * w * 3 }, (_, i) => (i * 7 + seed * 31 + ((i / 240) | 0) * 3) % 251),
    height: h,
    width: w,
    stamp,
  };
}

const obs = image(1, 10);
const goal: Goal = { images: [image(2, -1)], instruction: 'open the drawer' };

function candidates(n: number, horizon: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * horizon * 7 }, () => rng.uniform(-1, 1));
}

/** A world model planning on this thread only, with the preset `name`. */
function localPlanning(name: string, seed: number, pool?: ScorePool): WorldModelPlanning {
  const w = loadInferenceWeights(RUN);
  return new WorldModelPlanning(
    toTf(w.tensors),
    w.cfg,
    w.manifest!.actionStats,
    w.manifest!.contextFrames,
    loadPlannerPreset(name),
    { seed, lockstep: true },
    pool,
  );
}

const workerData = (name: string) => {
  const p = loadPlannerPreset(name);
  return { checkpoint: RUN, flowSteps: p.rollout.flowSteps, integrator: p.rollout.integrator, representation: p.cost.representation > 0 };
};

/** A stand-in scoring worker: ready at once, then `onScore` runs on every score request. */
function fakeWorker(onScore: string): Worker {
  const code = `const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => { if (m.type === 'score') { ${onScore} } });
parentPort.postMessage({ type: 'ready' });`;
  return new Worker(code, { eval: true });
}

beforeAll(async () => {
  ensureDist();
  await initBackend();
}, 180_000);

describe('splitShares', () => {
  it('covers the batch with contiguous shares, the larger first, never an empty one', () => {
    expect(splitShares(8, 2)).toEqual([
      { offset: 0, count: 4 },
      { offset: 4, count: 4 },
    ]);
    expect(splitShares(7, 3)).toEqual([
      { offset: 0, count: 3 },
      { offset: 3, count: 2 },
      { offset: 5, count: 2 },
    ]);
    expect(splitShares(2, 4)).toEqual([
      { offset: 0, count: 1 },
      { offset: 1, count: 1 },
    ]);
    expect(splitShares(5, 1)).toEqual([{ offset: 0, count: 5 }]);
  });
});

describe('a batch split over scoring workers', () => {
  let planning: WorldModelPlanning;
  let pool: ScorePool;

  beforeAll(async () => {
    planning = localPlanning('wm-cem-fast', 0);
    pool = await ScorePool.start({ workers: 2, data: workerData('wm-cem-fast') });
  }, 180_000);
  afterAll(() => {
    planning?.dispose();
    pool?.dispose();
  });

  it("encodes a plan's context once, when it first imagines, and imagines each row of a share from the noise of its row in the whole batch", () => {
    const c = candidates(6, 2, 1);
    const net = planning.model.net;
    // A plan encodes its context only when it first imagines: a plan that never does runs no model.
    const encodes = vi.spyOn(net, 'setContext');
    planning.model.rollout(obs, goal, 2, new Rng(4)).dispose();
    expect(encodes).not.toHaveBeenCalled();
    const r = planning.model.rollout(obs, goal, 2, new Rng(4));
    r.predict(c, 1).frames.dispose();
    r.predict(c, 1).frames.dispose();
    r.dispose();
    expect(encodes).toHaveBeenCalledTimes(1);
    encodes.mockRestore();
    const whole = net.imagineFrames(c, 6, 2, 77);
    const tail = net.imagineFrames(c.subarray(4 * 14), 2, 2, 77, { offset: 4, total: 6 });
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(whole.slice([4], [2]), tail))).dataSync()[0]!);
    tf.dispose([whole, tail]);
    expect(diff).toBeLessThan(1e-5);
  });

  it('gives the costs of scoring the whole batch on one thread, in the batch order', async () => {
    const preset = planning.preset;
    const n = 9;
    const c = candidates(n, preset.optimizer.horizon, 2);
    const single = await modelCost(planning.model, preset, 7)(obs, goal, new Rng(5));
    const split = await splitModelCost(planning.model, pool, preset, 7)(obs, goal, new Rng(5));
    try {
      const a = await single.cost(c, n);
      const b = await split.cost(c, n);
      expect(b.length).toBe(n);
      expect(new Set(a).size).toBeGreaterThan(1);
      for (let i = 0; i < n; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
    } finally {
      single.dispose();
      split.dispose();
    }
  }, 120_000);
});

describe('a seeded plan on 2 threads', () => {
  const planSequences = async (planWorkers: number, rollout?: { flowSteps: number; actionGuidance: number }) => {
    const planning = await loadWorldModelPlanning('wm-cem-fast', RUN, { seed: 3, lockstep: true, planWorkers, rollout });
    try {
      expect(planning.planWorkers).toBe(planWorkers);
      const seqs: number[][] = [];
      for (let i = 0; i < 3; i++) seqs.push(Array.from((await planning.plan({ ...obs, stamp: i }, goal)).sequence!));
      return seqs;
    } finally {
      planning.dispose();
    }
  };

  it('chooses the same actions as on 1', async () => {
    expect(await planSequences(2)).toEqual(await planSequences(1));
  }, 180_000);

  it('chooses the same actions as on 1 with action guidance, which the workers imagine with too', async () => {
    const guided = { flowSteps: 1, actionGuidance: 0.5 };
    const one = await planSequences(1, guided);
    expect(await planSequences(2, guided)).toEqual(one);
    // Guidance changes what is imagined, so the scores and, here, the chosen actions.
    expect(one).not.toEqual(await planSequences(1, { flowSteps: 1, actionGuidance: 0 }));
  }, 180_000);
});

describe('a scoring worker that fails', () => {
  const data = workerData('wm-cem-fast');

  it('dies mid-plan: the plan is a planning error, answered with the safe plan; later plans go on without it', async () => {
    const pool = await ScorePool.start({ workers: 1, data, spawn: () => fakeWorker('process.exit(3);') });
    const planning = localPlanning('wm-cem-fast', 0, pool);
    try {
      const plan = await firstValueFrom(planning.planner()(of(obs), of(goal)));
      expect(plan.safe).toBe(true);
      expect(plan.reason).toMatch(/planning error: scoring worker 0 exited \(code 3\)/);
      expect(pool.size).toBe(0);
      expect(planning.planWorkers).toBe(1);
      const next = await planning.plan({ ...obs, stamp: 11 }, goal);
      expect(next.safe).toBe(false);
    } finally {
      planning.dispose();
    }
  }, 120_000);

  it('is killed while scoring: the request fails instead of waiting', async () => {
    let worker!: Worker;
    const pool = await ScorePool.start({ workers: 1, data, spawn: () => (worker = fakeWorker('/* never answers */')) });
    const planning = localPlanning('wm-cem-fast', 0);
    const split = await splitModelCost(planning.model, pool, planning.preset, 7)(obs, goal, new Rng(1));
    try {
      const pending = split.cost(candidates(4, 2, 3), 4);
      await worker.terminate();
      await expect(pending).rejects.toThrow(/scoring worker 0 exited/);
    } finally {
      split.dispose();
      planning.dispose();
      pool.dispose();
    }
  }, 120_000);

  it('hangs: it is stopped after the score timeout and the request fails', async () => {
    const pool = await ScorePool.start({ workers: 1, data, spawn: () => fakeWorker('while (true) {}'), scoreTimeoutMs: 300 });
    const planning = localPlanning('wm-cem-fast', 0);
    const split = await splitModelCost(planning.model, pool, planning.preset, 7)(obs, goal, new Rng(1));
    try {
      await expect(split.cost(candidates(4, 2, 3), 4)).rejects.toThrow(/scoring worker 0 did not answer within 300 ms/);
      expect(pool.size).toBe(0);
    } finally {
      split.dispose();
      planning.dispose();
      pool.dispose();
    }
  }, 120_000);

  it('fails to load: starting the pool fails and stops every worker', async () => {
    await expect(ScorePool.start({ workers: 1, data: { ...data, checkpoint: 'models/no-such-run' } })).rejects.toThrow(
      /scoring worker 0: .*no-such-run/,
    );
  }, 120_000);
});
