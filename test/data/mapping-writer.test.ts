import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ActionStatsAccumulator } from '../../src/data/action-stats.js';
import { type ActionStats } from '../../src/core/action-stats.js';
import { actionDim, actionNames, loadCard } from '../../src/data/card.js';
import { modelActionToRt1, rt1ToModelAction } from '../../src/data/action-mapping.js';
import { readEpisodes } from '../../src/data/rlds.js';
import { RldsWriter, type EpisodeRecord } from '../../src/data/rlds-writer.js';
import type { Rt1Action } from '../../src/core/action.js';

/** Statistics whose q01/q99 are exactly lo/hi per dimension (101 evenly spaced samples). */
function statsFor(names: string[], lo: number[], hi: number[]): ActionStats {
  const acc = new ActionStatsAccumulator(names);
  for (let k = 0; k <= 100; k++) acc.add(names.map((_, i) => lo[i]! + ((hi[i]! - lo[i]!) * (k - 1)) / 98));
  return acc.result();
}

describe('model action <-> RT-1 action', () => {
  const card = loadCard('rt1');
  const names = actionNames(card);
  const stats = statsFor(names, [-0.1, -0.1, -0.1, -0.5, -0.5, -0.5, -1], [0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 1]);

  it('rt1 models world_vector, rotation_delta, gripper: 7 dims in that order', () => {
    expect(actionDim(card)).toBe(7);
    expect(names).toEqual([
      'world_vector.x',
      'world_vector.y',
      'world_vector.z',
      'rotation_delta.roll',
      'rotation_delta.pitch',
      'rotation_delta.yaw',
      'gripper_closedness_action',
    ]);
    expect(stats.q01[0]).toBeCloseTo(-0.1, 12);
    expect(stats.q99[6]).toBeCloseTo(1, 12);
  });

  it('round-trips in-range actions and clips out-of-range ones to q01/q99', () => {
    const a: Rt1Action = {
      worldVector: [0.05, -0.02, 0],
      rotationDelta: [0.25, -0.5, 0.1],
      gripperClosedness: -1,
      terminateEpisode: [0, 1, 0],
    };
    const norm = rt1ToModelAction(card, stats, a);
    expect(Array.from(norm).map((v) => Number(v.toFixed(5)))).toEqual([0.5, -0.2, 0, 0.5, -1, 0.2, -1]);
    const back = modelActionToRt1(card, stats, norm);
    back.worldVector.forEach((v, i) => expect(v).toBeCloseTo(a.worldVector[i]!, 6));
    back.rotationDelta.forEach((v, i) => expect(v).toBeCloseTo(a.rotationDelta[i]!, 6));
    expect(back.gripperClosedness).toBeCloseTo(-1, 6);
    expect(back.terminateEpisode).toEqual([0, 1, 0]);
    const far = rt1ToModelAction(card, stats, { ...a, worldVector: [5, -5, 0] });
    expect([far[0], far[1]]).toEqual([1, -1]);
    expect(modelActionToRt1(card, stats, Float32Array.from([9, -9, 0, 0, 0, 0, 0])).worldVector.map((v) => Number(v.toFixed(6)))).toEqual([
      0.1, -0.1, 0,
    ]);
  });

  it('the older (stats, x) form gives the same result', () => {
    const x = Float32Array.from([0.3, -0.7, 0.1, 0, 1, -1, 0.5]);
    expect(modelActionToRt1(stats, x)).toEqual(modelActionToRt1(card, stats, x));
  });

  it('rejects statistics computed for another card, naming both', () => {
    const bridge = statsFor(actionNames(loadCard('bridge')), [-1, -1, -1, -1, -1, -1, 0], [1, 1, 1, 1, 1, 1, 1]);
    expect(() => modelActionToRt1(card, bridge, new Float32Array(7))).toThrow(
      /action statistics \[dx, .*\] do not match card 'rt1' action \[world_vector.x/,
    );
    expect(() => modelActionToRt1(card, stats, new Float32Array(6))).toThrow(/model action has 6 values, the action statistics 7/);
  });

  it('bridge dx..gripper map to the same RT-1 slots', () => {
    const b = loadCard('bridge');
    const bs = statsFor(actionNames(b), [-1, -1, -1, -1, -1, -1, 0], [1, 1, 1, 1, 1, 1, 1]);
    const r = modelActionToRt1(b, bs, Float32Array.from([0.5, 0, 0, 0, 0, -0.5, 1]));
    expect(r.worldVector[0]).toBeCloseTo(0.5, 6);
    expect(r.rotationDelta[2]).toBeCloseTo(-0.5, 6);
    expect(r.gripperClosedness).toBeCloseTo(1, 6);
  });
});

/** A small bridge-card episode with 4x4 PNG-free "images" (the writer stores bytes as given). */
function bridgeEpisode(steps: number, jpeg: Uint8Array): EpisodeRecord {
  return {
    steps: Array.from({ length: steps }, (_, t) => ({
      'observation/image_0': jpeg,
      'observation/image_1': jpeg,
      'observation/image_2': jpeg,
      'observation/image_3': jpeg,
      'observation/state': new Float32Array(7).fill(t),
      action: [t, 0, 0, 0, 0, 0, 1],
      language_instruction: 'put the spoon in the pot',
      language_embedding: new Float32Array(512),
      is_first: t === 0,
      is_last: t === steps - 1,
      is_terminal: t === steps - 1,
      reward: t === steps - 1 ? 1 : 0,
      discount: 1,
    })),
    metadata: {
      'episode_metadata/file_path': 'sim',
      'episode_metadata/episode_id': 0,
      'episode_metadata/has_image_0': 1,
      'episode_metadata/has_image_1': 0,
      'episode_metadata/has_image_2': 0,
      'episode_metadata/has_image_3': 0,
      'episode_metadata/has_language': 1,
    },
  };
}

describe('RLDS writer: interrupted and repeated collections', () => {
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]);

  it('complete shards are readable before close(); close() gives TFDS names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-writer-'));
    const card = loadCard('bridge');
    const w = new RldsWriter(dir, card, { episodesPerShard: 2, datasetName: 'demo' });
    for (let i = 0; i < 3; i++) await w.add(bridgeEpisode(3, jpeg));
    // Killed here: shard 0 is complete and visible, shard 1 is still a hidden temp file.
    expect(
      readdirSync(dir)
        .filter((f) => !f.startsWith('.'))
        .sort(),
    ).toEqual(['dataset_info.json', 'demo-train.tfrecord-00000', 'features.json']);
    const keys: string[] = [];
    for await (const ep of readEpisodes(dir, card)) keys.push(ep.key);
    expect(keys).toEqual(['demo-train.tfrecord-00000#0', 'demo-train.tfrecord-00000#1']);
    expect(JSON.parse(readFileSync(join(dir, 'dataset_info.json'), 'utf8')).splits[0].shardLengths).toEqual(['2']);
    const r = await w.close();
    expect(r).toMatchObject({ episodes: 3, steps: 9 });
    expect(readdirSync(dir).sort()).toEqual([
      'dataset_info.json',
      'demo-train.tfrecord-00000-of-00002',
      'demo-train.tfrecord-00001-of-00002',
      'features.json',
    ]);
  });

  it('abort() removes the partial shard and keeps the complete ones', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-writer-'));
    const w = new RldsWriter(dir, loadCard('bridge'), { episodesPerShard: 2, datasetName: 'demo' });
    for (let i = 0; i < 3; i++) await w.add(bridgeEpisode(2, jpeg));
    const r = await w.abort();
    expect(r.episodes).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['dataset_info.json', 'demo-train.tfrecord-00000-of-00001', 'features.json']);
  });

  it('refuses a directory that already holds shards of the same dataset and split', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-writer-'));
    writeFileSync(join(dir, 'demo-train.tfrecord-00000-of-00003'), '');
    expect(() => new RldsWriter(dir, loadCard('bridge'), { datasetName: 'demo' })).toThrow(
      /already holds 1 shard\(s\) of demo-train .*write to an empty directory/,
    );
    expect(existsSync(join(dir, 'features.json'))).toBe(false);
  });

  it('validation names the episode, step and feature', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-writer-'));
    const w = new RldsWriter(dir, loadCard('bridge'));
    const ep = bridgeEpisode(3, jpeg);
    ep.steps[2]!.action = [1, 2];
    await expect(w.add(ep)).rejects.toThrow("episode 0 step 2: 'steps/action' has 2 values, the card says 7 [7]");
    const ep2 = bridgeEpisode(3, jpeg);
    delete ep2.steps[1]!.reward;
    await expect(w.add(ep2)).rejects.toThrow("episode 0: feature 'steps/reward' is missing in 1 of 3 steps");
    const ep3 = bridgeEpisode(2, jpeg);
    ep3.steps[0]!['observation/image_0'] = 'not bytes';
    await expect(w.add(ep3)).rejects.toThrow("episode 0 step 0: 'steps/observation/image_0' must be encoded image bytes");
  });
});

describe('RLDS writer: keys the card does not describe', () => {
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]);
  it('rejects an unknown step key or metadata key instead of dropping it; short metadata names map to episode_metadata/', async () => {
    const card = loadCard('bridge');
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-writer-'));
    const w = new RldsWriter(dir, card);
    const typo = bridgeEpisode(2, jpeg);
    typo.steps[1]!['observation/imgae_0'] = jpeg;
    await expect(w.add(typo)).rejects.toThrow(
      "episode 0 step 1: 'observation/imgae_0' is not a per-step feature of card 'bridge' (keys omit the steps/ prefix)",
    );
    const meta = bridgeEpisode(2, jpeg);
    meta.metadata!.operator = 'x';
    await expect(w.add(meta)).rejects.toThrow("episode 0: metadata 'operator' is not an episode feature of card 'bridge'");
    const short = bridgeEpisode(2, jpeg);
    delete short.metadata!['episode_metadata/file_path'];
    short.metadata!.file_path = 'collected/0';
    await w.add(short);
    await w.close();
    const eps = [];
    for await (const ep of readEpisodes(dir, card)) eps.push(ep);
    expect(eps[0]!.fields.get('episode_metadata/file_path')!.values).toEqual(['collected/0']);
  });
});
