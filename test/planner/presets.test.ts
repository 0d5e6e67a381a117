import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  experimentPresetNames,
  loadPlannerPreset,
  presetNames,
  presetPlannerSettings,
  recordedGoalFields,
  validatePreset,
} from '../../src/planner/presets.js';
import { UserError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sfwm-preset-'));
const good = () => JSON.parse(JSON.stringify(loadPlannerPreset('wm-cem-fast'))) as Record<string, Record<string, unknown>>;
const escape = (s: string) => s.replace(/[/.[\]()]/g, '\\$&');

function write(name: string, content: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('planner presets', () => {
  it('ships wm-cem-fast, wm-cem-quality and wm-mppi, all valid, with the optimiser each names', () => {
    const names = presetNames();
    for (const n of ['wm-cem-fast', 'wm-cem-quality', 'wm-mppi']) expect(names).toContain(n);
    for (const n of names) expect(loadPlannerPreset(n).name).toBe(n);
    expect(loadPlannerPreset('wm-cem-fast').optimizer.kind).toBe('cem');
    expect(loadPlannerPreset('wm-mppi').optimizer.kind).toBe('mppi');
    const q = loadPlannerPreset('wm-cem-quality');
    const f = loadPlannerPreset('wm-cem-fast');
    expect(q.optimizer.candidates * q.optimizer.iterations).toBeGreaterThan(f.optimizer.candidates * f.optimizer.iterations);
  });

  it('reads a preset by path and keeps every field the world-model rollout needs', () => {
    const p = loadPlannerPreset(write('ok.json', good()));
    expect(p).toEqual(loadPlannerPreset('wm-cem-fast'));
    expect(Object.keys(p.rollout).sort()).toEqual(['flowSteps', 'integrator']);
    expect(Object.keys(p.cost).sort()).toEqual([
      'actionMagnitude',
      'change',
      'pixel',
      'pose',
      'pyramid',
      'reach',
      'representation',
      'terminal',
    ]);
    // A preset written before the pyramid, change and reach terms existed keeps its meaning: weight 0.
    const old = good();
    delete old.cost!.pyramid;
    delete old.cost!.change;
    delete old.cost!.reach;
    expect(loadPlannerPreset(write('old.json', old)).cost).toMatchObject({ pyramid: 0, change: 0, reach: 0 });
  });

  it('reads the optional gripper handover; presets without it hand over by looks alone', () => {
    expect(loadPlannerPreset('experiments/oracle-cem-handover').handover).toEqual({ pose: 0.02, finger: 0.005 });
    expect(loadPlannerPreset('experiments/oracle-cem-pose').handover).toBeUndefined();
  });

  it("keeps every preset that reads the goal pictures' recorded gripper positions or states out of the product presets", () => {
    const product = presetNames();
    expect(product).toEqual(expect.arrayContaining(['wm-cem-fast', 'wm-demo', 'wm-policy']));
    for (const n of product) expect([n, recordedGoalFields(loadPlannerPreset(n))]).toEqual([n, []]);
    const experiments = experimentPresetNames();
    expect(experiments).toContain('experiments/oracle-cem-straight');
    for (const n of experiments) {
      const p = loadPlannerPreset(n);
      expect(p.name).toBe(n);
      // An experiment is named oracle-... exactly when it reads what the storyboard recorded.
      expect([n, recordedGoalFields(p).length > 0]).toEqual([n, n.startsWith('experiments/oracle-')]);
    }
    expect(recordedGoalFields(loadPlannerPreset('experiments/oracle-cem-straight'))).toEqual([
      'cost.pose',
      'handover',
      'poseProposal',
      'actions.gripper',
      'actions.carry',
    ]);
    expect(recordedGoalFields(loadPlannerPreset('experiments/oracle-cem-storyboard'))).toEqual(['actions.gripper']);
    // Handing grasps to the policy decides by the goal's gripper position and state: recorded ones make it an oracle too.
    const grasping = { ...good(), policyGrasp: { drop: 0.05, across: 0.05, candidates: 1, noise: 0 } };
    expect(recordedGoalFields(loadPlannerPreset(write('grasp-recorded.json', grasping)))).toEqual(['policyGrasp']);
    expect(recordedGoalFields(loadPlannerPreset(write('grasp-read.json', { ...grasping, goalState: 'read' })))).toEqual([]);
  });

  it('the default preset pushes on at reached closed-gripper goals, as experiments/read-push, which the nineteen-set run measured', () => {
    const { name: _a, description: _b, ...shipped } = loadPlannerPreset('wm-cem-read');
    const { name: _c, description: _d, ...measured } = loadPlannerPreset('experiments/read-push');
    expect(shipped).toEqual(measured);
    expect(shipped.closedGoalPush).toEqual({ step: 0.03, reach: 0.01, max: 0.15 });
  });

  it('loads an experiment only by its experiments/ name, and says so for a bare one', () => {
    expect(() => loadPlannerPreset('oracle-cem-straight')).toThrow(UserError);
    expect(() => loadPlannerPreset('oracle-cem-straight')).toThrow(
      /planner preset 'oracle-cem-straight' is an experiment, not a product preset: did you mean experiments\/oracle-cem-straight\?/,
    );
    expect(() => loadPlannerPreset('experiments/wm-nope')).toThrow(
      /planner preset 'experiments\/wm-nope' not found .*experiments: .*experiments\/oracle-cem-straight/,
    );
  });

  it('gives createOptimizingPlanner its settings for a model action dimension', () => {
    const p = loadPlannerPreset('wm-mppi');
    const s = presetPlannerSettings(p, 7);
    expect(s.optimizer).toEqual({ ...p.optimizer, actionDim: 7 });
    expect([s.budgetMs, s.graceMs, s.executeSteps]).toEqual([p.budgetMs, p.graceMs, p.executeSteps]);
    expect(() => presetPlannerSettings(p, 0)).toThrow(/positive integer, got 0/);
  });

  const cases: [string, (r: Record<string, Record<string, unknown>>) => void, string][] = [
    [
      'elites above the population',
      (r) => (r.optimizer!.elites = 100),
      `'optimizer.elites' must be an integer in [1, ${good().optimizer!.candidates as number}], got 100`,
    ],
    ['a fractional horizon', (r) => (r.optimizer!.horizon = 2.5), `'optimizer.horizon' must be an integer in [1, 64], got 2.5`],
    ['an unknown optimiser', (r) => (r.optimizer!.kind = 'mpc'), `'optimizer.kind' must be "cem" or "mppi" or "policy", got "mpc"`],
    ['a missing integrator', (r) => delete r.rollout!.integrator, `'rollout.integrator' must be "euler" or "heun", got undefined`],
    [
      'a bad warm-start pad',
      (r) => (r.optimizer!.warmStartPad = 'last'),
      `'optimizer.warmStartPad' must be "repeat" or "zero", got "last"`,
    ],
    [
      'a proposal fraction above 1',
      (r) => (r.optimizer!.proposalFraction = 1.5),
      `'optimizer.proposalFraction' must be a number in [0, 1], got 1.5`,
    ],
    [
      'an action guidance above 10',
      (r) => (r.rollout!.actionGuidance = 20),
      `'rollout.actionGuidance' must be a number in [0, 10], got 20`,
    ],
    ['a negative pixel weight', (r) => (r.cost!.pixel = -1), `'cost.pixel' must be a number in [0, Infinity], got -1`],
    ['a negative reach weight', (r) => (r.cost!.reach = -0.5), `'cost.reach' must be a number in [0, Infinity], got -0.5`],
    ['a terminal weight above 1', (r) => (r.cost!.terminal = 2), `'cost.terminal' must be a number in [0, 1], got 2`],
    [
      'a budget given as a string',
      (r) => ((r as Record<string, unknown>).budgetMs = '1500'),
      `'budgetMs' must be a number in [1, Infinity], got "1500"`,
    ],
    [
      'more executed steps than the horizon',
      (r) => ((r as Record<string, unknown>).executeSteps = 3),
      `'executeSteps' must be an integer in [1, 2], got 3`,
    ],
    ['minStd above initStd', (r) => (r.optimizer!.minStd = 0.9), `'optimizer.minStd' (0.9) must not exceed 'optimizer.initStd' (0.6)`],
    ['a misspelt field', (r) => (r.optimizer!.candidate = 8), `'optimizer.candidate' is not a preset field (optimizer has: kind, horizon`],
    [
      'an unknown top-level field',
      (r) => ((r as Record<string, unknown>).budget = 8),
      `'budget' is not a preset field (top level has: name`,
    ],
    ['a missing section', (r) => delete r.cost, `'cost' must be an object, got undefined`],
    ['a non-string name', (r) => ((r as Record<string, unknown>).name = 5), `'name' must be a string, got 5`],
    [
      'a gripper mode that does not exist',
      (r) => ((r as Record<string, unknown>).actions = { gripper: 'auto' }),
      `'actions.gripper' must be "plan" or "goal", got "auto"`,
    ],
    [
      'a handover tolerance above a metre',
      (r) => ((r as Record<string, unknown>).handover = { pose: 2, finger: 0.005 }),
      `'handover.pose' must be a number in [0, 1], got 2`,
    ],
    [
      'a handover without its finger tolerance',
      (r) => ((r as Record<string, unknown>).handover = { pose: 0.02 }),
      `'handover.finger' must be a number in [0, 1], got undefined`,
    ],
    [
      'a carrying speed of zero',
      (r) => ((r as Record<string, unknown>).actions = { carry: { speed: 0, minOpening: 0 } }),
      `'actions.carry.speed' must be a number in [0.001, 1], got 0`,
    ],
    [
      'a carry without its opening',
      (r) => ((r as Record<string, unknown>).actions = { carry: { speed: 0.03 } }),
      `'actions.carry.minOpening' must be a number in [-1, 1], got undefined`,
    ],
    [
      'a policy grasp that ranks a fractional number of candidates',
      (r) => ((r as Record<string, unknown>).policyGrasp = { drop: 0.05, across: 0.05, candidates: 2.5, noise: 0.5 }),
      `'policyGrasp.candidates' must be an integer in [1, 256], got 2.5`,
    ],
    [
      'a policy grasp without its noise',
      (r) => ((r as Record<string, unknown>).policyGrasp = { drop: 0.05, across: 0.05, candidates: 1 }),
      `'policyGrasp.noise' must be a number in [0, 2], got undefined`,
    ],
    [
      'a held action without a number',
      (r) => ((r as Record<string, unknown>).actions = { hold: { 'rotation_delta.yaw': 'zero' } }),
      `'actions.hold.rotation_delta.yaw' must be a number`,
    ],
  ];
  for (const [what, edit, message] of cases) {
    it(`names the file and field of ${what}`, () => {
      const raw = good();
      edit(raw);
      const file = write(`${what.replace(/\W+/g, '-')}.json`, raw);
      expect(() => loadPlannerPreset(file)).toThrow(new RegExp(`^${escape(file)}: ${escape(message)}`));
      expect(() => loadPlannerPreset(file)).toThrow(UserError);
    });
  }

  it('rejects a file that is not JSON or not an object, and names the shipped presets for an unknown name', () => {
    const notJson = write('broken.json', '{"optimizer": ');
    expect(() => loadPlannerPreset(notJson)).toThrow(new RegExp(`^${escape(notJson)}: not valid JSON`));
    expect(() => validatePreset([1, 2], 'x.json')).toThrow(/^x\.json: a planner preset must be a JSON object/);
    expect(() => loadPlannerPreset('wm-nope')).toThrow(/planner preset 'wm-nope' not found .*shipped presets: .*wm-cem-fast/);
    expect(() => loadPlannerPreset(join(dir, 'missing.json'))).toThrow(/missing\.json: planner preset not found/);
  });
});
