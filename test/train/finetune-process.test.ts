/**
 * `selfflow-wm finetune --workers 2` as its own process (bin/selfflow-wm.js on the compiled code),
 * stopped by SIGTERM the way a supervisor stops it: it finishes the step, saves a checkpoint and
 * exits, worker threads and all.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestCheckpoint } from '../../src/train/run-files.js';
import { ensureDist, ROOT } from '../helpers/dist.js';
import { sharedFixture } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sfwm-finetune-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => ensureDist(), 120_000);

const backend = process.env.SELFFLOW_TEST_BACKEND ?? 'wasm';

describe('finetune --workers 2 as a process', () => {
  it('SIGTERM finishes the step, saves a checkpoint and exits with its workers', async () => {
    const out = join(dir, 'run');
    const args = [
      'finetune',
      '--data',
      'rt1',
      '--data-dir',
      sharedFixture('rt1-fractal-sample'),
      '--out',
      out,
      '--batch-size',
      '2',
      '--image-size',
      '16x20',
    ];
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'selfflow-wm.js'),
        ...args,
        '--steps',
        '1000',
        '--checkpoint-every',
        '1000',
        '--val-every',
        '0',
        '--workers',
        '2',
        '--backend',
        backend,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const metrics = join(out, 'metrics.jsonl');
    // Signal once a step has been taken by the workers.
    const deadline = Date.now() + 90_000;
    while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').trim()) && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 200));
    expect(stderr).toContain('data-parallel: 2 worker threads share each batch');
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 60 s after SIGTERM'), 60_000))]);
    if (code !== 0) child.kill('SIGKILL');
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('terminated: finishing this step, saving a checkpoint');
    const step = Number(/interrupted at step (\d+)/.exec(stdout)?.[1]);
    expect(step).toBeGreaterThanOrEqual(1);
    expect(step).toBeLessThan(1000);
    expect(latestCheckpoint(out)!.step).toBe(step);
  }, 180_000);
});
