/**
 * What a registry install gets (`npm pack`): everything bin/selfflow-wm.js and serve need at run
 * time — the compiled CLI and planner worker, presets, dataset cards, sim scenes, launch files,
 * .msg definitions, the API schema and the shipped tiny model.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDist, ROOT } from '../helpers/dist.js';
import { SHIPPED_MODEL } from '../../src/util/package-root.js';

/** The default model's checkpoint directory, as its latest.json names it. */
const shippedCheckpoint = (JSON.parse(readFileSync(join(ROOT, SHIPPED_MODEL, 'latest.json'), 'utf8')) as { dir: string }).dir;

beforeAll(() => ensureDist(), 120_000);

describe('npm pack', () => {
  it('contains what the installed CLI needs', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    for (const f of [
      'package.json',
      'bin/selfflow-wm.js',
      'dist/src/cli/main.js',
      'dist/src/cli/serve.js',
      'dist/src/service/planner-worker-main.js',
      'dist/src/data/window-worker.js',
      'policies/wm-cem-fast.json',
      'policies/wm-cem-read.json',
      'datasets/rt1.json',
      'sim/scenes/tabletop.xml',
      'launch/params.yaml',
      'launch/selfflow_planner.launch.xml',
      'msgs/sensor_msgs/msg/Image.msg',
      'proto/selfflow_v1.proto',
      `${SHIPPED_MODEL}/run.json`,
      `${SHIPPED_MODEL}/latest.json`,
      `${SHIPPED_MODEL}/${shippedCheckpoint}/ema.safetensors`,
      // The default preset reads the goal pictures' gripper states with it.
      `${SHIPPED_MODEL}/state-reader.safetensors`,
      // wm-policy acts with it, and presets with proposer "policy" take proposals from it.
      `${SHIPPED_MODEL}/action-policy.safetensors`,
    ]) {
      expect(files, f).toContain(f);
    }
    // Sources and tests stay out of the tarball.
    expect([...files].some((f) => f.startsWith('src/') || f.startsWith('test/'))).toBe(false);
  });
});
