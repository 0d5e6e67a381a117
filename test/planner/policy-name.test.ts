import { describe, expect, it } from 'vitest';
import { needsCheckpoint, plannerPolicy, resolvePolicy } from '../../src/planner/policy-name.js';
import { UserError } from '../../src/core/errors.js';

describe('policy names', () => {
  it('reads scripted, world-model and oracle names into one descriptor', () => {
    expect(resolvePolicy('expert')).toEqual({ kind: 'scripted', policy: 'expert' });
    expect(resolvePolicy('random')).toEqual({ kind: 'scripted', policy: 'random' });
    expect(resolvePolicy('wm')).toEqual({ kind: 'world-model', preset: 'wm-cem-read' });
    expect(resolvePolicy('wm-mppi')).toEqual({ kind: 'world-model', preset: 'wm-mppi' });
    expect(resolvePolicy('my/presets/slow.json')).toEqual({ kind: 'world-model', preset: 'my/presets/slow.json' });
    expect(resolvePolicy('oracle')).toEqual({ kind: 'oracle', preset: 'wm-cem-read' });
    expect(resolvePolicy('oracle:wm-mppi')).toEqual({ kind: 'oracle', preset: 'wm-mppi' });
    expect(resolvePolicy('oracle:wm')).toEqual({ kind: 'oracle', preset: 'wm-cem-read' });
  });

  it('takes the checkpoint from PRESET@RUN and refuses it on scripted policies', () => {
    expect(resolvePolicy('wm-cem-quality@runs/ablation')).toEqual({
      kind: 'world-model',
      preset: 'wm-cem-quality',
      checkpoint: 'runs/ablation',
    });
    expect(resolvePolicy('oracle:wm-mppi@runs/a')).toEqual({ kind: 'oracle', preset: 'wm-mppi', checkpoint: 'runs/a' });
    expect(() => resolvePolicy('expert@runs/a')).toThrow(new UserError("policy 'expert@runs/a': scripted policies take no checkpoint"));
    expect(() => resolvePolicy('wm@')).toThrow(new UserError("policy 'wm@': expected PRESET@RUN_DIRECTORY"));
    expect(() => resolvePolicy('@runs/a')).toThrow(UserError);
  });

  it('reads a planner name without @ as it is given, scripted names included', () => {
    // `plan --policy expert` asks for a preset named expert (and gets the preset loader's error).
    expect(plannerPolicy('expert')).toEqual({ kind: 'world-model', preset: 'expert' });
    expect(plannerPolicy('wm@x')).toEqual({ kind: 'world-model', preset: 'wm@x' });
  });

  it("says which policies need the caller's --checkpoint", () => {
    expect(needsCheckpoint('expert')).toBe(false);
    expect(needsCheckpoint('wm')).toBe(true);
    expect(needsCheckpoint('oracle')).toBe(true);
    expect(needsCheckpoint('wm@runs/a')).toBe(false);
  });
});
