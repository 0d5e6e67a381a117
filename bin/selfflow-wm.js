#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error(`selfflow-wm: ${entry} is missing; run \`npm run build\` (npm ci does it for you).`);
  process.exit(1);
}
const { main } = await import(pathToFileURL(entry).href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// serve has sent its zero command and closed everything it could; a socket or worker that still
// holds the event loop (a peer that never answers) must not keep a stopped node alive.
if (process.argv[2] === 'serve') setTimeout(() => process.exit(code), 2000).unref();
