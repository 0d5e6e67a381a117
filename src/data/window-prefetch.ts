/**
 * Training windows decoded in a worker thread, so JPEG decoding and resizing overlap with the
 * training step on the main thread instead of adding to it. Same options and the same windows,
 * in the same order, as windowStream (the worker runs windowStream itself).
 */
import { compiledWorkerScript } from '../util/worker-script.js';
import { Worker } from 'node:worker_threads';
import { UserError } from '../core/errors.js';
import { windowStream, type TrainingWindow, type WindowStreamOptions } from './windows.js';

type Message =
  | { type: 'window'; w: TrainingWindow }
  | { type: 'corrupt'; message: string }
  | { type: 'end' }
  | { type: 'error'; message: string; user: boolean }
  | { type: 'exit'; code: number };

/**
 * The compiled worker script, or undefined where there is none: running from TypeScript sources
 * (vitest) uses dist/ when it has been built, else the caller falls back to the main thread.
 */
export function windowWorkerScript(): string | undefined {
  return compiledWorkerScript(import.meta.url, 'window-worker.js');
}

export interface PrefetchOptions {
  /** Windows decoded ahead of the consumer (default 32). */
  prefetch?: number;
}

export async function* prefetchedWindowStream(o: WindowStreamOptions, p: PrefetchOptions = {}): AsyncGenerator<TrainingWindow> {
  const script = windowWorkerScript();
  if (!script) {
    yield* windowStream(o);
    return;
  }
  const prefetch = p.prefetch ?? 32;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new UserError(`prefetch must be an integer >= 1, got ${prefetch}`);
  const { onCorrupt, ...opts } = o;
  const worker = new Worker(script, { workerData: { opts } });
  const queue: Message[] = [];
  let notify: (() => void) | undefined;
  const push = (m: Message) => {
    queue.push(m);
    notify?.();
  };
  worker.on('message', push);
  worker.on('error', (e) => push({ type: 'error', message: `window loader worker failed: ${e.message}`, user: false }));
  worker.on('exit', (code) => push({ type: 'exit', code }));
  worker.postMessage({ type: 'credit', n: prefetch });
  try {
    for (;;) {
      while (queue.length === 0) {
        await new Promise<void>((r) => (notify = r));
        notify = undefined;
      }
      const m = queue.shift()!;
      if (m.type === 'window') {
        worker.postMessage({ type: 'credit', n: 1 });
        yield m.w;
      } else if (m.type === 'corrupt') onCorrupt?.(m.message);
      else if (m.type === 'end') return;
      else if (m.type === 'error') throw m.user ? new UserError(m.message) : new Error(m.message);
      else throw new Error(`window loader worker exited (code ${m.code}) before the end of the stream`);
    }
  } finally {
    await worker.terminate();
  }
}
