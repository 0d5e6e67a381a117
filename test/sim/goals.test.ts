import { describe, expect, it } from 'vitest';
import { SimEnv } from '../../src/sim/env.js';
import { expertScript, makeScriptedPolicy, type ScriptedExpert } from '../../src/sim/expert.js';
import { subgoals, subgoalsFrom } from '../../src/sim/goals.js';

const H = 16;
const W = 20;
const maxDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('goal storyboards redone from the scene as it is (restaging)', () => {
  it('the expert resumes in the phase that completed the stage; the pictures follow the scene of the snapshot', async () => {
    const task = 'drawer-place';
    const seed = 0;
    const board = await subgoals(task, seed, H, W, 'phase');
    const done = board.find((g) => g.name === 'drawer open 12 cm (done)')!;
    expect(done.stage).toBe(0);
    // Each phase picture carries the precision the expert's phase demanded (policies/experts/drawer-place.json).
    expect(board.filter((g) => g.name === 'above knob' || g.name === 'descend').map((g) => g.tolerance)).toEqual([0.02, 0.01, 0.012]);
    const fromPhase = Math.ceil(done.phase!);
    // The expert's own episode, stopped where it completed stage 1 (the drawer 12 cm open, the knob held).
    const env = await SimEnv.create({ task, seed, imageHeight: H, imageWidth: W });
    try {
      const expert = makeScriptedPolicy('expert', task, seed) as ScriptedExpert;
      let r = env.reset(seed);
      expert.reset(env);
      while (r.stagesDone < 1) r = env.step(expert.act(r));
      const atStage = env.snapshot();
      const same = await subgoalsFrom(atStage, fromPhase, task, seed, H, W, 'phase');
      expect(same.every((g) => g.stage >= 1)).toBe(true);
      expect(same[0]!.name).toBe('pull');
      expect(same.at(-1)!.name).toBe('apple in drawer (done)');
      // Unchanged scene: the same pictures as the first storyboard.
      const above = (b: typeof board) => b.find((g) => g.name === 'above apple')!.observation.image;
      expect(maxDiff(above(same), above(board))).toBeLessThanOrEqual(1);
      // Starting at the next stage's first phase instead would leave the knob held: the expert drags the drawer and fails.
      const aboveApple = expertScript(task).phases.findIndex((p) => p.name === 'above apple');
      await expect(subgoalsFrom(atStage, aboveApple, task, seed, H, W, 'phase')).rejects.toThrow(
        new RegExp(`did not complete drawer-place .*starting at phase ${aboveApple}`),
      );
      // The robot opened the drawer less than the expert would (14 cm, not 18) and backed off: the later pictures show it so.
      while (expert.phaseIndex < aboveApple) r = env.step(expert.act(r));
      env.scene.setJoint('drawer', -0.14);
      const narrower = await subgoalsFrom(env.snapshot(), aboveApple, task, seed, H, W, 'phase');
      expect(narrower[0]!.name).toBe('above apple');
      expect(maxDiff(above(narrower), above(board))).toBeGreaterThan(20);
    } finally {
      env.close();
    }
  });
});
