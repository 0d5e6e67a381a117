/**
 * Worker-thread entry of a scoring worker (started by ScorePool, src/planner/parallel-scorer.ts,
 * from compiled code): loads the run's weights once on its own backend, then per plan sets the
 * context it is sent and scores its shares of the candidates with the planner's cost
 * (src/planner/cost.ts), exactly as the planner's thread scores its own share.
 * Protocol: src/planner/score-protocol.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../backend/backends.js';
import { errorMessage } from '../core/errors.js';
import { toTf } from '../model/params.js';
import { loadInferenceWeights } from '../train/run-files.js';
import { costReference, futureCosts, type CostReference } from './cost.js';
import { gripperPosition } from './gripper-position.js';
import type { FromScoreWorker, ScoreWorkerData, ScoringContext, ToScoreWorker } from './score-protocol.js';
import { instructionLanguage, worldModelFutures, WorldModelRollout } from './world-model-rollout.js';

const port = parentPort;
if (!port) throw new Error('score-worker.js runs in a worker thread (ScorePool starts it)');
const d = workerData as ScoreWorkerData;
const send = (m: FromScoreWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

try {
  await initBackend(d.backend);
  const w = loadInferenceWeights(d.checkpoint);
  if (!w.manifest) throw new Error(`${d.checkpoint}: no run.json (the action statistics are needed)`);
  const cfg = w.cfg;
  const stats = w.manifest.actionStats;
  const net = new WorldModelRollout(
    toTf(w.tensors),
    cfg,
    { flowSteps: d.flowSteps, integrator: d.integrator, actionGuidance: d.actionGuidance, seed: 0 },
    d.representation,
  );
  let instruction: string | undefined;
  let goalKey: number | undefined;
  let current: { context: ScoringContext; ref: CostReference } | undefined;
  let contextError: string | undefined;

  const setContext = (c: ScoringContext) => {
    if (current) tf.dispose([current.ref.now, current.ref.goal]);
    current = undefined;
    contextError = undefined;
    try {
      if (c.instruction !== instruction || goalKey === undefined) {
        net.setLanguage(instructionLanguage(cfg, c.instruction));
        instruction = c.instruction;
        goalKey = undefined;
      }
      const frames = tf.tensor4d(c.frames, [c.contextFrames, cfg.imageHeight, cfg.imageWidth, 3]);
      net.setContext(frames);
      frames.dispose();
      const ref = costReference(c.obs, c.goal, cfg.imageHeight, cfg.imageWidth, c.weights.pose > 0);
      if (c.goalKey !== goalKey) {
        net.setGoal(ref.goal);
        goalKey = c.goalKey;
      }
      current = { context: c, ref };
    } catch (e) {
      goalKey = undefined;
      contextError = errorMessage(e);
    }
  };

  port.on('message', (m: ToScoreWorker) => {
    if (m.type === 'context') {
      setContext(m.context);
      return;
    }
    try {
      if (contextError) throw new Error(`plan context: ${contextError}`);
      if (!current || current.context.plan !== m.plan) throw new Error(`no context for plan ${m.plan}`);
      const c = current.context;
      const predict = worldModelFutures(net, stats, c.horizon, c.seed, gripperPosition(c.obs));
      const costs = futureCosts(
        c.weights,
        current.ref,
        () => predict(m.candidates, m.n, m.share),
        m.candidates,
        m.n,
        c.horizon,
        cfg.actionDim,
      );
      send({ type: 'costs', id: m.id, costs }, [costs.buffer as ArrayBuffer]);
    } catch (e) {
      send({ type: 'error', id: m.id, message: errorMessage(e) });
    }
  });
  send({ type: 'ready' });
} catch (e) {
  send({ type: 'fatal', message: errorMessage(e) });
  port.close();
}
