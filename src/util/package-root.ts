import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The repository / installed package root (where package.json is), from source or compiled code alike. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('selfflow-wm: cannot find the package root (package.json)');
    dir = up;
  }
  return (root = dir);
}

/** The default world model of demo, eval, serve, model probe and the planner bench (a run directory, package-relative). */
export const SHIPPED_MODEL = 'models/tiny-sim-explore';

/** The shipped default model's directory. */
export function shippedModel(): string {
  return join(packageRoot(), SHIPPED_MODEL);
}
