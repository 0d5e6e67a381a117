import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCard } from '../../src/data/card.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { CorruptRecordError, frameRecord, readTfRecords, type TfRecord } from '../../src/data/tfrecord.js';
import { UserError } from '../../src/core/errors.js';
import { recordHeader } from '../helpers/crafted.js';
import { sharedFixture } from '../helpers/fixtures.js';

const SHARD = 'fractal20220817_data-train.tfrecord-00000-of-00001';
const SHARD2 = 'fractal20220817_data-train.tfrecord-00001-of-00002';

function file(bytes: Uint8Array, name = SHARD): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-tfr-'));
  writeFileSync(join(dir, name), bytes);
  return join(dir, name);
}

async function records(path: string, opts: Parameters<typeof readTfRecords>[1] = {}): Promise<TfRecord[]> {
  const out: TfRecord[] = [];
  for await (const r of readTfRecords(path, opts)) out.push(r);
  return out;
}

describe('TFRecord length bounds', () => {
  it('a 4 GiB length field with a valid CRC in a tiny file is a corrupt record naming shard, record and offset', async () => {
    const good = frameRecord(new Uint8Array([1, 2, 3]));
    const path = file(new Uint8Array([...good, ...recordHeader(2n ** 32n), 0, 0, 0, 0]));
    const err = (await records(path).catch((e: unknown) => e)) as CorruptRecordError;
    expect(err).toBeInstanceOf(CorruptRecordError);
    expect(err.message).toBe(
      `${path}: record 1 at byte ${good.length}: record length 4294967296 exceeds the 4 bytes left in the file (the record framing is corrupt)`,
    );
    expect(err.resumable).toBe(false);
  });

  it('a record over the maximum record size is skipped whole with --skip-corrupt, and reading goes on', async () => {
    const path = file(new Uint8Array([...frameRecord(new Uint8Array(100)), ...frameRecord(new Uint8Array([7]))]));
    await expect(records(path, { maxRecordBytes: 64 })).rejects.toThrow(
      `${path}: record 0 at byte 0: record length 100 exceeds the maximum record size of 64 bytes`,
    );
    const skipped: string[] = [];
    const got = await records(path, { maxRecordBytes: 64, skipCorrupt: true, onCorrupt: (e) => skipped.push(e.message) });
    expect(got.map((r) => [r.index, r.offset, [...r.data]])).toEqual([[1, 116, [7]]]);
    expect(skipped).toHaveLength(1);
  });

  it('readEpisodes: a shard with a corrupt length is a UserError, and --skip-corrupt goes on with the next shard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-tfr-'));
    writeFileSync(join(dir, SHARD), new Uint8Array([...recordHeader(2n ** 64n - 1n), 1, 2, 3, 4]));
    writeFileSync(join(dir, SHARD2), readFileSync(sharedFixture(`rt1-fractal-sample/${SHARD}`)));
    const card = loadCard('rt1');
    const read = async (skipCorrupt: boolean, onCorrupt?: (m: string) => void) => {
      const eps = [];
      for await (const ep of readEpisodes(dir, card, { skipCorrupt, onCorrupt })) eps.push(ep);
      return eps;
    };
    const err = await read(false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain(`${join(dir, SHARD)}: record 0 at byte 0: record length 18446744073709551615 exceeds`);
    const messages: string[] = [];
    expect(await read(true, (m) => messages.push(m))).toHaveLength(3);
    expect(messages).toEqual([expect.stringMatching(/record 0 at byte 0: .*\(rest of shard skipped\)$/)]);
  });

  it('a zero-length shard is refused naming it, and skipped with --skip-corrupt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-tfr-'));
    writeFileSync(join(dir, SHARD), new Uint8Array(0));
    writeFileSync(join(dir, SHARD2), readFileSync(sharedFixture(`rt1-fractal-sample/${SHARD}`)));
    const card = loadCard('rt1');
    const eps = async (skipCorrupt: boolean) => {
      const out = [];
      for await (const ep of readEpisodes(dir, card, { skipCorrupt })) out.push(ep);
      return out;
    };
    await expect(eps(false)).rejects.toThrow(`${join(dir, SHARD)}: record 0 at byte 0: empty shard (0 bytes, no records)`);
    expect(await eps(true)).toHaveLength(3);
  });
});
