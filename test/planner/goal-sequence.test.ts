import { describe, expect, it } from 'vitest';
import { GoalSequence, gripperAt } from '../../src/planner/goal-sequence.js';
import type { Observation } from '../../src/core/types.js';
import type { Subgoal } from '../../src/sim/goals.js';

/** Observations on a line: the distance between two is how far apart their positions are. */
const at = (x: number): Observation => ({ image: new Uint8Array([x]), height: 1, width: 1, stamp: x });
const dist = (a: Observation, b: Observation) => Math.abs(a.image[0]! - b.image[0]!);
const sub = (x: number, stage: number, expertSteps = 2): Subgoal => ({ observation: at(x), stage, expertSteps, name: `at ${x}` });

describe('goal sequence (storyboard of subgoal pictures)', () => {
  const board = [sub(10, 0), sub(20, 0), sub(30, 0), sub(60, 1), sub(70, 1)];

  it('hands over the next picture when the camera is most of the way to the current one', () => {
    const s = new GoalSequence(board, dist, at(0), { reachRatio: 0.3, patienceFactor: 2, minPatience: 6 });
    expect(s.index).toBe(0);
    expect(s.update(at(5), 0)).toBeUndefined(); // 5 of 10 away: not yet
    expect(s.update(at(8), 0)).toEqual({ kind: 'reached', from: 0, to: 1 }); // 2 <= 0.3 x 10
    // Past subgoal 2 on the way to 3 does not count; at it does.
    expect(s.update(at(24), 0)).toBeUndefined();
    expect(s.update(at(21), 0)).toEqual({ kind: 'reached', from: 1, to: 2 });
  });

  it('never walks into the next stage by looks alone; the stage report does that', () => {
    const s = new GoalSequence(board, dist, at(0));
    s.update(at(9), 0);
    s.update(at(19), 0);
    expect(s.index).toBe(2);
    expect(s.update(at(30), 0)).toBeUndefined(); // last picture of stage 0, stage not reported done
    expect(s.update(at(30), 1)).toEqual({ kind: 'stage', from: 2, to: 3 });
    expect(s.current.stage).toBe(1);
  });

  it('passes over a subgoal that is not reached in time, and restarts a stage whose last picture times out', () => {
    const s = new GoalSequence(board, dist, at(0), { reachRatio: 0.3, patienceFactor: 2, minPatience: 3 });
    const events = [];
    for (let i = 0; i < 4; i++) events.push(s.update(at(0), 0)); // stuck far away: patience max(3, 2 x 2) = 4
    expect(events.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(s.update(at(0), 0)).toEqual({ kind: 'passed', from: 0, to: 1 });
    for (let i = 0; i < 5; i++) s.update(at(0), 0);
    expect(s.index).toBe(2);
    let last;
    for (let i = 0; i < 5; i++) last = s.update(at(0), 0) ?? last;
    expect(last).toEqual({ kind: 'restarted', from: 2, to: 0 });
  });

  it('jumps past several stages when the robot reports them done at once', () => {
    const s = new GoalSequence(board, dist, at(0));
    expect(s.update(at(0), 1)).toEqual({ kind: 'stage', from: 0, to: 3 });
    expect(s.update(at(0), 2)).toBeUndefined();
  });

  it('restage swaps in new pictures for the stages still to do, and the stage report then hands over the first of them', () => {
    const s = new GoalSequence(board, dist, at(0));
    s.update(at(9), 0);
    s.restage(1, [sub(40, 1), sub(45, 1), sub(50, 1)]);
    expect(s.subgoals.map((g) => g.observation.image[0])).toEqual([10, 20, 30, 40, 45, 50]);
    expect(s.update(at(30), 1)).toEqual({ kind: 'stage', from: 1, to: 3 });
    expect(s.current.observation.image[0]).toBe(40);
    expect(() => s.restage(1, [sub(90, 1)])).toThrow(/before the current picture's stage is done/);
    expect(() => new GoalSequence(board, dist, at(0)).restage(1, [sub(5, 0)])).toThrow(/stage 1 and later only/);
  });

  describe('gripper handover', () => {
    /** Every picture looks the same (distance 1 from everything), so only the gripper test can hand over. */
    const flat = () => 1;
    const posed = (x: number, opening = 0.09): Observation => ({ ...at(0), proprio: Float32Array.from([x, 0.2, 0.3, 0, opening]) });
    const tol = { pose: 0.02, finger: 0.005 };
    const board2 = [
      { observation: posed(0.5), stage: 0, expertSteps: 5, name: 'above' },
      { observation: posed(0.5, 0.021), stage: 0, expertSteps: 3, name: 'grasp' },
      { observation: posed(0.3, 0.021), stage: 0, expertSteps: 5, name: 'pulled' },
    ];

    it('needs both the position and the finger opening within tolerance', () => {
      expect(gripperAt(posed(0.51), posed(0.5), tol)).toBe(true); // 1 cm off
      expect(gripperAt(posed(0.53), posed(0.5), tol)).toBe(false); // 3 cm off
      expect(gripperAt(posed(0.5, 0.08), posed(0.5, 0.09), tol)).toBe(false); // fingers 1 cm apart from the picture's
      expect(gripperAt(at(0), posed(0.5), tol)).toBe(false); // no proprioception: never by pose
    });

    it('hands a picture over once the gripper is there, long before its patience runs out', () => {
      const s = new GoalSequence(board2, flat, posed(0.1), { reachRatio: 0.3, patienceFactor: 2, minPatience: 6, pose: tol });
      expect(s.update(posed(0.4), 0)).toBeUndefined();
      expect(s.update(posed(0.505), 0)).toEqual({ kind: 'reached', from: 0, to: 1 });
      expect(s.update(posed(0.5, 0.05), 0)).toBeUndefined(); // fingers still closing
      expect(s.update(posed(0.5, 0.022), 0)).toEqual({ kind: 'reached', from: 1, to: 2 });
      // Without the option the same observations wait for the patience (max(6, 2 x 5) = 10 steps).
      const looks = new GoalSequence(board2, flat, posed(0.1));
      expect(looks.update(posed(0.505), 0)).toBeUndefined();
    });

    it("holds a picture to its own tolerance when that is tighter than the preset's", () => {
      const precise = [{ ...board2[0]!, tolerance: 0.01 }, ...board2.slice(1)];
      const s = new GoalSequence(precise, flat, posed(0.1), { reachRatio: 0.3, patienceFactor: 2, minPatience: 6, pose: tol });
      expect(s.update(posed(0.515), 0)).toBeUndefined(); // 1.5 cm: within the preset's 2 cm, not the picture's 1 cm
      expect(s.update(posed(0.508), 0)).toEqual({ kind: 'reached', from: 0, to: 1 });
    });
  });
});
