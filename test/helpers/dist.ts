/**
 * Tests that need compiled code (worker threads cannot load .ts; spawning bin/selfflow-wm.js runs
 * dist/) call ensureDist(): it rebuilds dist/ unless every source file is older than its output,
 * one test process at a time (a lock directory), so no test runs a stale build.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function stale(dir: string): boolean {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (stale(p)) return true;
    } else if (e.name.endsWith('.ts')) {
      const out = join(ROOT, 'dist', relative(ROOT, p).replace(/\.ts$/, '.js'));
      if (!existsSync(out) || statSync(out).mtimeMs < statSync(p).mtimeMs) return true;
    }
  }
  return false;
}

export function ensureDist(): void {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const lock = join(ROOT, 'dist', '.build-lock');
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test process is building; a lock older than two minutes is left over from a crash.
      const st = statSync(lock, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    if (!stale(join(ROOT, 'src'))) return;
    // Type errors elsewhere in the tree do not stop tsc from emitting; missing output is checked by the caller.
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')],
      { cwd: ROOT, encoding: 'utf8' },
    );
    if (r.error) throw r.error;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
