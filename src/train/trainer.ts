/**
 * One optimisation step of the world model: teacher forward (no gradient), student forward and
 * backward, AdamW with clipping, EMA teacher update. Owns the student, teacher and optimiser tensors.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import type { WorldModelConfig } from '../core/model-config.js';
import type { Params } from '../model/layers.js';
import { FROZEN, toTf } from '../model/params.js';
import { AdamW, type AdamWOptions } from './adamw.js';
import {
  emaUpdate,
  studentLoss,
  teacherFeatures,
  type NoiseDraw,
  type ObjectiveOptions,
  type SequenceBatch,
  type WholeBatch,
} from './objective.js';

export interface StepStats {
  loss: number;
  frame: number;
  action: number;
  ssl: number;
  gradNorm: number;
}

export class Trainer {
  readonly student: Record<string, tf.Variable> = {};
  readonly teacher: Record<string, tf.Variable> = {};
  readonly frozen: Params = {};
  readonly optimizer: AdamW;

  constructor(
    readonly cfg: WorldModelConfig,
    readonly objective: ObjectiveOptions,
    init: TensorMap,
    teacherInit: TensorMap | undefined,
    optimizer: AdamWOptions,
    readonly emaDecay: number,
  ) {
    this.optimizer = new AdamW(optimizer);
    const s = toTf(init);
    const t = toTf(teacherInit ?? init);
    for (const name of Object.keys(s)) {
      if (FROZEN.has(name)) {
        this.frozen[name] = s[name]!;
        t[name]!.dispose();
        continue;
      }
      this.student[name] = tf.variable(s[name]!, true);
      this.teacher[name] = tf.variable(t[name]!, false);
      s[name]!.dispose();
      t[name]!.dispose();
    }
  }

  studentParams(): Params {
    return { ...this.frozen, ...this.student };
  }

  teacherParams(): Params {
    return { ...this.frozen, ...this.teacher };
  }

  /** Loss parts without updating anything (validation), under the training objective unless `objective` is given. */
  evaluate(
    batch: SequenceBatch,
    draw: NoiseDraw,
    useTeacherWeights = false,
    objective: ObjectiveOptions = this.objective,
  ): Omit<StepStats, 'gradNorm'> {
    return tf.tidy(() => {
      const raw = objective.kind === 'selfflow' ? teacherFeatures(this.teacherParams(), this.cfg, batch, draw) : undefined;
      const parts = studentLoss(useTeacherWeights ? this.teacherParams() : this.studentParams(), this.cfg, batch, draw, objective, raw);
      return {
        loss: parts.total.dataSync()[0]!,
        frame: parts.frame.dataSync()[0]!,
        action: parts.action.dataSync()[0]!,
        ssl: parts.ssl.dataSync()[0]!,
      };
    });
  }

  /**
   * The student's loss parts and gradients on `batch` (the teacher forward runs outside the tape);
   * updates nothing. With `whole`, `batch` is a share and both are its contribution to the whole batch's.
   * Gradients are keyed by parameter name; parameters the loss does not reach have none.
   */
  gradients(
    batch: SequenceBatch,
    draw: NoiseDraw,
    whole?: WholeBatch,
  ): { parts: Omit<StepStats, 'gradNorm'>; grads: Record<string, tf.Tensor> } {
    const raw = this.objective.kind === 'selfflow' ? teacherFeatures(this.teacherParams(), this.cfg, batch, draw) : undefined;
    let kept: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const parts = studentLoss(this.studentParams(), this.cfg, batch, draw, this.objective, raw, whole);
      kept = [parts.frame, parts.action, parts.ssl, parts.total].map((t) => tf.keep(t.clone()));
      return parts.total;
    }, Object.values(this.student));
    raw?.dispose();
    value.dispose();
    // variableGrads keys by variable name; map back to parameter names.
    const byName: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(this.student)) {
      const g = grads[v.name];
      if (g) byName[name] = g;
    }
    const [frame, action, ssl, loss] = kept.map((t) => t.dataSync()[0]!);
    tf.dispose(kept);
    return { parts: { loss: loss!, frame: frame!, action: action!, ssl: ssl! }, grads: byName };
  }

  /** AdamW with clipping on `grads` (which it disposes), then the EMA update; returns the gradient norm before clipping. */
  applyGradients(grads: Record<string, tf.Tensor>, lr: number, emaDecay = this.emaDecay): number {
    const gradNorm = this.optimizer.apply(this.student, grads, lr);
    tf.dispose(Object.values(grads));
    // The EMA is what planning samples with, for both objectives; only selfflow also uses it as the teacher.
    emaUpdate(this.teacher, this.student, emaDecay);
    return gradNorm;
  }

  step(batch: SequenceBatch, draw: NoiseDraw, lr: number, emaDecay = this.emaDecay): StepStats {
    const { parts, grads } = this.gradients(batch, draw);
    return { ...parts, gradNorm: this.applyGradients(grads, lr, emaDecay) };
  }

  dispose(): void {
    tf.dispose([...Object.values(this.student), ...Object.values(this.teacher), ...Object.values(this.frozen)]);
    this.optimizer.dispose();
  }
}
