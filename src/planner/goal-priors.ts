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
 * With `setDown`: a goal that comes while the held object is carried more than `carriedAbove`
 * above where the fingers closed, and that the reader sees within `within` of that height, sets
 * the object down on the surface it was picked up from. The reading slides along the camera's ray
 * through it to the height where the fingers closed: the picture fixes the ray, and the reader's
 * error lies mostly along it (move-near's placement picture: 2.64 cm mean error read, 1.98 cm
 * slid, tuning seeds 8977-8999). The goal is taken as closed even where the reader sees it open:
 * an object is set down before it is let go, and the reader sometimes sees a placement's fingers
 * open, which dropped the block from 13 cm onto the other block (move-near 8989). A release that
 * follows comes with the gripper down at the set-down, so it is read as it looks. A placement far
 * above or below that height (into a drawer) keeps its reading, as do the lift after a grasp (it
 * comes at the grasp's height) and every goal while the fingers hold nothing.
 *
 * Each goal is decided once, when it first comes (as the policy's grasps are), so a goal does not
 * change under a move that is under way.
 */
import { slideToHeight, type Camera } from '../core/camera.js';
import type { Goal, Observation } from '../core/types.js';
import { distance, fingerOpening, gripperPosition, type Vec3 } from './gripper-position.js';

/** Preset section `goalPriors` (metres). */
export interface GoalPriorSettings {
  /** Fingers closed narrower than this hold nothing. */
  holdingAbove: number;
  /** How far the gripper may have moved since its fingers closed on something and still be at the grasp. */
  atGrasp: number;
  /** Set a carried object down at the height it was picked up from (optional; needs the camera's pose). */
  setDown?: SetDownSettings;
}

/** Preset section `goalPriors.setDown` (metres). */
export interface SetDownSettings {
  /** How far above where the fingers closed the gripper must be when a goal comes for that goal to count as a set-down. */
  carriedAbove: number;
  /** How near that height the reader must see the goal's gripper for it to be slid there. */
  within: number;
}

export class GoalPriors {
  /** Where the fingers closed on what they hold (undefined while they hold nothing). */
  private closedAt?: Vec3;
  private readonly goals = new WeakMap<Goal, Goal>();

  /**
   * `closedBelow`: finger opening (m) under which the reader calls fingers closed; `camera`: the
   * pose of the camera that took the goal pictures (needed by `setDown`).
   */
  constructor(
    readonly settings: GoalPriorSettings,
    readonly closedBelow: number,
    readonly camera?: Camera,
  ) {
    if (settings.setDown && !camera) throw new Error("goal priors' setDown needs the pose of the camera that took the goal pictures");
  }

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
    const kept =
      goal.gripper === 'open' && distance(at, closedAt) <= this.settings.atGrasp ? { ...goal, gripper: 'closed' as const } : goal;
    return this.setDown(kept, at, closedAt);
  }

  /** A set-down goal, closed, with its last picture slid along the camera ray to the height where the fingers closed (see the file's comment). */
  private setDown(goal: Goal, at: Vec3, closedAt: Vec3): Goal {
    const s = this.settings.setDown;
    const last = goal.images[goal.images.length - 1];
    const target = gripperPosition(last);
    if (!s || !this.camera || !last || !target) return goal;
    if (at[2] - closedAt[2] < s.carriedAbove || Math.abs(target[2] - closedAt[2]) > s.within) return goal;
    const slid = slideToHeight(this.camera.pos, target, closedAt[2]);
    if (!slid) return goal;
    const proprio = Float32Array.from(last.proprio!);
    proprio.set(slid, 0);
    return { ...goal, gripper: 'closed', images: [...goal.images.slice(0, -1), { ...last, proprio }] };
  }

  /** A new episode: nothing held. */
  reset(): void {
    this.closedAt = undefined;
  }
}
