/**
 * Action chunks from the model directory's action policy (src/model/action-policy.ts), for presets
 * with `proposer: "policy"`: the `policy` optimiser kind executes one, CEM and MPPI mix them with
 * Gaussian samples. The policy reads the current picture, the robot's own state (its
 * proprioception: gripper x, y, z and finger opening) and the instruction; never the goal pictures.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ActionStats } from '../core/action-stats.js';
import { UserError } from '../core/errors.js';
import type { Observation } from '../core/types.js';
import { embedInstruction } from '../data/language-embedding.js';
import { seededNormal } from '../flow/noise.js';
import { toModelFrame } from '../image/resize.js';
import {
  ACTION_POLICY_FILE,
  actionStatsMismatch,
  loadActionPolicyWeights,
  policyCondition,
  sampleChunks,
  type ActionPolicyConfig,
} from '../model/action-policy.js';
import type { Params } from '../model/layers.js';
import { modelDirFile } from './goal-state-reading.js';
import type { ProposalSource } from './sequence.js';

/** The policy's state input from a robot's proprioception (x, y, z, yaw, opening), normalised. */
export function policyState(cfg: ActionPolicyConfig, obs: Observation): Float32Array {
  const p = obs.proprio;
  if (!p || p.length < 5)
    throw new UserError('the action policy needs the robot state with every observation (proprio: gripper x, y, z, yaw, finger opening)');
  const closedness = Math.min(1, Math.max(0, 1 - p[4]! / cfg.fullOpening));
  return Float32Array.from([p[0]!, p[1]!, p[2]!, closedness], (v, i) => (v - cfg.stateMean[i]!) / cfg.stateStd[i]!);
}

export class PolicyProposals {
  constructor(
    readonly params: Params,
    readonly cfg: ActionPolicyConfig,
    /** Scale of the noise samples start from: 1 samples the learnt distribution, lower values keep to its likelier chunks. */
    readonly noise = 1,
  ) {}

  /**
   * `n` action sequences of `horizon` normalised actions, laid out n x horizon x A; a horizon
   * longer than the policy's chunk repeats the chunk's last action. Same seed, same samples.
   */
  propose(obs: Observation, instruction: string | undefined, n: number, horizon: number, seed: number): Float32Array {
    const c = this.cfg;
    const a = c.actionNames.length;
    const sampled = tf.tidy(() => {
      const picture = toModelFrame({ data: obs.image, width: obs.width, height: obs.height }, c.imageHeight, c.imageWidth);
      const images = tf.tensor4d(picture, [1, c.imageHeight, c.imageWidth, 3]);
      const state = tf.tensor2d(policyState(c, obs), [1, 4]);
      const lang = instruction ? embedInstruction(instruction) : new Float32Array(c.languageDim);
      if (lang.length !== c.languageDim)
        throw new UserError(`the action policy takes ${c.languageDim}-value instruction embeddings, the instruction gives ${lang.length}`);
      const language = tf.tensor2d(lang, [1, c.languageDim]);
      // One picture, one condition: encoded once and shared by the n samples.
      const cond = policyCondition(this.params, c, images, state, language).tile([n, 1]) as tf.Tensor2D;
      return sampleChunks(this.params, c, cond, tf.mul(this.noise, seededNormal([n, c.chunk * a], seed)) as tf.Tensor2D);
    });
    const chunks = sampled.dataSync() as Float32Array;
    sampled.dispose();
    const out = new Float32Array(n * horizon * a);
    for (let i = 0; i < n; i++)
      for (let t = 0; t < horizon; t++) {
        const k = Math.min(t, c.chunk - 1);
        out.set(chunks.subarray((i * c.chunk + k) * a, (i * c.chunk + k + 1) * a), (i * horizon + t) * a);
      }
    return out;
  }

  /** The same policy sampled at another noise scale; it shares these weights, so only this one is disposed. */
  withNoise(noise: number): PolicyProposals {
    return new PolicyProposals(this.params, this.cfg, noise);
  }

  /** One plan's proposal source: the same seed in every iteration, so samples are drawn once and handed out again. */
  source(obs: Observation, instruction: string | undefined, horizon: number, seed: number): ProposalSource {
    let drawn: { n: number; values: Float32Array } | undefined;
    return async (n) => {
      if (drawn?.n !== n) drawn = { n, values: this.propose(obs, instruction, n, horizon, seed) };
      return drawn.values.slice();
    };
  }

  dispose(): void {
    tf.dispose(Object.values(this.params));
  }
}

/**
 * The action policy a preset asks for: none unless its `proposer` is "policy" or it has a
 * `policyGrasp` section (src/planner/policy-grasp.ts); its actions must be the world model's.
 */
export function loadPolicyProposals(
  preset: { name: string; proposer?: 'joint' | 'policy'; proposerNoise?: number; policyGrasp?: object },
  checkpoint: string,
  stats: ActionStats,
): PolicyProposals | undefined {
  if (preset.proposer !== 'policy' && !preset.policyGrasp) return undefined;
  const path = modelDirFile(checkpoint, ACTION_POLICY_FILE);
  if (!existsSync(path))
    throw new UserError(
      `planner preset '${preset.name}' ${preset.proposer === 'policy' ? 'takes its proposals from' : 'hands its grasps to'} the model's action policy, and ${path} does not exist ` +
        `(train one with: selfflow-wm model train-policy --model ${dirname(path)} --data-dir DIR)`,
    );
  const { params, cfg } = loadActionPolicyWeights(path);
  const mismatch = actionStatsMismatch(cfg, stats);
  if (mismatch) {
    tf.dispose(Object.values(params));
    throw new UserError(`${path}: ${mismatch} (retrain it with: selfflow-wm model train-policy --model ${dirname(path)} ...)`);
  }
  return new PolicyProposals(params, cfg, preset.proposerNoise ?? 1);
}
