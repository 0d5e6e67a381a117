/**
 * Worker-thread entry for prefetchedWindowStream: runs windowStream with the options it was
 * given and posts each window (frame and action buffers transferred, not copied), sending only
 * as many as the main thread has asked for so memory stays bounded.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../core/errors.js';
import { windowStream, type WindowStreamOptions } from './windows.js';

const port = parentPort!;
let credits = 0;
let wake: (() => void) | undefined;
port.on('message', (m: { type: 'credit'; n: number }) => {
  if (m.type !== 'credit') return;
  credits += m.n;
  wake?.();
});

async function run(): Promise<void> {
  const opts = (workerData as { opts: Omit<WindowStreamOptions, 'onCorrupt'> }).opts;
  try {
    for await (const w of windowStream({ ...opts, onCorrupt: (message) => port.postMessage({ type: 'corrupt', message }) })) {
      while (credits === 0) {
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
      credits--;
      port.postMessage({ type: 'window', w }, [w.frames.buffer as ArrayBuffer, w.actions.buffer as ArrayBuffer]);
    }
    port.postMessage({ type: 'end' });
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message, user: e instanceof UserError });
  }
}

void run();
