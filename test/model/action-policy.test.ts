/**
 * The action policy learns actions from the three things it is given, the picture, the robot state
 * and the instruction: checked on synthetic samples where each decides one action value, on the
 * planner's proposal source (layout, horizon, seeds, the state it reads), on bad files, and end to
 * end from simulator episodes through `model train-policy`.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeSafetensors } from '../../src/checkpoint/safetensors.js';
import { UserError } from '../../src/core/errors.js';
import type { Observation } from '../../src/core/types.js';
import { embedInstruction } from '../../src/data/language-embedding.js';
import { ACTION_POLICY_FILE, readActionPolicyFile, writeActionPolicy } from '../../src/model/action-policy.js';
import { loadPolicyProposals, policyState } from '../../src/planner/policy-proposals.js';
import { loadPlannerPreset, validatePreset } from '../../src/planner/presets.js';
import { collect } from '../../src/sim/collect.js';
import { trainActionPolicy, type PolicySamples } from '../../src/train/action-policy-training.js';
import { Rng } from '../../src/util/rng.js';
import { runCli } from '../helpers/cli.js';
import { useTestBackend } from '../helpers/tf.js';

const [H, W] = [32, 40];
const NAMES = ['a.picture', 'a.state', 'a.language'];
const STATS = {
  names: NAMES,
  count: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  min: [-1, -1, -1],
  max: [1, 1, 1],
  q01: [-1, -1, -1],
  q99: [1, 1, 1],
};
const INSTRUCTIONS = ['open top drawer', 'pick coke can'];

/**
 * A square left or right in the picture sets action 0 (+0.8 / -0.8), the gripper's x in [0, 1] sets
 * action 1 (1.6 (x - 0.5)), the instruction sets action 2 (+0.9 / -0.9); the chunk repeats it.
 */
function synthetic(n: number, seed: number, chunk: number): PolicySamples {
  const rng = new Rng(seed);
  const s: PolicySamples = {
    height: H,
    width: W,
    chunk,
    actionDim: 3,
    pixels: [],
    states: new Float32Array(n * 4),
    chunks: new Float32Array(n * chunk * 3),
    language: [],
    embeddings: INSTRUCTIONS.map((t) => embedInstruction(t)),
    val: [],
    episodes: { kept: n, relabelled: 0, unsuccessful: 0 },
  };
  for (let i = 0; i < n; i++) {
    const left = rng.uniform(0, 1) < 0.5;
    const x = rng.uniform(0, 1);
    const lang = rng.uniform(0, 1) < 0.5 ? 0 : 1;
    const px = new Uint8Array(H * W * 3).fill(40);
    const c0 = left ? 4 : W - 10;
    const r0 = Math.floor(rng.uniform(4, H - 10));
    for (let r = r0; r < r0 + 6; r++) for (let c = c0; c < c0 + 6; c++) px.set([220, 200, 30], (r * W + c) * 3);
    s.pixels.push(px);
    s.states.set([x, rng.uniform(-0.2, 0.2), rng.uniform(0, 0.3), rng.uniform(0, 1)], i * 4);
    const act = [left ? 0.8 : -0.8, 1.6 * (x - 0.5), lang ? 0.9 : -0.9];
    for (let k = 0; k < chunk; k++) s.chunks.set(act, (i * chunk + k) * 3);
    s.language.push(lang);
    s.val.push(i % 5 === 0);
  }
  return s;
}

const observation = (s: PolicySamples, i: number, opening: number): Observation => ({
  image: s.pixels[i]!,
  width: W,
  height: H,
  proprio: Float32Array.from([s.states[i * 4]!, s.states[i * 4 + 1]!, s.states[i * 4 + 2]!, 0, opening]),
  stamp: i,
});

describe('the action policy', () => {
  beforeAll(useTestBackend);

  it('learns actions that the picture, the state and the instruction each decide, and proposes them to the planner', async () => {
    const s = synthetic(800, 1, 2);
    const r = await trainActionPolicy(s, STATS, {
      steps: 300,
      batchSize: 32,
      lr: 3e-3,
      seed: 0,
      fullOpening: 0.1,
      shift: 1,
      net: { channels: 8, hidden: 64, flowSteps: 8 },
    });
    // A guess that ignores a cue is off by 0.8 / 0.4 / 0.9 on average for that value.
    expect(r.errors.samples).toBe(160);
    expect(r.errors.firstAction[0]).toBeLessThan(0.2);
    expect(r.errors.firstAction[1]).toBeLessThan(0.15);
    expect(r.errors.firstAction[2]).toBeLessThan(0.2);

    const dir = mkdtempSync(join(tmpdir(), 'sfwm-policy-'));
    writeActionPolicy(join(dir, ACTION_POLICY_FILE), r.cfg, r.tensors);
    const policy = loadPolicyProposals({ name: 'p', proposer: 'policy' }, dir, STATS)!;
    // Held-out rows, each with its instruction: the proposal's first action follows the cues.
    const rows = [0, 5, 10, 15, 20];
    for (const i of rows) {
      const want = s.chunks.subarray(i * 2 * 3, i * 2 * 3 + 3);
      const got = policy.propose(observation(s, i, 0.05), INSTRUCTIONS[s.language[i]!], 1, 3, 7);
      // n x horizon x A, the horizon past the chunk repeating its last action.
      expect(got.length).toBe(9);
      expect(Math.sign(got[0]!)).toBe(Math.sign(want[0]!));
      expect(Math.abs(got[1]! - want[1]!)).toBeLessThan(0.3);
      expect(Math.sign(got[2]!)).toBe(Math.sign(want[2]!));
      expect(Array.from(got.subarray(6, 9))).toEqual(Array.from(got.subarray(3, 6)));
    }
    // Same seed, same proposals; a plan's source hands out the same samples in every iteration.
    const o = observation(s, 0, 0.05);
    expect(policy.propose(o, INSTRUCTIONS[0], 3, 2, 11)).toEqual(policy.propose(o, INSTRUCTIONS[0], 3, 2, 11));
    const source = policy.source(o, INSTRUCTIONS[0], 2, 11);
    expect(await source(3)).toEqual(await source(3));
    // The state it reads: x, y, z and closedness from the finger opening, normalised with the training data's statistics.
    const st = policyState(r.cfg, o);
    expect(st[3]! * r.cfg.stateStd[3]! + r.cfg.stateMean[3]!).toBeCloseTo(0.5, 5);
    expect(() => policy.propose({ ...o, proprio: undefined }, INSTRUCTIONS[0], 1, 2, 0)).toThrow(/needs the robot state/);
    policy.dispose();

    // The policy records the action statistics its chunks are normalised by, and acts only for a world model with the same;
    // a file from before they were recorded is not checked.
    expect([r.cfg.actionMean, r.cfg.actionStd]).toEqual([STATS.mean, STATS.std]);
    const otherModel = { ...STATS, mean: [0, 0.5, 0] };
    expect(() => loadPolicyProposals({ name: 'p', proposer: 'policy' }, dir, otherModel)).toThrow(
      new RegExp(
        `${ACTION_POLICY_FILE}: the policy's actions are normalised by other action statistics than the world model's \\(a\\.state differ\\)`,
      ),
    );
    const { actionMean: _m, actionStd: _s, ...older } = r.cfg;
    writeActionPolicy(join(dir, ACTION_POLICY_FILE), older, r.tensors);
    loadPolicyProposals({ name: 'p', proposer: 'policy' }, dir, otherModel)!.dispose();

    // Fine-tuning (`--init`): a few steps from the learnt policy keep its skill and its state normalisation, where the same
    // steps from random weights learn nothing; new samples with a shifted state distribution do not renormalise it.
    const more = synthetic(200, 2, 2);
    for (let i = 0; i < 200; i++) more.states[i * 4 + 1] = more.states[i * 4 + 1]! + 0.3;
    const few = { steps: 5, batchSize: 32, lr: 1e-4, seed: 1, fullOpening: 0.1, shift: 0, net: { channels: 8, hidden: 64, flowSteps: 8 } };
    const tuned = await trainActionPolicy(more, STATS, { ...few, init: { name: 'a.safetensors', cfg: r.cfg, tensors: r.tensors } });
    const fresh = await trainActionPolicy(more, STATS, few);
    expect(tuned.cfg).toEqual(r.cfg);
    expect(fresh.cfg.stateMean[1]).toBeGreaterThan(r.cfg.stateMean[1]! + 0.2);
    expect(tuned.errors.firstAction[0]).toBeLessThan(0.25);
    expect(fresh.errors.firstAction[0]).toBeGreaterThan(0.4);
    // A starting policy that cannot act on these samples is named with its mismatch.
    await expect(
      trainActionPolicy(synthetic(50, 3, 3), STATS, { ...few, init: { name: 'a.safetensors', cfg: r.cfg, tensors: r.tensors } }),
    ).rejects.toThrow(new UserError('a.safetensors: chunk is 2, but this training needs 3'));
    await expect(
      trainActionPolicy(more, otherModel, { ...few, init: { name: 'a.safetensors', cfg: r.cfg, tensors: r.tensors } }),
    ).rejects.toThrow(/a\.safetensors: the policy's actions are normalised by other action statistics than the world model's/);
    // An older init without recorded statistics learns this model's, and the result records them.
    const fromOlder = await trainActionPolicy(more, otherModel, {
      ...few,
      init: { name: 'a.safetensors', cfg: older, tensors: r.tensors },
    });
    expect(fromOlder.cfg.actionMean).toEqual(otherModel.mean);
  }, 120_000);

  it('presets: wm-policy acts with the action policy, the old joint query is an experiment, and a bad proposer or noise is named', () => {
    expect(loadPlannerPreset('wm-policy').proposer).toBe('policy');
    expect(loadPlannerPreset('experiments/joint-query-only').proposer).toBeUndefined();
    const p = loadPlannerPreset('wm-policy');
    expect(() => validatePreset({ ...p, proposer: 'both' }, 'x.json')).toThrow(
      /x\.json: 'proposer' must be "joint" or "policy", got "both"/,
    );
    expect(() => validatePreset({ ...p, proposerNoise: 3 }, 'x.json')).toThrow(
      /x\.json: 'proposerNoise' must be a number in \[0, 2\], got 3/,
    );
    expect(() => validatePreset({ ...p, proposer: 'joint', proposerNoise: 0.5 }, 'x.json')).toThrow(
      /x\.json: 'proposerNoise' applies only with proposer "policy"/,
    );
  });

  it('a missing, foreign or broken policy file is a UserError naming the file, the field or the train command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfwm-policy-bad-'));
    expect(() => loadPolicyProposals({ name: 'wm-policy', proposer: 'policy' }, dir, STATS)).toThrow(UserError);
    expect(() => loadPolicyProposals({ name: 'wm-policy', proposer: 'policy' }, dir, STATS)).toThrow(
      /preset 'wm-policy' takes its proposals from the model's action policy, and .*action-policy\.safetensors does not exist \(train one with: selfflow-wm model train-policy/,
    );
    // A preset without proposer "policy" loads nothing.
    expect(loadPolicyProposals({ name: 'wm' }, dir, STATS)).toBeUndefined();
    const file = join(dir, ACTION_POLICY_FILE);
    writeFileSync(file, serializeSafetensors(new Map(), { format: 'selfflow-wm/state-reader@1' }));
    expect(() => readActionPolicyFile(file)).toThrow(/action-policy\.safetensors: not a selfflow-wm action policy/);
    const cfg = {
      imageHeight: 32,
      imageWidth: 40,
      patch: 4,
      channels: 4,
      hidden: 8,
      chunk: 2,
      actionNames: NAMES,
      languageDim: 512,
      stateMean: [0, 0, 0],
      stateStd: [1, 1, 1, 1],
      fullOpening: 0.1,
      flowSteps: 2,
    };
    writeFileSync(file, serializeSafetensors(new Map(), { format: 'selfflow-wm/action-policy@1', config: JSON.stringify(cfg) }));
    expect(() => readActionPolicyFile(file)).toThrow(/\(metadata\.config\): config field 'stateMean' must hold 4 numbers/);
    writeFileSync(
      file,
      serializeSafetensors(new Map(), {
        format: 'selfflow-wm/action-policy@1',
        config: JSON.stringify({ ...cfg, stateMean: [0, 0, 0, 0] }),
      }),
    );
    expect(() => readActionPolicyFile(file)).toThrow(/action-policy\.safetensors: weights do not match their config/);
  });

  it("learns from simulator episodes through `model train-policy` into the model directory, in the world model's actions", async () => {
    const data = mkdtempSync(join(tmpdir(), 'sfwm-policy-data-'));
    await collect({ tasks: ['pick-can'], episodes: 2, outDir: data, seed: 0, noise: 0.003, explore: 0, imageHeight: 32, imageWidth: 40 });
    const model = mkdtempSync(join(tmpdir(), 'sfwm-policy-model-'));
    const { cpSync } = await import('node:fs');
    cpSync(join('models', 'tiny-sim-explore', 'run.json'), join(model, 'run.json'));
    const args = [
      'model',
      'train-policy',
      '--model',
      model,
      '--data-dir',
      data,
      '--steps',
      '3',
      '--batch-size',
      '4',
      '--image-size',
      '32x40',
      // The split hashes the data directory's path, a random temporary name here.
      '--val-fraction',
      '0',
    ];
    const r = await runCli([...args, '--successful-only', '--checkpoint-every', '1', '--backend', 'wasm']);
    expect([r.code, r.err]).toEqual([0, expect.stringMatching(/action policy: 2 episodes, \d+ training steps/)]);
    // The resume file is written every step and removed once the policy is written.
    const resumeFile = join(model, 'action-policy.resume.safetensors');
    expect(existsSync(resumeFile)).toBe(false);
    expect(r.out).toMatch(/held-out .*flow loss [\d.]+; first action's mean \|error\| .*world_vector\.x [\d.]+/);
    const { cfg } = readActionPolicyFile(join(model, ACTION_POLICY_FILE));
    expect(cfg).toMatchObject({ imageHeight: 32, imageWidth: 40, chunk: 4, fullOpening: 0.1 });
    const { readRunManifest } = await import('../../src/core/run-manifest.js');
    expect(cfg.actionNames).toEqual(readRunManifest(model).actionStats.names);

    // `--init` continues from that policy into another file and records where it started; a missing one is named.
    const tunedFile = join(model, 'tuned.safetensors');
    const tuned = await runCli([...args, '--init', join(model, ACTION_POLICY_FILE), '--out', tunedFile, '--backend', 'wasm']);
    expect(tuned.code).toBe(0);
    expect(readActionPolicyFile(tunedFile).metadata.init).toBe(join(model, ACTION_POLICY_FILE));
    // A new policy takes the network sizes it is given (a larger one for a GPU run); a fine-tune keeps its init's.
    const sizedFile = join(model, 'sized.safetensors');
    const sized = await runCli([...args, '--patch', '8', '--channels', '8', '--hidden', '24', '--out', sizedFile, '--backend', 'wasm']);
    expect(sized.code).toBe(0);
    expect(readActionPolicyFile(sizedFile).cfg).toMatchObject({ patch: 8, channels: 8, hidden: 24, imageHeight: 32, imageWidth: 40 });
    const resized = await runCli([...args, '--init', sizedFile, '--hidden', '32', '--backend', 'wasm']);
    expect([resized.code, resized.err]).toEqual([
      2,
      expect.stringContaining(`--hidden cannot be combined with --init: a fine-tuned policy keeps ${sizedFile}'s sizes`),
    ]);
    const badPatch = await runCli([...args, '--patch', '7', '--backend', 'wasm']);
    expect([badPatch.code, badPatch.err]).toEqual([2, expect.stringContaining('--patch 7 must divide --image-size 32x40')]);
    const missing = await runCli([...args, '--init', join(model, 'nope.safetensors'), '--backend', 'wasm']);
    expect([missing.code, missing.err]).toEqual([1, expect.stringContaining(`${join(model, 'nope.safetensors')}: no such file`)]);

    // A resume file left by a run with other flags is refused, naming the file, not overwritten.
    writeFileSync(resumeFile, serializeSafetensors(new Map(), { format: 'selfflow-wm/small-net-resume@1', fingerprint: '{}', step: '1' }));
    const stale = await runCli([...args, '--successful-only', '--backend', 'wasm']);
    expect([stale.code, stale.err]).toEqual([
      1,
      expect.stringContaining(`${resumeFile}: the resume file of a run with other flags or data`),
    ]);
    expect(existsSync(resumeFile)).toBe(true);
  }, 120_000);
});
