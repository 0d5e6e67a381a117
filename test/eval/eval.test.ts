import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluate, readFinished } from '../../src/eval/evaluate.js';
import { summariseTask, wilson, type EpisodeOutcome } from '../../src/eval/metrics.js';
import { buildReport, reportMarkdown } from '../../src/eval/report.js';
import { collect } from '../../src/sim/collect.js';
import { runCli } from '../helpers/cli.js';

const ep = (over: Partial<EpisodeOutcome>): EpisodeOutcome => ({
  policy: 'p',
  task: 'drawer-chain',
  seed: 0,
  success: false,
  stagesDone: 0,
  stageCount: 3,
  steps: 10,
  latenciesMs: [1],
  safeActions: 0,
  ...over,
});

describe('report arithmetic', () => {
  it('Wilson 95 % intervals match known values', () => {
    const [lo, hi] = wilson(8, 10);
    expect(lo).toBeCloseTo(0.4902, 3);
    expect(hi).toBeCloseTo(0.9433, 3);
    expect(wilson(0, 10)[0]).toBe(0);
    expect(wilson(0, 10)[1]).toBeCloseTo(0.2775, 3);
    expect(wilson(10, 10)[1]).toBe(1);
    expect(wilson(0, 0)).toEqual([0, 1]);
  });

  it('stage success and average completed stages (chain length) on fixed episodes', () => {
    const s = summariseTask('drawer-chain', [
      ep({ stagesDone: 3, success: true, seed: 2 }),
      ep({ stagesDone: 1, seed: 0 }),
      ep({ stagesDone: 2, seed: 1 }),
      ep({ stagesDone: 0, seed: 3, latenciesMs: [5, 9] }),
    ]);
    expect(s.success_rate).toBe(0.25);
    expect(s.stage_success).toEqual([0.75, 0.5, 0.25]);
    expect(s.avg_completed_stages).toBe(1.5);
    expect(s.seeds).toEqual([0, 1, 2, 3]);
    expect(s.latency_ms).toEqual({ p50: 1, p95: 9 });
  });

  it('an episode whose goal pictures could not be made counts in no figure, and the report names its seed', () => {
    const eps = [
      ep({ stagesDone: 3, success: true, seed: 0 }),
      ep({ seed: 1, steps: 0, latenciesMs: [], excluded: 'expert did not complete' }),
    ];
    const s = summariseTask('drawer-chain', eps);
    expect([s.episodes, s.successes, s.success_rate, s.seeds, s.excluded_seeds]).toEqual([1, 1, 1, [0], [1]]);
    const md = reportMarkdown(buildReport(eps, ['p'], ['drawer-chain'], 0));
    expect(md).toContain('| drawer-chain | 1/1 = 100.0 %');
    expect(md).toContain('the expert replay that makes the goal pictures failed on p drawer-chain: seed 1.');
  });

  it("the report's header says how the simulated camera delivered its pictures", () => {
    const eps = [ep({ stagesDone: 3, success: true, seed: 0 })];
    const jpeg = reportMarkdown(buildReport(eps, ['p'], ['drawer-chain'], 0, undefined, { shadows: true, cameraJpeg: 92 }));
    expect(jpeg).toContain(', rendered with shadows, camera pictures through JPEG quality 92.');
    const raw = reportMarkdown(buildReport(eps, ['p'], ['drawer-chain'], 0, undefined, { cameraJpeg: 0 }));
    expect(raw).not.toContain('JPEG');
  });
});

describe('eval', () => {
  it('resumes an interrupted evaluation without redoing finished episodes, and reproduces the numbers', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sfwm-eval-'));
    const o = {
      policies: ['expert', 'random'],
      tasks: ['pick-can', 'drawer-open'],
      episodes: { 'pick-can': 2, 'drawer-open': 2 },
      seed: 5,
      outDir: out,
      workers: 1,
      failureGifs: 0,
    };
    const full = await evaluate(o);
    // Simulate an interruption: keep 3 finished episodes and a torn line, then resume.
    const lines = readFileSync(join(out, 'episodes.jsonl'), 'utf8').trim().split('\n');
    const out2 = mkdtempSync(join(tmpdir(), 'sfwm-eval-'));
    writeFileSync(join(out2, 'episodes.jsonl'), `${lines.slice(0, 3).join('\n')}\n`);
    appendFileSync(join(out2, 'episodes.jsonl'), '{"policy":"expe');
    const resumed = await evaluate({ ...o, outDir: out2 });
    expect(readFinished(join(out2, 'episodes.jsonl'))).toHaveLength(8);
    for (const p of ['expert', 'random']) {
      for (const t of ['pick-can', 'drawer-open']) {
        const a = full.policies[p]!.tasks[t]!;
        const b = resumed.policies[p]!.tasks[t]!;
        expect([b.successes, b.stage_success, b.seeds, b.episode_length]).toEqual([
          a.successes,
          a.stage_success,
          a.seeds,
          a.episode_length,
        ]);
      }
    }
    expect(full.policies.expert!.tasks['pick-can']!.success_rate).toBe(1);
    expect(existsSync(join(out, 'report.md'))).toBe(true);
    // Resuming with other goal pictures would mix incomparable episodes: refused, naming the setting.
    await expect(evaluate({ ...o, goals: 'stage' })).rejects.toThrow(/goals "phase", not "stage"/);
    await expect(evaluate({ ...o, shadows: true })).rejects.toThrow(/shadows false, not true/);
    await expect(evaluate({ ...o, restage: true })).rejects.toThrow(/restage false, not true/);
    await expect(evaluate({ ...o, goalNoise: 0.02 })).rejects.toThrow(/goalNoise 0, not 0.02/);
    // The camera delivers its pictures through the JPEG the training episodes were stored as, unless told otherwise.
    expect(JSON.parse(readFileSync(join(out, 'settings.json'), 'utf8'))).toMatchObject({ cameraJpeg: 92 });
    await expect(evaluate({ ...o, cameraJpeg: 0 })).rejects.toThrow(/cameraJpeg 92, not 0/);
    // A directory from before the shadows and camera-jpeg options was rendered without either: it resumes as such
    // when asked for raw renders, and refuses the JPEG default rather than mix the two.
    writeFileSync(join(out, 'settings.json'), JSON.stringify({ checkpoint: null, goals: 'phase' }));
    await expect(evaluate(o)).rejects.toThrow(/cameraJpeg 0, not 92/);
    expect((await evaluate({ ...o, cameraJpeg: 0 })).policies.expert!.tasks['pick-can']!.successes).toBe(2);
  });

  it('excludes a layout where the expert replay that makes the goal pictures fails, instead of stopping the evaluation', async () => {
    // On drawer-place seed 8942 the scripted expert places no apple (found by the seeds 8937-8944 evaluation; seed 9602
    // did so until the fingers stopped locking crossed, results item 22).
    const out = mkdtempSync(join(tmpdir(), 'sfwm-eval-'));
    const r = await evaluate({
      policies: ['wm-policy'],
      tasks: ['drawer-place'],
      episodes: { 'drawer-place': 1 },
      seed: 8942,
      checkpoint: 'models/tiny-sim-explore',
      outDir: out,
      workers: 1,
      failureGifs: 1,
    });
    const t = r.policies['wm-policy']!.tasks['drawer-place']!;
    expect([t.episodes, t.excluded_seeds]).toEqual([0, [8942]]);
    expect(readFinished(join(out, 'episodes.jsonl'))[0]!.excluded).toMatch(/expert did not complete drawer-place on seed 8942/);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('failed on wm-policy drawer-place: seed 8942');
    expect(existsSync(join(out, 'failure-wm-policy-drawer-place-seed8942.gif'))).toBe(false);
  }, 120_000);

  it('smoke: two episodes of every policy kind through the CLI (expert, random, world-model planner)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-evalwm-'));
    await collect({
      tasks: ['drawer-close'],
      episodes: 2,
      outDir: join(dir, 'data'),
      seed: 0,
      noise: 0.003,
      explore: 0,
      imageHeight: 32,
      imageWidth: 40,
    });
    expect(
      (
        await runCli([
          'finetune',
          '--data',
          'rt1',
          '--data-dir',
          join(dir, 'data'),
          '--out',
          join(dir, 'run'),
          '--steps',
          '2',
          '--batch-size',
          '2',
          '--image-size',
          '16x20',
          '--val-every',
          '0',
          '--checkpoint-every',
          '2',
          '--val-fraction',
          '0',
          '--backend',
          'wasm',
        ])
      ).code,
    ).toBe(0);
    const preset = join(dir, 'tiny-preset.json');
    writeFileSync(
      preset,
      JSON.stringify({
        name: 'tiny',
        optimizer: {
          kind: 'cem',
          horizon: 1,
          candidates: 2,
          iterations: 1,
          elites: 1,
          temperature: 0.1,
          initStd: 0.5,
          minStd: 0.05,
          proposalFraction: 0,
          warmStartPad: 'repeat',
        },
        budgetMs: 5000,
        graceMs: 5000,
        rollout: { flowSteps: 1, integrator: 'euler' },
        cost: { representation: 1, pixel: 1, actionMagnitude: 0, terminal: 1 },
        executeSteps: 1,
      }),
    );
    // PRESET@RUN names its own checkpoint (how an ablation puts two models side by side); no --checkpoint needed.
    const withRun = `${preset}@${join(dir, 'run')}`;
    const r = await runCli([
      'eval',
      '--policy',
      `expert,random,${withRun},experiments/joint-query-only@${join(dir, 'run')}`,
      '--tasks',
      'drawer-close',
      '--episodes',
      '2',
      '--out',
      join(dir, 'report'),
      '--json',
      '--failure-gifs',
      '0',
      '--backend',
      'wasm',
    ]);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as {
      policies: Record<string, { tasks: Record<string, { episodes: number; ci95: number[]; stage_success: number[] }> }>;
    };
    for (const p of ['expert', 'random', withRun, `experiments/joint-query-only@${join(dir, 'run')}`]) {
      const t = report.policies[p]!.tasks['drawer-close']!;
      expect(t.episodes).toBe(2);
      expect(t.ci95).toHaveLength(2);
      expect(t.stage_success).toHaveLength(1);
    }
    expect(report.policies.expert!.tasks['drawer-close']!.stage_success[0]).toBe(1);
    // The action probe runs on the same run through the CLI: up to 3 states (fewer when the expert
    // finishes before a warm-up point) x 6 directions.
    const probe = await runCli([
      'model',
      'probe',
      '--checkpoint',
      join(dir, 'run'),
      '--policy',
      preset,
      '--tasks',
      'drawer-close',
      '--seeds',
      '1',
      '--json',
      '--backend',
      'wasm',
    ]);
    expect(probe.code, probe.err).toBe(0);
    const pr = JSON.parse(probe.out) as { states: number; trials: number; accuracy: number; accuracyByDirection: number[] };
    expect(pr.states).toBeGreaterThanOrEqual(1);
    expect(pr.states).toBeLessThanOrEqual(3);
    expect(pr.trials).toBe(pr.states * 6);
    expect(pr.accuracyByDirection).toHaveLength(6);
    expect(pr.accuracy).toBeGreaterThanOrEqual(0);
    expect(pr.accuracy).toBeLessThanOrEqual(1);
  });
});
