import { SUITES } from './bench-suites.js';
import { SHIPPED_MODEL } from '../util/package-root.js';
import { renderTable } from '../bench/table.js';
import { bool, str, UsageError, type Command } from './command.js';
import { cpus } from 'node:os';

export const benchCommand: Command = {
  name: 'bench',
  summary: "run the benchmarks and print Markdown tables with this machine's numbers",
  options: {
    only: { type: 'string', arg: 'A,B', description: `suites to run (default all): ${SUITES.map((s) => s.name).join(', ')}` },
    quick: { type: 'boolean', description: 'fewer repetitions and sizes (a smoke run; numbers are noisier)' },
    backends: { type: 'string', arg: 'A,B', description: 'backends to compare where a suite does (default: all that load)' },
    checkpoint: {
      type: 'string',
      arg: 'RUN',
      description: `trained run for the planner-proposal comparison (default: the shipped ${SHIPPED_MODEL} if present)`,
    },
  },
  async run(opts) {
    const only = str(opts, 'only')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const name of only ?? []) {
      if (!SUITES.some((s) => s.name === name))
        throw new UsageError(`unknown suite '${name}'; known: ${SUITES.map((s) => s.name).join(', ')}`);
    }
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    console.log(`# selfflow-wm bench — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} x ${cpu}\n`);
    for (const suite of SUITES.filter((s) => !only || only.includes(s.name))) {
      const run = await suite.load();
      const t0 = Date.now();
      const tables = await run({
        quick: bool(opts, 'quick'),
        backends: str(opts, 'backends')?.split(','),
        checkpoint: str(opts, 'checkpoint'),
      });
      for (const t of tables) console.log(`${renderTable(t)}\n`);
      console.error(`(suite ${suite.name}: ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  },
};
