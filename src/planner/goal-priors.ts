/**
 * What the robot's own state says about a goal picture the state reader has read (preset section
 * `goalPriors`, goalState "read" only): fingers that have just closed on something stay closed.
 *
 * The reader sometimes sees closed fingers open where the held object hides half of them: in a
 * grasp picture, and in the carry picture that follows it (docs/results.md). The planner would
 * then open the fingers on the object it has just picked up. A release comes after a carry or a
 * pull, away from where the object was picked up. So while the fingers hold something (wider than
 * `holdingAbove`, narrower than the reader's closed threshold) and the gripper is still within
 * `atGrasp` of where they closed, a picture read as open is taken as closed. Farther away the
 * reading stands, so a release the goal asks for (after a stage restart, too) still happens.
 *
 * Each goal is decided once, when it first comes (as the policy's grasps are), so a goal does not
 * change under a move that is under way.
 */
import type { Goal, Observation } from '../core/types.js';
import { distance, fingerOpening, gripperPosition, type Vec3 } from './gripper-position.js';

/** Preset section `goalPriors` (metres). */
export interface GoalPriorSettings {
  /** Fingers closed narrower than this hold nothing. */
  holdingAbove: number;
  /** How far the gripper may have moved since its fingers closed on something and still be at the grasp. */
  atGrasp: number;
}

export class GoalPriors {
  /** Where the fingers closed on what they hold (undefined while they hold nothing). */
  private closedAt?: Vec3;
  private readonly goals = new WeakMap<Goal, Goal>();

  /** `closedBelow`: finger opening (m) under which the reader calls fingers closed. */
  constructor(
    readonly settings: GoalPriorSettings,
    readonly closedBelow: number,
  ) {}

  /** The read goal as the robot's state corrects it; call at every plan, since it tracks where the fingers closed. */
  apply(obs: Observation, goal: Goal): Goal {
    const at = gripperPosition(obs);
    const opening = fingerOpening(obs);
    const holding = at !== undefined && opening !== undefined && opening > this.settings.holdingAbove && opening < this.closedBelow;
    this.closedAt = holding ? (this.closedAt ?? at) : undefined;
    let g = this.goals.get(goal);
    if (!g) {
      g = at && this.closedAt ? this.correct(goal, at, this.closedAt) : goal;
      this.goals.set(goal, g);
    }
    return g;
  }

  /** `at`: where the gripper is; `closedAt`: where its fingers closed on what they hold. */
  private correct(goal: Goal, at: Vec3, closedAt: Vec3): Goal {
    return goal.gripper === 'open' && distance(at, closedAt) <= this.settings.atGrasp ? { ...goal, gripper: 'closed' } : goal;
  }

  /** A new episode: nothing held. */
  reset(): void {
    this.closedAt = undefined;
  }
}
