/**
 * Worker-thread entry: loads the world-model planner (loadWorldModelPlanning) and serves it with
 * hostPlanner. Started by startWorkerPlanner (src/service/planner-worker.ts) from compiled code.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadWorldModelPlanning } from '../planner/world-model-planner.js';
import { errorMessage } from '../core/errors.js';
import { hostPlanner, type FromWorker } from './planner-worker-host.js';

export interface WorldModelWorkerData {
  preset: string;
  checkpoint: string;
  backend?: string;
  seed?: number;
  imagine?: boolean;
  /** Threads that score one plan's candidates: this worker and planWorkers - 1 scoring workers of its own. */
  planWorkers?: number;
}

const port = parentPort;
if (!port) throw new Error('planner-worker-main.js runs in a worker thread (startWorkerPlanner starts it)');
const d = workerData as WorldModelWorkerData;
try {
  const planning = await loadWorldModelPlanning(d.preset, d.checkpoint, {
    backend: d.backend,
    seed: d.seed,
    imagine: d.imagine,
    planWorkers: d.planWorkers,
    log: (line) => port.postMessage({ type: 'log', line } satisfies FromWorker),
  });
  const p = planning.preset;
  hostPlanner(
    port,
    {
      plan: (obs, goal, signal) => planning.plan(obs, goal, signal),
      reset: (seed) => planning.reset(seed),
      dispose: () => planning.dispose(),
    },
    {
      name: p.name,
      kind: p.optimizer.kind,
      candidates: p.optimizer.candidates,
      budgetMs: p.budgetMs,
      graceMs: p.graceMs,
      imageHeight: planning.cfg.imageHeight,
      imageWidth: planning.cfg.imageWidth,
      planWorkers: planning.planWorkers,
    },
  );
} catch (e) {
  port.postMessage({
    type: 'fatal',
    message: errorMessage(e),
    user: (e as { userFacing?: boolean }).userFacing === true,
  } satisfies FromWorker);
  port.close();
}
