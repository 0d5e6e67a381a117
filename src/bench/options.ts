/** What every benchmark suite is run with (`selfflow-wm bench` flags). */
export interface BenchOptions {
  /** Fewer repetitions and sizes, for a smoke run. */
  quick: boolean;
  /** Backends to measure where a suite compares them (default: every one that loads). */
  backends?: string[];
  /** A trained run for the suites that need real weights (planner proposals). */
  checkpoint?: string;
}
