/**
 * The newcomer command `selfflow-wm demo` succeeds as shipped, from the goal pictures alone: the
 * default preset reads the gripper states off the pictures with the shipped state reader and never
 * what the storyboard recorded with them, and the output says so.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('selfflow-wm demo', () => {
  it('puts the apple in the drawer with the shipped model and default preset, and says what the planner knew of the goal', async () => {
    const gif = join(mkdtempSync(join(tmpdir(), 'sfwm-demo-')), 'demo.gif');
    const r = await runCli(['demo', '--gif', gif, '--backend', process.env.SELFFLOW_TEST_BACKEND ?? 'wasm', '--plan-workers', '1']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/preset wm-cem-read/);
    expect(r.out).toMatch(/^success: stage 2\/2 after \d+ steps/m);
    expect(r.out).toMatch(
      /^goal: the planner read the goal pictures and the instruction, and never the gripper positions or open\/closed states recorded/m,
    );
    expect(r.out).not.toMatch(/ORACLE/);
    expect(r.out).toMatch(/^goal states: .* read off the pictures \(taken at 128x160\) by the learned state reader/m);
    expect(r.out).toMatch(/^grasps: the pictures of a grasp \(.* went to the action policy .* never the goal$/m);
    expect(r.out).toMatch(/^set-downs: .* along its camera ray .*tiny-sim-explore\/camera\.json\)$/m);
    expect(existsSync(gif)).toBe(true);
  }, 600_000);
});
