import { AUTO_ORDER, describeChoice, initBackend, installHint } from '../backend/backends.js';
import { BACKEND_OPTION, str, type Command } from './command.js';

export const backendCommand: Command = {
  name: 'backend',
  summary: 'show which tensor backends load here and which `auto` picks',
  options: { backend: BACKEND_OPTION },
  async run(opts) {
    const choice = await initBackend(str(opts, 'backend'));
    console.log(describeChoice(choice));
    if (choice.requested === 'auto') {
      for (const b of AUTO_ORDER) {
        const skip = choice.skipped.find((s) => s.backend === b);
        console.log(`  ${b.padEnd(10)} ${b === choice.chosen ? 'loaded (chosen)' : skip ? `unavailable: ${skip.reason}` : 'not tried'}`);
        // The BLAS path is the one a plain `npm ci` machine can usually gain, so say how.
        if (b === 'wasm+blas' && skip) console.log(`             ${installHint(b)}`);
      }
    }
  },
};
