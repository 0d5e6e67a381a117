import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { sharedFixture } from '../helpers/fixtures.js';

const SHARD = 'fractal20220817_data-train.tfrecord-00000-of-00001';

/** The rt1 fixture with one byte of record 1's data flipped; returns the directory and record 1's offset. */
function corruptRt1(): { dir: string; offset: number } {
  const b = new Uint8Array(readFileSync(sharedFixture(`rt1-fractal-sample/${SHARD}`)));
  const offset = 16 + Number(new DataView(b.buffer).getBigUint64(0, true));
  b[offset + 12 + 500]! ^= 0x55;
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-cli-'));
  writeFileSync(join(dir, SHARD), b);
  return { dir, offset };
}

describe('selfflow-wm data inspect / data stats', () => {
  it('inspect --json prints one object with shards, episodes, steps, corrupt_skipped, features and instructions', async () => {
    const r = await runCli(['data', 'inspect', '--data', 'rt1', '--data-dir', sharedFixture('rt1-fractal-sample'), '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({
      shards: 1,
      episodes: 3,
      steps: 17,
      corrupt_skipped: 0,
      step_histogram: { '5': 2, '7': 1 },
      unknown_features: {},
    });
    expect(j.features['steps/observation/natural_language_embedding']).toMatchObject({ dtype: 'float32', shape: [512] });
    expect(j.features['steps/action/terminate_episode']).toMatchObject({ dtype: 'int32', shape: [3] });
    expect(j.features['steps/observation/image']).toMatchObject({ dtype: 'image', shape: [256, 320, 3] });
    expect(j.instructions).toEqual({ 'pick coke can': 1, 'move near': 1, 'open top drawer': 1 });
  });

  it('inspect lists features the card does not describe (bridge data read with a card lacking image_3)', async () => {
    const card = JSON.parse(readFileSync(new URL('../../datasets/bridge.json', import.meta.url), 'utf8'));
    delete card.features['steps/observation/image_3'];
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-card-'));
    writeFileSync(join(dir, 'bridge3.json'), JSON.stringify(card));
    const r = await runCli(['data', 'inspect', '--data', join(dir, 'bridge3.json'), '--data-dir', sharedFixture('rlds-bridge-octo')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('steps/observation/image_3 in 25/25 episodes');
  });

  it('a CRC mismatch stops with shard, record and byte offset; --skip-corrupt skips, counts and reports it', async () => {
    const { dir, offset } = corruptRt1();
    const bad = await runCli(['data', 'inspect', '--data', 'rt1', '--data-dir', dir, '--json']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain(
      `${join(dir, SHARD)}: record 1 at byte ${offset}: data CRC mismatch (use --skip-corrupt to skip such records)`,
    );
    const ok = await runCli(['data', 'inspect', '--data', 'rt1', '--data-dir', dir, '--json', '--skip-corrupt']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      episodes: 2,
      steps: 12,
      corrupt_skipped: 1,
      instructions: { 'pick coke can': 1, 'open top drawer': 1 },
    });
    expect(ok.err).toContain('skipped 1 corrupt record(s)');
    const stats = await runCli(['data', 'stats', '--data', 'rt1', '--data-dir', dir]);
    expect(stats.code).not.toBe(0);
    expect(stats.err).toContain('record 1 at byte');
  });

  it('stats --out writes per-dimension mean, std, min, max, q01, q99 atomically', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sfwm-stats-')), 'stats.json');
    const r = await runCli(['data', 'stats', '--data', 'rt1', '--data-dir', sharedFixture('rt1-fractal-sample'), '--out', out]);
    expect(r.code).toBe(0);
    const s = JSON.parse(readFileSync(out, 'utf8'));
    expect(s.names).toHaveLength(7);
    expect(s.count).toBe(17);
    for (const k of ['mean', 'std', 'min', 'max', 'q01', 'q99']) expect(s[k]).toHaveLength(7);
    for (let i = 0; i < 7; i++) expect(s.min[i] <= s.q01[i] && s.q01[i] <= s.q99[i] && s.q99[i] <= s.max[i]).toBe(true);
  });

  it('an unknown card name or missing data directory is a clear error', async () => {
    const a = await runCli(['data', 'inspect', '--data', 'nosuch', '--data-dir', sharedFixture('rt1-fractal-sample')]);
    expect(a.err).toMatch(/unknown dataset 'nosuch': no card .*datasets\/nosuch\.json/);
    const b = await runCli(['data', 'inspect', '--data', 'rt1', '--data-dir', '/nonexistent/dir']);
    expect(b.err).toContain('/nonexistent/dir: data directory not found');
  });
});
