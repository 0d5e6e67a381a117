import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { collect } from '../../src/sim/collect.js';

const quiet = runCli;

describe('end to end: sim collect -> finetune -> plan', () => {
  it('trains a tiny run on simulator data and plans a closed-loop episode with it, writing a GIF', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-e2e-'));
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
    const ft = await quiet([
      'finetune',
      '--data',
      'rt1',
      '--data-dir',
      join(dir, 'data'),
      '--out',
      join(dir, 'run'),
      '--steps',
      '4',
      '--batch-size',
      '2',
      '--image-size',
      '16x20',
      '--val-every',
      '0',
      '--checkpoint-every',
      '4',
      '--val-fraction',
      '0',
      '--backend',
      'wasm',
    ]);
    expect(ft.code).toBe(0);
    // A small, fast preset so the episode (30 steps) runs in seconds.
    const preset = join(dir, 'fast.json');
    writeFileSync(
      preset,
      JSON.stringify({
        name: 'test-fast',
        optimizer: {
          kind: 'cem',
          horizon: 2,
          candidates: 4,
          iterations: 1,
          elites: 2,
          temperature: 0.1,
          initStd: 0.5,
          minStd: 0.05,
          proposalFraction: 0.25,
          warmStartPad: 'repeat',
        },
        budgetMs: 2000,
        graceMs: 2000,
        rollout: { flowSteps: 1, integrator: 'euler' },
        cost: { representation: 1, pixel: 1, actionMagnitude: 0.01, terminal: 0.5 },
        executeSteps: 1,
      }),
    );
    const gif = join(dir, 'plan.gif');
    const r = await quiet([
      'plan',
      '--checkpoint',
      join(dir, 'run'),
      '--task',
      'drawer-close',
      '--seed',
      '0',
      '--policy',
      preset,
      '--gif',
      gif,
      '--backend',
      'wasm',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/(success|failure): stage \d\/1 in \d+ steps; planning latency p50 \d+ ms, p95 \d+ ms; safe actions 0/);
    expect(existsSync(gif)).toBe(true);
  });
});
