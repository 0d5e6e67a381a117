/**
 * `selfflow-wm finetune` on the shared 3-episode RT-1 sample, as a newcomer first tries it: the
 * default 10 % split holds out none of its episodes, so it trains without validation (with a
 * warning), writes its checkpoint, and a second invocation with more steps resumes from it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { latestCheckpoint, loadInferenceWeights } from '../../src/train/run-files.js';
import { readRunManifest } from '../../src/core/run-manifest.js';
import { runCli } from '../helpers/cli.js';
import { ensureDist } from '../helpers/dist.js';
import { sharedFixture } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sfwm-finetune-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fractal = sharedFixture('rt1-fractal-sample');
const backend = process.env.SELFFLOW_TEST_BACKEND ?? 'wasm';
const finetune = (out: string, ...extra: string[]) =>
  runCli([
    'finetune',
    '--data',
    'rt1',
    '--data-dir',
    fractal,
    '--out',
    out,
    '--batch-size',
    '2',
    '--image-size',
    '16x20',
    '--warmup',
    '1',
    '--val-every',
    '1',
    '--backend',
    backend,
    ...extra,
  ]);

const metrics = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('finetune on a dataset too small for the validation split', () => {
  it('trains without validation, writes its checkpoint, and resumes from it', async () => {
    const out = join(dir, 'fractal');
    const first = await finetune(out, '--steps', '2');
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain(`warning: ${fractal}: no held-out episode with a full window at --val-fraction 0.1`);
    expect(first.err).toContain('training without validation');
    expect(first.out).toBe(`finished at step 2 (no validation); run in ${out}`);
    expect(latestCheckpoint(out)!.step).toBe(2);
    expect(readRunManifest(out).training.validation).toEqual({ off: 'no held-out episode with a full window at --val-fraction 0.1' });

    const second = await finetune(out, '--steps', '4', '--resume');
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/resumed from .*step-0000002 at step 2/);
    expect(second.out).toBe(`finished at step 4 (no validation); run in ${out}`);
    const rows = metrics(out);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    // No validation record at all (no NaN written in its place), and no validation strip.
    for (const r of rows) {
      expect(Object.keys(r).filter((k) => k.startsWith('val_'))).toEqual([]);
      expect(Number.isFinite(r.loss)).toBe(true);
    }
    expect(existsSync(join(out, 'val'))).toBe(false);
    const weights = loadInferenceWeights(out);
    expect(weights.step).toBe(4);
    expect(weights.cfg.imageHeight).toBe(16);
    expect(weights.tensors.size).toBeGreaterThan(0);
  }, 120_000);

  it('trains with --workers 2, resumes with --workers 1, on the loss curve of a run with one worker throughout', async () => {
    // Worker threads run the compiled code.
    ensureDist();
    const out = join(dir, 'workers');
    const first = await finetune(out, '--steps', '2', '--workers', '2');
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain('data-parallel: 2 worker threads share each batch');
    expect(latestCheckpoint(out)!.step).toBe(2);
    const second = await finetune(out, '--steps', '3', '--workers', '1', '--resume');
    expect(second.code, second.err).toBe(0);
    expect(second.err).toMatch(/resumed from .*step-0000002 at step 2/);
    expect(second.err).not.toContain('data-parallel');
    expect(latestCheckpoint(out)!.step).toBe(3);
    const single = join(dir, 'one-worker');
    const reference = await finetune(single, '--steps', '3', '--workers', '1');
    expect(reference.code, reference.err).toBe(0);
    const rows = metrics(out);
    const ref = metrics(single);
    expect(rows.map((r) => r.step)).toEqual([1, 2, 3]);
    for (const [i, r] of rows.entries()) {
      expect(r.loss as number).toBeCloseTo(ref[i]!.loss as number, 4);
      expect(r.grad_norm as number).toBeCloseTo(ref[i]!.grad_norm as number, 3);
    }
  }, 180_000);

  it('--init from a run with half the picture side and half the patch resamples the patch tensors and trains on', async () => {
    const small = join(dir, 'small-patch');
    const a = await finetune(small, '--steps', '1', '--val-fraction', '0', '--patch-size', '4', '--prediction', 'residual');
    expect(a.code, a.err).toBe(0);
    const init = join(latestCheckpoint(small)!.dir, 'ema.safetensors');
    const large = join(dir, 'large-patch');
    const b = await finetune(
      large,
      '--steps',
      '1',
      '--val-fraction',
      '0',
      '--prediction',
      'residual',
      '--init',
      init,
      '--image-size',
      '32x40',
      '--patch-size',
      '8',
    );
    expect(b.code, b.err).toBe(0);
    expect(b.err).toMatch(/resampled \d patch tensors to the larger patch: x_embedder\.proj\.weight, final_layer\.linear\.weight/);
    const weights = loadInferenceWeights(large);
    expect([weights.cfg.imageHeight, weights.cfg.dit.patch_size]).toEqual([32, 8]);
  }, 60_000);

  it('--val-fraction 0 holds out nothing and says so', async () => {
    const out = join(dir, 'no-val');
    const r = await finetune(out, '--steps', '1', '--val-fraction', '0');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('warning: --val-fraction 0 holds out no episodes; training without validation');
    expect(readRunManifest(out).training.validation).toEqual({ off: '--val-fraction 0' });
    expect(latestCheckpoint(out)!.step).toBe(1);
  }, 60_000);

  it('validates on the held-out windows when the split leaves some', async () => {
    const out = join(dir, 'half');
    const r = await finetune(out, '--steps', '1', '--val-fraction', '0.5');
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain('training without validation');
    const [row] = metrics(out);
    expect(Number.isFinite(row!.val_loss)).toBe(true);
    expect(existsSync(row!.val_strip as string)).toBe(true);
    const windows = (readRunManifest(out).training.validation as { windows: number }).windows;
    expect(windows).toBeGreaterThan(0);
    // The controllability figure needs a second val window to borrow actions from; with one it is left out, not NaN.
    expect('val_delta_psnr' in row!).toBe(windows >= 2);
  }, 60_000);
});
