/**
 * Every crafted file runs through the real CLI (`node bin/selfflow-wm.js`): each must end within
 * 5 s with exit 1 and a message naming the file, without a stack trace or an abort (exit 134).
 * The files are tiny versions of the hostile inputs: a 4 GiB length field in a 20-byte shard,
 * images that declare 16000x16000 in a few dozen bytes, a 200 KB pickle integer, zip bombs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeExample, encodeExample } from '../../src/data/example.js';
import { frameRecord } from '../../src/data/tfrecord.js';
import { jpegHeader, long4, nestedDicts, pickleOf, pngHeader, recordHeader, selfContainingDict, torchPt } from '../helpers/crafted.js';
import { ensureDist, ROOT } from '../helpers/dist.js';
import { sharedFixture } from '../helpers/fixtures.js';

const SHARD = 'fractal20220817_data-train.tfrecord-00000-of-00001';
const BIN = join(ROOT, 'bin', 'selfflow-wm.js');
const isRoot = process.getuid?.() === 0;
/** Root reads any file whatever its mode; an unprivileged user id makes EACCES real. */
const NOBODY = 65534;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  ms: number;
}

function cli(args: string[], uid?: number): Run {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr, stdout: r.stdout, ms: Date.now() - t0 };
}

/** Exit 1 within 5 s, the message names `file` (and matches `detail`), no stack trace, no abort. */
function expectRefused(r: Run, file: string, detail?: RegExp): void {
  const what = `stderr:\n${r.stderr}`;
  expect(r.signal, what).toBeNull();
  expect(r.status, what).toBe(1);
  expect(r.ms, what).toBeLessThan(5000);
  expect(r.stderr, what).toContain(file);
  if (detail) expect(r.stderr).toMatch(detail);
  expect(r.stderr, what).not.toMatch(/^\s+at /m);
}

function dataDir(files: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfwm-crafted-'));
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

const inspect = (dir: string, ...extra: string[]) => ['data', 'inspect', '--data', 'rt1', '--data-dir', dir, ...extra];

/** The fixture shard's bytes and its records' data. */
function fixture(): { shard: Uint8Array; records: Uint8Array[]; firstLength: number } {
  const shard = new Uint8Array(readFileSync(sharedFixture(`rt1-fractal-sample/${SHARD}`)));
  const records: Uint8Array[] = [];
  const view = new DataView(shard.buffer, shard.byteOffset, shard.byteLength);
  for (let p = 0; p < shard.length;) {
    const n = Number(view.getBigUint64(p, true));
    records.push(shard.slice(p + 12, p + 12 + n));
    p += 16 + n;
  }
  return { shard, records, firstLength: records[0]!.length };
}

/** Record 0 of the fixture with its first image replaced by `image`, framed as a one-record shard. */
function shardWithImage(image: Uint8Array): Uint8Array {
  const ex = decodeExample(fixture().records[0]!);
  const imgs = ex.get('steps/observation/image')!.value as Uint8Array[];
  ex.set('steps/observation/image', { kind: 'bytes', value: [image, ...imgs.slice(1)] });
  return frameRecord(encodeExample(ex));
}

beforeAll(() => ensureDist(), 300_000);

describe('crafted TFRecord shards through `data inspect`', () => {
  for (const [label, length] of [
    ['2^31', 2n ** 31n],
    ['4 GiB', 2n ** 32n],
    ['2^40', 2n ** 40n],
    ['2^64 - 1', 2n ** 64n - 1n],
  ] as const) {
    it(`a first length field of ${label} with a valid CRC is refused, naming shard, record and byte`, () => {
      const dir = dataDir({ [SHARD]: new Uint8Array([...recordHeader(length), 1, 2, 3, 4, 5, 6, 7, 8]) });
      expectRefused(
        cli(inspect(dir)),
        join(dir, SHARD),
        new RegExp(`record 0 at byte 0: record length ${length} exceeds the 8 bytes left in the file`),
      );
    });
  }

  it('--skip-corrupt skips a shard whose length field is corrupt and reads the next one', () => {
    const dir = dataDir({
      [SHARD]: new Uint8Array([...recordHeader(2n ** 32n), 0, 0, 0, 0]),
      [SHARD.replace('00000-of', '00001-of')]: fixture().shard,
    });
    const r = cli(inspect(dir, '--skip-corrupt', '--json'));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ shards: 2, episodes: 3, corrupt_skipped: 1 });
    expect(r.stderr).toContain('skipped 1 corrupt record(s)');
  });

  it('a zero-length shard is refused, naming it', () => {
    const dir = dataDir({ [SHARD]: new Uint8Array(0) });
    expectRefused(cli(inspect(dir)), join(dir, SHARD), /empty shard/);
  });

  it('features.json that is not JSON is refused, naming it', () => {
    const dir = dataDir({ [SHARD]: fixture().shard, 'features.json': '{"featuresDict": ' });
    expectRefused(cli(inspect(dir)), join(dir, 'features.json'), /not valid JSON/);
  });

  it('an unreadable shard and an unreadable data directory are refused, naming the path (EACCES)', () => {
    const dir = dataDir({ [SHARD]: fixture().shard });
    chmodSync(dir, 0o755);
    chmodSync(join(dir, SHARD), 0o000);
    expectRefused(cli(inspect(dir), isRoot ? NOBODY : undefined), join(dir, SHARD), /permission denied, EACCES/);
    const parent = mkdtempSync(join(tmpdir(), 'sfwm-crafted-'));
    chmodSync(parent, 0o755);
    const locked = join(parent, 'locked');
    mkdirSync(locked, { mode: 0o000 });
    chmodSync(locked, 0o000);
    expectRefused(cli(inspect(locked), isRoot ? NOBODY : undefined), locked, /permission denied, EACCES/);
  });

  for (const [label, image, size] of [
    ['a PNG', pngHeader(16000, 16000), '16000x16000'],
    ['a JPEG', jpegHeader(8000, 8000), '8000x8000'],
  ] as const) {
    it(`${label} frame declaring ${size} is refused from its header, naming shard, record and feature`, () => {
      const dir = dataDir({ [SHARD]: shardWithImage(image) });
      expectRefused(
        cli(inspect(dir)),
        join(dir, SHARD),
        new RegExp(`record 0 at byte 0: feature 'steps/observation/image' step 0: image declares ${size} pixels`),
      );
    });
  }

  // The corruptions that were already named by shard, record and offset, now held to the same bar through the CLI.
  const handled: [string, (f: ReturnType<typeof fixture>) => Uint8Array, RegExp][] = [
    ['a data CRC mismatch', ({ shard }) => flip(shard, 12 + 200), /record 0 at byte 0: data CRC mismatch/],
    ['a length CRC mismatch', ({ shard }) => flip(shard, 9), /record 0 at byte 0: length CRC mismatch/],
    [
      'a truncated header',
      ({ shard, firstLength }) => shard.slice(0, 16 + firstLength + 5),
      /record 1 at byte \d+: truncated record header \(5 of 12 bytes\)/,
    ],
    [
      'a truncated record',
      ({ shard }) => shard.slice(0, shard.length - 50),
      /record 2 at byte \d+: truncated record: expected \d+ data bytes/,
    ],
    [
      'a record that is not a tf.train.Example',
      () => frameRecord(new Uint8Array([0xff, 0xff, 0xff, 0xff])),
      /record 0 at byte 0: not a tf.train.Example/,
    ],
    [
      'a missing feature',
      ({ records }) => frameRecord(withoutFeature(records[0]!, 'steps/reward')),
      /record 0 at byte 0: missing feature 'steps\/reward'/,
    ],
    [
      'a misshapen feature',
      ({ records }) => frameRecord(withFeature(records[0]!, 'steps/action/world_vector', { kind: 'float', value: new Float32Array(14) })),
      /feature 'steps\/action\/world_vector' has 14 elements/,
    ],
    [
      'a feature of the wrong kind',
      ({ records }) => frameRecord(withFeature(records[0]!, 'steps/reward', { kind: 'int64', value: [1] })),
      /feature 'steps\/reward' is stored as int64_list/,
    ],
    ['an undecodable image', () => shardWithImage(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3])), /step 0: cannot decode jpeg image/],
    ['an image that is not JPEG or PNG', () => shardWithImage(new Uint8Array([1, 2, 3, 4])), /step 0: not a JPEG or PNG image/],
  ];
  for (const [label, make, detail] of handled) {
    it(`${label} is refused through the CLI, naming the shard`, () => {
      const dir = dataDir({ [SHARD]: make(fixture()) });
      expectRefused(cli(inspect(dir)), join(dir, SHARD), detail);
    });
  }
});

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = bytes.slice();
  out[at]! ^= 0x55;
  return out;
}

function withoutFeature(record: Uint8Array, name: string): Uint8Array {
  const ex = decodeExample(record);
  ex.delete(name);
  return encodeExample(ex);
}

function withFeature(record: Uint8Array, name: string, value: Parameters<ReturnType<typeof decodeExample>['set']>[1]): Uint8Array {
  const ex = decodeExample(record);
  ex.set(name, value);
  return encodeExample(ex);
}

describe('crafted torch.save checkpoints through `model import` and `model run`', () => {
  const ptCases: [string, () => Uint8Array, RegExp][] = [
    [
      'a 200 KB LONG4 integer',
      () => torchPt(pickleOf(long4(200_000))),
      /integer of 200000 bytes is longer than the 4096-byte limit at byte 2/,
    ],
    ['dicts nested 200,000 deep', () => torchPt(nestedDicts(200_000)), /containers nested more than 1000 deep/],
    ['a dict that contains itself', () => torchPt(selfContainingDict()), /dict 'a' contains itself/],
    ['an unsupported opcode', () => torchPt(pickleOf('i')), /unsupported pickle opcode 0x69 at byte 2/],
    ['a truncated pickle', () => torchPt(pickleOf([0x58, 0xff, 0xff, 0x00, 0x00], 'abc')), /truncated pickle/],
    [
      'a zip entry that inflates past its declared size',
      () => torchPt(new Uint8Array(50 * 2 ** 20), { deflate: true, declaredSize: 1000 }),
      /entry 'archive\/data.pkl' inflates past its declared 1000 bytes/,
    ],
    [
      'a zip entry declaring 4 GiB from a few bytes',
      () => torchPt(new Uint8Array(1000), { deflate: true, declaredSize: 2 ** 32 - 2 }),
      /declares 4294967294 bytes uncompressed/,
    ],
    ['a file that is not a zip archive', () => new Uint8Array(100).fill(7), /not a torch.save zip archive/],
  ];
  for (const [label, make, detail] of ptCases) {
    it(`${label} is refused, naming the file`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'sfwm-crafted-pt-'));
      const pt = join(dir, 'crafted.pt');
      writeFileSync(pt, make());
      expectRefused(cli(['model', 'import', '--checkpoint', pt, '--config', 'tiny', '--out', join(dir, 'out.safetensors')]), pt, detail);
    });
  }

  it('model run refuses a crafted checkpoint the same way', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-crafted-pt-'));
    const pt = join(dir, 'crafted.pt');
    writeFileSync(pt, torchPt(pickleOf('i')));
    const r = cli([
      'model',
      'run',
      '--checkpoint',
      pt,
      '--config',
      'tiny',
      '--inputs',
      sharedFixture('selfflow-reference/selfflow-tiny.io.safetensors'),
      '--out',
      join(dir, 'out.safetensors'),
      '--backend',
      'cpu',
    ]);
    expectRefused(r, pt, /unsupported pickle opcode 0x69/);
  });
});
