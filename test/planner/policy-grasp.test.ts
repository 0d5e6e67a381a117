import { describe, expect, it } from 'vitest';
import type { Goal, Observation } from '../../src/core/types.js';
import type { CostFactory } from '../../src/planner/plan-model.js';
import { graspingPlanStep, graspPreset, isGraspGoal, type GraspPolicy } from '../../src/planner/policy-grasp.js';
import { validatePreset, type PlannerPreset, type PolicyGraspSettings } from '../../src/planner/presets.js';
import { ARM_AND_GRIPPER_STATS, rawTestPreset } from '../helpers/presets.js';

const stats = ARM_AND_GRIPPER_STATS;
const names = stats.names;
const FULL = 0.09;
const settings: PolicyGraspSettings = { drop: 0.05, across: 0.05, candidates: 1, noise: 0.5 };

function preset(grasp: Partial<PolicyGraspSettings> | undefined): PlannerPreset {
  return validatePreset(
    rawTestPreset({
      cost: { representation: 0, pixel: 1, actionMagnitude: 0, terminal: 0, pose: 5 },
      actions: { gripper: 'goal' },
      goalState: 'read',
      ...(grasp && { policyGrasp: { ...settings, ...grasp } }),
    }),
    'grasp.json',
  );
}

const picture = (at: [number, number, number], opening: number): Observation => ({
  image: new Uint8Array(2 * 2 * 3),
  width: 2,
  height: 2,
  stamp: 0,
  proprio: Float32Array.from([...at, 0, opening]),
});
const goal = (at: [number, number, number], gripper: 'open' | 'closed'): Goal => ({
  images: [picture(at, gripper === 'open' ? FULL : 0.02)],
  gripper,
  instruction: 'pick coke can',
});
const OPEN = FULL;

describe('grasps by the action policy (policyGrasp)', () => {
  it('takes a picture that shows the gripper closed, or straight below it, while the fingers are open; nothing else', () => {
    const at: [number, number, number] = [0.4, 0, 0.25];
    const robot = picture(at, OPEN);
    expect(isGraspGoal(settings, robot, goal([0.45, 0.1, 0.25], 'closed'), FULL)).toBe(true);
    expect(isGraspGoal(settings, robot, goal([0.41, 0.01, 0.15], 'open'), FULL)).toBe(true);
    // Too little below, too far to the side, or above: the search's.
    expect(isGraspGoal(settings, robot, goal([0.41, 0.01, 0.22], 'open'), FULL)).toBe(false);
    expect(isGraspGoal(settings, robot, goal([0.41, 0.08, 0.15], 'open'), FULL)).toBe(false);
    expect(isGraspGoal(settings, robot, goal([0.4, 0, 0.35], 'open'), FULL)).toBe(false);
    // Fingers already closed on something (a carry, a pull): never the policy's.
    expect(isGraspGoal(settings, picture(at, 0.048), goal([0.45, 0.1, 0.25], 'closed'), FULL)).toBe(false);
    expect(isGraspGoal(settings, picture(at, 0.048), goal([0.41, 0.01, 0.15], 'open'), FULL)).toBe(false);
    // Without the robot's state nothing is known of the fingers.
    expect(isGraspGoal(settings, { ...robot, proprio: undefined }, goal([0.45, 0.1, 0.25], 'closed'), FULL)).toBe(false);
  });

  it('with instructionWords, takes grasps only of instructions that name one of the words', () => {
    const robot = picture([0.4, 0, 0.25], OPEN);
    const drawerOnly = { ...settings, instructionWords: ['drawer'] };
    const closed = goal([0.45, 0.1, 0.25], 'closed');
    expect(isGraspGoal(drawerOnly, robot, closed, FULL)).toBe(false); // 'pick coke can': the search's
    expect(isGraspGoal(drawerOnly, robot, { ...closed, instruction: 'open top Drawer' }, FULL)).toBe(true);
    expect(isGraspGoal(drawerOnly, robot, { ...closed, instruction: 'open the drawers' }, FULL)).toBe(false); // whole words only
    expect(isGraspGoal(drawerOnly, robot, { ...closed, instruction: undefined }, FULL)).toBe(false);
    expect(isGraspGoal(settings, robot, closed, FULL)).toBe(true);
    expect(preset({ instructionWords: [' Drawer '] }).policyGrasp!.instructionWords).toEqual(['drawer']);
    for (const bad of [[], 'drawer', [''], [3], ['top drawer'], ['coke-can']])
      expect(() => preset({ instructionWords: bad as string[] })).toThrow(
        /policyGrasp\.instructionWords.*list of one or more words of letters and digits/,
      );
  });

  it('plans grasps without the pose term, the pinned gripper or the carry cap, from the policy alone', () => {
    const p = graspPreset(preset(undefined), settings);
    expect(p.optimizer).toMatchObject({ kind: 'policy', iterations: 1, proposalFraction: 1 });
    expect(graspPreset(preset(undefined), { ...settings, candidates: 5 }).optimizer).toMatchObject({
      kind: 'cem',
      candidates: 5,
      iterations: 1,
      elites: 1,
      proposalFraction: 1,
    });
    expect([p.cost.pose, p.cost.pixel, p.poseProposal, p.actions.gripper, p.actions.carry]).toEqual([0, 1, false, 'plan', undefined]);
  });

  /** A policy whose samples are row i: -0.4 + 0.2 i at noise 0.5 (and 0.7 everywhere at any other noise). */
  const policy: GraspPolicy = {
    cfg: { fullOpening: FULL },
    withNoise: (noise) => ({
      source: (_obs, instruction, horizon) => async (n) => {
        expect(instruction).toBe('pick coke can');
        return Float32Array.from({ length: n * horizon * names.length }, (_, k) =>
          noise === 0.5 ? -0.4 + 0.2 * Math.floor(k / (horizon * names.length)) : 0.7,
        );
      },
    }),
  };
  /** Cost: distance of every value to `target`; records the pose weight each plan was made with. */
  function costs(target: number, poses: number[]): (s: PlannerPreset) => CostFactory {
    return (s) => () => {
      poses.push(s.cost.pose);
      return {
        cost: async (c, n) => {
          const len = c.length / n;
          return Float32Array.from({ length: n }, (_, i) =>
            c.subarray(i * len, (i + 1) * len).reduce((a, v) => a + Math.abs(v - target), 0),
          );
        },
        dispose() {},
      };
    };
  }

  it("executes the policy's chunk on a grasp picture and searches every other, deciding once per picture", async () => {
    const poses: number[] = [];
    const step = graspingPlanStep(preset({}), stats, costs(0, poses), policy, { seed: 1, lockstep: true })!;
    const robot = picture([0.4, 0, 0.25], OPEN);
    const grasp = goal([0.45, 0.1, 0.25], 'closed');
    const p1 = await step.plan(robot, grasp);
    expect(Array.from(p1.sequence!)).toEqual(Array(8).fill(-0.4).map(Math.fround));
    // The fingers close under the same picture: still the policy's, so a grasp is not handed back half-way.
    const p2 = await step.plan(picture([0.45, 0.1, 0.2], 0.048), grasp);
    expect(p2.sequence![0]).toBeCloseTo(-0.4, 6);
    // The next picture (a lift, fingers closed): the search, with the gripper pinned to the picture's and the pose term.
    const lift = goal([0.45, 0.1, 0.35], 'closed');
    const p3 = await step.plan(picture([0.45, 0.1, 0.2], 0.048), lift);
    expect([p3.sequence![3], p3.sequence![7]]).toEqual([1, 1]);
    expect(p3.sequence![0]).not.toBeCloseTo(-0.4, 2);
    expect(p3.candidatesEvaluated).toBe(12);
    expect(poses).toEqual([0, 0, 5]);
  });

  it('with inPlace, takes a picture that asks for no move at the end of a descent, even read open', async () => {
    const robot = picture([0.4, 0, 0.12], OPEN);
    const here = goal([0.41, 0.01, 0.13], 'open');
    expect(isGraspGoal(settings, robot, here, FULL, 0.1)).toBe(false);
    const inPlace = { ...settings, inPlace: true };
    expect(isGraspGoal(inPlace, robot, here, FULL, 0.1)).toBe(true);
    // Not after a short or no descent, not 6 cm away, not with fingers closed on something.
    expect(isGraspGoal(inPlace, robot, here, FULL, 0.03)).toBe(false);
    expect(isGraspGoal(inPlace, robot, goal([0.46, 0, 0.12], 'open'), FULL, 0.1)).toBe(false);
    expect(isGraspGoal(inPlace, picture([0.4, 0, 0.12], 0.048), here, FULL, 0.1)).toBe(false);

    // In a plan step, the descent is measured from where the gripper was when the previous picture came.
    const poses: number[] = [];
    const step = graspingPlanStep(preset({ inPlace: true }), stats, costs(0, poses), policy, { seed: 1, lockstep: true })!;
    const above = goal([0.4, 0, 0.25], 'open');
    await step.plan(picture([0.4, 0.1, 0.26], OPEN), above);
    const descend = goal([0.4, 0, 0.22], 'open');
    await step.plan(picture([0.4, 0, 0.25], OPEN), descend);
    // Down 13 cm since the descent's picture came: the in-place picture is the policy's.
    const p = await step.plan(picture([0.4, 0, 0.12], OPEN), here);
    expect(p.sequence![0]).toBeCloseTo(-0.4, 6);
    // After a reset the descent is forgotten: the same kind of picture, first of an episode, is the search's.
    step.reset(2);
    const q = await step.plan(picture([0.4, 0, 0.12], OPEN), goal([0.41, 0.01, 0.13], 'open'));
    expect(q.sequence![0]).not.toBeCloseTo(-0.4, 2);
    expect(poses).toEqual([5, 5, 0, 5]);
    expect(() => validatePreset(rawTestPreset({ goalState: 'read', policyGrasp: { ...settings, inPlace: 1 } }), 'g.json')).toThrow(
      /g\.json: 'policyGrasp\.inPlace' must be true or false, got 1/,
    );
  });

  it("ranks the policy's samples by the cost when asked for more than one candidate", async () => {
    const poses: number[] = [];
    // Target -0.2: sample row 1 (-0.4 + 0.2) is exact.
    const step = graspingPlanStep(preset({ candidates: 4 }), stats, costs(-0.2, poses), policy, { seed: 1, lockstep: true })!;
    const p = await step.plan(picture([0.4, 0, 0.25], OPEN), goal([0.41, 0.01, 0.15], 'open'));
    expect(p.candidatesEvaluated).toBe(4);
    p.sequence!.forEach((v) => expect(v).toBeCloseTo(-0.2, 6));
    // Target -0.45: sample row 0 is nearest. Slot 0 is the search's mean (no move on a first plan), then 3 samples.
    const again = graspingPlanStep(preset({ candidates: 4 }), stats, costs(-0.45, poses), policy, { seed: 1, lockstep: true })!;
    const q = await again.plan(picture([0.4, 0, 0.25], OPEN), goal([0.41, 0.01, 0.15], 'open'));
    q.sequence!.forEach((v) => expect(v).toBeCloseTo(-0.4, 6));
    expect(poses).toEqual([0, 0]);
  });

  it('after an empty grasp opens the fingers, then hands every picture to the policy until it has held something and let go (takeover)', async () => {
    const poses: number[] = [];
    const takeover = { emptyBelow: 0.01, openAbove: 0.075 };
    const step = graspingPlanStep(preset({ takeover }), stats, costs(0, poses), policy, { seed: 1, lockstep: true })!;
    /** Who planned: the search, or the policy (its row-0 sample) with its own gripper command or the fingers pinned open. */
    const who = async (obs: Observation, g: Goal) => {
      const seq = (await step.plan(obs, g)).sequence!;
      if (seq[0] !== Math.fround(-0.4)) return 'search';
      return seq[3] === -1 ? 'policy, open' : 'policy';
    };
    const lift = goal([0.45, 0.1, 0.35], 'closed');
    // A carry picture with the fingers holding a block: the search's.
    expect(await who(picture([0.45, 0.1, 0.2], 0.048), lift)).toBe('search');
    // The block slips out and the fingers shut: the policy's, with the fingers opened first.
    expect(await who(picture([0.45, 0.1, 0.2], 0.002), lift)).toBe('policy, open');
    expect(await who(picture([0.45, 0.1, 0.2], 0.03), lift)).toBe('policy, open');
    // Open again: the policy's own, for this picture and the next ones.
    const place = goal([0.6, -0.2, 0.2], 'closed');
    expect(await who(picture([0.45, 0.1, 0.2], OPEN), place)).toBe('policy');
    // Opening without having held anything two steps keeps it the policy's; a hold of two steps and a release hand it back.
    expect(await who(picture([0.45, 0.1, 0.1], 0.05), place)).toBe('policy');
    expect(await who(picture([0.45, 0.1, 0.1], OPEN), place)).toBe('policy');
    // (Fingers on an object stop at its width: steady to within 0.8 mm a step.)
    for (const opening of [0.05, 0.048, 0.048, 0.0485]) expect(await who(picture([0.5, 0, 0.15], opening), place)).toBe('policy');
    expect(await who(picture([0.6, -0.2, 0.2], OPEN), goal([0.6, -0.2, 0.3], 'open'))).toBe('search');
    expect(poses).toEqual([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
    // Fingers shut from the first picture on (a push with closed fingers) are no empty grasp; reset forgets a takeover.
    const fresh = graspingPlanStep(preset({ takeover }), stats, costs(0, []), policy, { seed: 1, lockstep: true })!;
    const first = async (opening: number) => (await fresh.plan(picture([0.45, 0.1, 0.2], opening), place)).sequence![3];
    expect(await first(0)).toBe(1);
    await first(0.048);
    expect(await first(0)).toBe(-1);
    fresh.reset(1);
    expect(await first(0)).toBe(1);
    // A takeover whose opening is not above its empty threshold is refused, naming the field.
    expect(() => preset({ takeover: { emptyBelow: 0.05, openAbove: 0.02 } })).toThrow(
      "grasp.json: 'policyGrasp.takeover.openAbove' must be above emptyBelow (0.05), got 0.02",
    );
  });

  it("with handBack 'hold', regrasps: the policy grasps again after an empty grasp and the search takes back what it holds", async () => {
    const takeover = { emptyBelow: 0.01, openAbove: 0.075, handBack: 'hold' as const };
    const step = graspingPlanStep(preset({ takeover }), stats, costs(0, []), policy, { seed: 1, lockstep: true })!;
    const who = async (obs: Observation, g: Goal) => {
      const seq = (await step.plan(obs, g)).sequence!;
      if (seq[0] !== Math.fround(-0.4)) return 'search';
      return seq[3] === -1 ? 'policy, open' : 'policy';
    };
    const lift = goal([0.45, 0.1, 0.35], 'closed');
    const carry = goal([0.6, -0.2, 0.3], 'closed');
    expect(await who(picture([0.45, 0.1, 0.2], 0.048), lift)).toBe('search');
    // Shut on nothing: the fingers open first, then the policy grasps.
    expect(await who(picture([0.45, 0.1, 0.2], 0.002), lift)).toBe('policy, open');
    expect(await who(picture([0.45, 0.1, 0.2], OPEN), lift)).toBe('policy');
    // Shut on nothing again during the regrasp: open and try again (the policy would carry empty shut fingers).
    expect(await who(picture([0.45, 0.1, 0.12], 0.002), lift)).toBe('policy, open');
    expect(await who(picture([0.45, 0.1, 0.12], OPEN), lift)).toBe('policy');
    // Fingers moving through the holding band are closing, not holding: still the policy's.
    expect(await who(picture([0.46, 0.1, 0.12], 0.06), lift)).toBe('policy');
    expect(await who(picture([0.46, 0.1, 0.12], 0.05), lift)).toBe('policy');
    // Stopped there (the object's width): one steady step is not yet a hold, two are, and the search has the
    // storyboard again, with the fingers still closed.
    expect(await who(picture([0.46, 0.1, 0.12], 0.0495), lift)).toBe('policy');
    const back = await step.plan(picture([0.46, 0.1, 0.12], 0.049), carry);
    expect(back.sequence![0]).not.toBe(Math.fround(-0.4));
    expect(back.sequence![3]).toBe(1);
    // It slips out again: another regrasp.
    expect(await who(picture([0.5, 0, 0.2], 0.003), carry)).toBe('policy, open');
    // Unknown hand-backs are refused, naming the field.
    expect(() => preset({ takeover: { emptyBelow: 0.01, openAbove: 0.075, handBack: 'soon' as never } })).toThrow(
      `grasp.json: 'policyGrasp.takeover.handBack' must be "release" or "hold", got "soon"`,
    );
  });

  it("with emptyAt 'lift', leaves a push with closed fingers alone and regrasps at a lift with empty fingers, or after a slip", async () => {
    const takeover = { emptyBelow: 0.01, openAbove: 0.075, handBack: 'hold' as const, emptyAt: 'lift' as const };
    const make = () => graspingPlanStep(preset({ takeover }), stats, costs(0, []), policy, { seed: 1, lockstep: true })!;
    let step = make();
    const reopens = async (obs: Observation, g: Goal) => {
      const seq = (await step.plan(obs, g)).sequence!;
      return seq[0] === Math.fround(-0.4) && seq[3] === -1;
    };
    // A push: the fingers shut slowly on nothing in front of a knob (1.2 mm a step, as the policy's did on drawer-chain
    // 15047), then the pictures go down and along: no takeover.
    const push = goal([0.5, 0, 0.2], 'closed');
    for (const opening of [OPEN, 0.0886, 0.087, 0.0768, 0.0757, 0.0746, 0.0735, 0.0724, 0])
      expect(await reopens(picture([0.5, 0, 0.2], opening), push)).toBe(false);
    expect(await reopens(picture([0.5, 0, 0.2], 0.002), goal([0.5, 0, 0.15], 'closed'))).toBe(false);
    expect(await reopens(picture([0.55, 0, 0.15], 0.002), goal([0.6, 0, 0.15], 'closed'))).toBe(false);
    // An empty grasp: the fingers shut on nothing, and the lift picture (read closed, 10 cm up) comes: regrasp.
    step = make();
    const grasp = goal([0.45, 0.1, 0.1], 'closed');
    expect(await reopens(picture([0.45, 0.1, 0.1], OPEN), grasp)).toBe(false);
    expect(await reopens(picture([0.45, 0.1, 0.1], 0.002), grasp)).toBe(false);
    expect(await reopens(picture([0.45, 0.1, 0.1], 0.002), goal([0.45, 0.1, 0.2], 'closed'))).toBe(true);
    // A slip: held steady two steps, then shut on nothing, with no lift asked for: regrasp.
    step = make();
    const carry = goal([0.6, -0.2, 0.2], 'closed');
    for (const opening of [0.048, 0.048, 0.048]) expect(await reopens(picture([0.5, 0, 0.2], opening), carry)).toBe(false);
    expect(await reopens(picture([0.52, 0, 0.2], 0.002), carry)).toBe(true);
    // A block taken by its corner: the fingers close fast onto it, slide off its edge 1.5-2 mm a step, and shut: regrasp.
    step = make();
    for (const opening of [OPEN, 0.0407, 0.0388, 0.0372, 0.0357]) expect(await reopens(picture([0.5, 0, 0.2], opening), carry)).toBe(false);
    expect(await reopens(picture([0.52, 0, 0.2], 0.002), carry)).toBe(true);
    // Fingers shut from the first picture on are never empty fingers, even at a lift.
    step = make();
    expect(await reopens(picture([0.45, 0.1, 0.1], 0), grasp)).toBe(false);
    expect(await reopens(picture([0.45, 0.1, 0.1], 0), goal([0.45, 0.1, 0.2], 'closed'))).toBe(false);
    expect(() => preset({ takeover: { ...takeover, emptyAt: 'never' as never } })).toThrow(
      `grasp.json: 'policyGrasp.takeover.emptyAt' must be "closing" or "lift", got "never"`,
    );
  });

  it('is not made for a preset without the section, and needs a policy for one with it', () => {
    expect(graspingPlanStep(preset(undefined), stats, costs(0, []), policy, { seed: 1 })).toBeUndefined();
    expect(() => graspingPlanStep(preset({}), stats, costs(0, []), undefined, { seed: 1 })).toThrow(
      /hands its grasps to the action policy/,
    );
  });
});
