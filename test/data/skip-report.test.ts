import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptRecordReport } from '../../src/data/corrupt-report.js';
import { runCli } from '../helpers/cli.js';
import { sharedFixture } from '../helpers/fixtures.js';

const SHARD = 'fractal20220817_data-train.tfrecord-00000-of-00001';

describe('skipped-record report', () => {
  it('counts each record once however often a pass repeats it, and lists them', () => {
    const r = new CorruptRecordReport(2);
    expect(r.summary()).toBe('');
    for (let epoch = 0; epoch < 3; epoch++)
      for (const i of [1, 4, 7]) r.add(`x.tfrecord: record ${i} at byte ${i * 100}: data CRC mismatch`);
    expect(r.count).toBe(3);
    expect(r.summary().split('\n')).toEqual([
      'skipped 3 corrupt record(s):',
      '  x.tfrecord: record 1 at byte 100: data CRC mismatch',
      '  x.tfrecord: record 4 at byte 400: data CRC mismatch',
      '  ... 1 more',
    ]);
  });

  it('finetune --skip-corrupt reports on stderr how many records it skipped and which', async () => {
    const b = new Uint8Array(readFileSync(sharedFixture(`rt1-fractal-sample/${SHARD}`)));
    const offset = 16 + Number(new DataView(b.buffer).getBigUint64(0, true));
    b[offset + 12 + 500]! ^= 0x55;
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-skip-'));
    writeFileSync(join(dir, SHARD), b);
    const out = join(mkdtempSync(join(tmpdir(), 'sfwm-skip-run-')), 'run');
    const r = await runCli([
      'finetune',
      '--data',
      'rt1',
      '--data-dir',
      dir,
      '--skip-corrupt',
      '--out',
      out,
      '--steps',
      '1',
      '--batch-size',
      '1',
      '--val-every',
      '0',
      '--checkpoint-every',
      '1',
      '--val-fraction',
      '0',
      '--backend',
      'cpu',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`skipped 1 corrupt record(s):\n  ${join(dir, SHARD)}: record 1 at byte ${offset}: data CRC mismatch`);
  }, 120_000);
});
