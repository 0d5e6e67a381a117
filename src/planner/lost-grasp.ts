/**
 * Whether the fingers have just lost what they held (preset section `regrasp`), from the robot's
 * own finger opening alone.
 *
 * A grasp the action policy makes off an object's centre can hold for a while and then slip out
 * during the lift or the carry (docs/results.md): the fingers, still commanded closed, close
 * further, down to nothing. The storyboard then goes on to its carry and placement pictures with
 * empty fingers. Fingers count as holding while their opening stays between `holdingAbove` and
 * `holdingBelow` for two steps in a row (closing on nothing passes through that band in one), and
 * as having lost it when they then close narrower than `holdingAbove`. Opening wider than
 * `holdingBelow` is a release, and forgets the hold.
 */
import type { Observation } from '../core/types.js';
import { fingerOpening } from './gripper-position.js';

/** Preset section `regrasp` (metres of finger opening). */
export interface RegraspSettings {
  /** Fingers narrower than this hold nothing. */
  holdingAbove: number;
  /** Fingers wider than this are open (released). */
  holdingBelow: number;
}

/** Steps in a row the opening must stay in the holding band before a hold counts. */
export const HELD_STEPS = 2;

export class LostGrasp {
  private heldSteps = 0;

  constructor(readonly settings: RegraspSettings) {}

  /** After each step: true once, at the step on which fingers that held something close on nothing. */
  update(obs: Observation): boolean {
    const opening = fingerOpening(obs);
    if (opening === undefined) return false;
    const { holdingAbove, holdingBelow } = this.settings;
    if (opening > holdingAbove && opening < holdingBelow) {
      this.heldSteps++;
      return false;
    }
    const lost = opening <= holdingAbove && this.heldSteps >= HELD_STEPS;
    this.heldSteps = 0;
    return lost;
  }

  reset(): void {
    this.heldSteps = 0;
  }
}
