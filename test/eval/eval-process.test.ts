/**
 * `selfflow-wm eval --workers 2` as its own process (bin/selfflow-wm.js on the compiled code):
 * run to the end with its output redirected, and stopped the way a supervisor or `timeout` stops
 * it, where a signal to the parent alone must not leave its worker processes running.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, ROOT } from '../helpers/dist.js';

const dir = mkdtempSync(join(tmpdir(), 'sfwm-eval-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => ensureDist(), 120_000);

/** Pids of the direct children of `pid` (ps works alike on Linux and macOS). */
function childPids(pid: number): number[] {
  return execFileSync('ps', ['-A', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, ppid]) => ppid === pid)
    .map(([p]) => p!);
}

/** A process that exited but was not yet reaped (a zombie) counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' })
      .trim()
      .startsWith('Z');
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, ok: () => boolean, ms: number): Promise<void> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

const workers = new Set<number>();
// A failed assertion must not leave workers burning the CPU.
afterEach(() => {
  for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  workers.clear();
});

/** Starts a long evaluation (many scripted episodes) and resolves once both workers exist and episodes are being finished. */
async function startEval(name: string) {
  const out = join(dir, name);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin', 'selfflow-wm.js'),
      'eval',
      '--policy',
      'expert',
      '--tasks',
      'drawer-chain',
      '--episodes',
      '200',
      '--workers',
      '2',
      '--out',
      out,
      '--failure-gifs',
      '0',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal })),
  );
  const episodes = () =>
    existsSync(join(out, 'episodes.jsonl'))
      ? readFileSync(join(out, 'episodes.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length
      : 0;
  let pids: number[] = [];
  await waitUntil(
    'two workers running episodes',
    () => {
      if (child.exitCode !== null) throw new Error(`eval exited early (code ${child.exitCode}):\n${err}`);
      pids = childPids(child.pid!);
      pids.forEach((p) => workers.add(p));
      return pids.length === 2 && episodes() >= 1;
    },
    90_000,
  );
  return { child, exited, pids, err: () => err };
}

describe('eval --workers as a process', () => {
  it('finishes with workers: --json stdout is the report alone, and stderr (a pipe) holds plain lines', async () => {
    const out = join(dir, 'json');
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin', 'selfflow-wm.js'),
        'eval',
        '--policy',
        'expert',
        '--tasks',
        'pick-can',
        '--episodes',
        '3',
        '--workers',
        '2',
        '--out',
        out,
        '--failure-gifs',
        '0',
        '--json',
      ],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { policies: Record<string, { tasks: Record<string, { episodes: number }> }> };
    expect(report.policies.expert!.tasks['pick-can']!.episodes).toBe(3);
    expect(stderr).not.toContain('\r');
    expect(stderr).toMatch(/^eval \[#{24}\] 3\/3 .*$/m);
  }, 120_000);

  it('SIGTERM to the parent alone stops both workers, and the parent dies of the signal', async () => {
    const e = await startEval('sigterm');
    e.child.kill('SIGTERM');
    const { signal } = await e.exited;
    expect(signal, e.err()).toBe('SIGTERM');
    expect(e.err()).toContain('SIGTERM: stopping 2 eval workers');
    // The parent waits for its workers before it dies, so they are gone by now: no time is allowed for
    // them to run out their current episode (about a second of scripted drawer-chain steps).
    await waitUntil(`workers ${e.pids.join(', ')} to exit`, () => !e.pids.some(alive), 300);
  }, 150_000);

  it('SIGKILL to the parent: the workers see their IPC channel close and exit', async () => {
    const e = await startEval('sigkill');
    e.child.kill('SIGKILL');
    await e.exited;
    // A worker notices between two steps of work: a scripted episode runs without yielding, so allow for one under load.
    await waitUntil(`workers ${e.pids.join(', ')} to exit`, () => !e.pids.some(alive), 30_000);
  }, 150_000);
});
