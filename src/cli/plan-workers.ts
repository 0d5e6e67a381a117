/** The --plan-workers flag of the commands that plan one episode at a time with a world model (demo, serve). */
import { availableParallelism } from 'node:os';
import { int, UsageError, type OptionSpec, type ParsedOptions } from './command.js';

export const PLAN_WORKERS_OPTION: OptionSpec = {
  type: 'string',
  arg: 'N',
  description: `threads that score one plan's candidates, each with its own copy of the model (default: the number of cores, here ${availableParallelism()})`,
};

export function planWorkers(opts: ParsedOptions): number {
  const n = int(opts, 'plan-workers', availableParallelism());
  if (n < 1) throw new UsageError(`--plan-workers must be at least 1, got ${n}`);
  return n;
}
