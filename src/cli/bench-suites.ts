/**
 * The benchmark suites (src/bench/), one per concern, each loaded only when run.
 * Add a line here for a new suite; `selfflow-wm bench --only NAME` runs one.
 */
import type { BenchOptions } from '../bench/options.js';
import type { BenchTable } from '../bench/table.js';

export interface BenchSuite {
  name: string;
  summary: string;
  load: () => Promise<(opts: BenchOptions) => Promise<BenchTable[]>>;
}

export const SUITES: BenchSuite[] = [
  {
    name: 'planner',
    summary: 'replanning latency p50/p95, imagined candidate-frames/s, context-cache speed-up',
    load: async () => (await import('../bench/planner.js')).benchPlanner,
  },
  {
    name: 'optimizer',
    summary: 'CEM/MPPI overhead per iteration without the cost, planning-loop time per plan',
    load: async () => (await import('../bench/planner.js')).benchOptimizer,
  },
  {
    name: 'sim',
    summary: 'physics steps/s, rendered frames/s, episodes/min, expert success table',
    load: async () => (await import('../bench/sim.js')).benchSim,
  },
  {
    name: 'data',
    summary: 'TFRecord records/s, JPEG frames/s, resize and training windows/s',
    load: async () => (await import('../bench/data.js')).benchData,
  },
  {
    name: 'model',
    summary: 'matmul peak, forward and forward+backward throughput per config and backend',
    load: async () => (await import('../bench/model.js')).benchModel,
  },
  {
    name: 'action-toy',
    summary: 'how fast each --action-conditioning learns action-driven motion on a synthetic moving square (~5 min)',
    load: async () => (await import('../bench/action-toy.js')).benchActionToy,
  },
  {
    name: 'abuse',
    summary:
      'API e-stop ack and zero-command p50/p99 while a client floods invalid frames (+ an oversized goal image), service peak RSS; stale-plan commands after camera freezes',
    load: async () => (await import('../bench/abuse.js')).benchAbuse,
  },
  {
    name: 'service',
    summary:
      'observation-to-command latency added by the service p50/p99 (lockstep and rate mode), twist and action intervals, 640x480 image throughput',
    load: async () => (await import('../bench/service.js')).benchService,
  },
];
