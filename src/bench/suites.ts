/**
 * Benchmark suites, one per concern. Each is loaded only when run.
 * Add a line here for a new suite; `selfflow-wm bench --only NAME` runs one.
 */
import type { BenchTable } from './table.js';

export interface BenchOptions {
  /** Fewer repetitions and sizes, for a smoke run. */
  quick: boolean;
  /** Backends to measure where a suite compares them (default: every one that loads). */
  backends?: string[];
  /** A trained run for the suites that need real weights (planner proposals). */
  checkpoint?: string;
}

export interface BenchSuite {
  name: string;
  summary: string;
  load: () => Promise<(opts: BenchOptions) => Promise<BenchTable[]>>;
}

export const SUITES: BenchSuite[] = [
  { name: 'planner', summary: 'replanning latency p50/p95, imagined candidate-frames/s, context-cache speed-up', load: async () => (await import('../planner/bench.js')).benchPlanner },
  { name: 'optimizer', summary: 'CEM/MPPI overhead per iteration without the cost, planning-loop time per plan', load: async () => (await import('../planner/bench.js')).benchOptimizer },
  { name: 'sim', summary: 'physics steps/s, rendered frames/s, episodes/min, expert success table', load: async () => (await import('../sim/bench.js')).benchSim },
  { name: 'data', summary: 'TFRecord records/s, JPEG frames/s, resize and training windows/s', load: async () => (await import('../data/bench.js')).benchData },
  { name: 'model', summary: 'matmul peak, forward and forward+backward throughput per config and backend', load: async () => (await import('../model/bench.js')).benchModel },
  { name: 'action-toy', summary: 'how fast each --action-conditioning learns action-driven motion on a synthetic moving square (~5 min)', load: async () => (await import('../model/bench.js')).benchActionToy },
  { name: 'service', summary: 'observation-to-command latency added by the service p50/p99 (lockstep and rate mode), twist and action intervals, 640x480 image throughput', load: async () => (await import('../service/bench.js')).benchService },
];
