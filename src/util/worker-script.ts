/** Where the compiled entry of a worker thread lives: threads can only load JavaScript. */
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from './package-root.js';

/**
 * The compiled file `name` beside the module at `moduleUrl` (pass `import.meta.url`): the module's
 * own folder when it runs compiled, its dist/ counterpart when it runs from TypeScript sources.
 * Undefined when that file does not exist (sources without a build).
 */
export function compiledWorkerScript(moduleUrl: string, name: string): string | undefined {
  const here = dirname(fileURLToPath(moduleUrl));
  const root = packageRoot();
  const candidate = moduleUrl.endsWith('.js') ? join(here, name) : join(root, 'dist', relative(root, here), name);
  return existsSync(candidate) ? candidate : undefined;
}
