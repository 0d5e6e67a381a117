/**
 * Every CLI command, loaded lazily so `--help` and light commands start fast
 * (tfjs alone takes ~0.5 s to import). Add a line here for a new command.
 */
import type { Command } from './command.js';

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'backend', summary: 'show which tensor backends load here and which `auto` picks', load: async () => (await import('./backend.js')).backendCommand },
  { name: 'bench', summary: 'run the benchmarks and print a table with this machine\'s numbers', load: async () => (await import('./bench.js')).benchCommand },
];
