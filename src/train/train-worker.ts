/**
 * A data-parallel training worker (src/train/data-parallel.ts): its own tfjs backend and a copy of
 * the student and teacher, refreshed from the shared weights whenever their version moves; per
 * step, the loss and gradients of its share of the batch, written into its shared gradient region.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../backend/backends.js';
import type { TensorMap } from '../checkpoint/tensor-map.js';
import { errorMessage } from '../core/errors.js';
import { DEFAULT_ADAMW } from './adamw.js';
import { disposeBatch, toBatch } from './batch.js';
import { slotView, type FromTrainWorker, type ToTrainWorker, type TrainWorkerData } from './data-parallel.js';
import { Trainer } from './trainer.js';

const d = workerData as TrainWorkerData;
const port = parentPort!;
const control = new Int32Array(d.control);
const p = d.layout.trainableSize;
const gradRegion = new Float32Array(d.grads, d.index * p * 4, p);

const send = (m: FromTrainWorker) => port.postMessage(m);
/** Errors a person can act on (bad input, a backend that cannot load) keep their message as is. */
const isUserFacing = (e: unknown) => Boolean((e as { userFacing?: boolean } | undefined)?.userFacing);

function sharedMap(base: number): TensorMap {
  const map: TensorMap = new Map();
  for (const slot of d.layout.trainable) map.set(slot.name, { dtype: 'float32', shape: slot.shape, data: slotView(d.weights, slot, base) });
  for (const slot of d.layout.frozen) map.set(slot.name, { dtype: 'float32', shape: slot.shape, data: slotView(d.frozen, slot) });
  return map;
}

function loadWeights(trainer: Trainer): void {
  tf.tidy(() => {
    for (const slot of d.layout.trainable) {
      trainer.student[slot.name]!.assign(tf.tensor(slotView(d.weights, slot), slot.shape));
      trainer.teacher[slot.name]!.assign(tf.tensor(slotView(d.weights, slot, p), slot.shape));
    }
  });
}

async function main(): Promise<void> {
  await initBackend(d.backend);
  let version = Atomics.load(control, 0);
  const trainer = new Trainer(d.cfg, d.objective, sharedMap(0), sharedMap(p), DEFAULT_ADAMW, 0);
  port.on('message', (m: ToTrainWorker) => {
    try {
      if (m.version !== version) {
        // The coordinator stores the version after writing the weights; loading it orders the reads after those writes.
        if (Atomics.load(control, 0) !== m.version)
          throw new Error(`shared weights are at version ${Atomics.load(control, 0)}, the step expects ${m.version}`);
        loadWeights(trainer);
        version = m.version;
      }
      const batch = toBatch(m.windows, d.cfg, d.contextFrames, d.futureFrames);
      let result: ReturnType<Trainer['gradients']>;
      try {
        result = trainer.gradients(batch, m.draw, m.whole);
      } finally {
        disposeBatch(batch);
      }
      const missing: string[] = [];
      for (const slot of d.layout.trainable) {
        const g = result.grads[slot.name];
        if (g) gradRegion.set(g.dataSync(), slot.offset);
        else {
          gradRegion.fill(0, slot.offset, slot.offset + slot.size);
          missing.push(slot.name);
        }
      }
      tf.dispose(Object.values(result.grads));
      Atomics.store(control, 1 + d.index, m.id);
      send({ type: 'done', id: m.id, parts: result.parts, missing });
    } catch (e) {
      send({ type: 'error', message: errorMessage(e), user: isUserFacing(e) });
    }
  });
  send({ type: 'ready' });
}

main().catch((e: unknown) => send({ type: 'error', message: `cannot start: ${errorMessage(e)}`, user: isUserFacing(e) }));
