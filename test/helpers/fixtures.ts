import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Path of a file under ../shared/fixtures (the shared reference material beside the repo). */
export function sharedFixture(rel: string): string {
  const p = fileURLToPath(new URL(`../../../shared/fixtures/${rel}`, import.meta.url));
  if (!existsSync(p)) throw new Error(`shared fixture missing: ${p}`);
  return p;
}
