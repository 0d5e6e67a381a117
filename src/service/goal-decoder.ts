/**
 * Goal images (API setGoal, the goal image topic) decoded off the service's thread. A JPEG/PNG's
 * decoding time grows with the pixel count it declares, not with its file size, so on the thread
 * that runs the safety gate and e-stop one crafted image could hold them for seconds. Here a worker
 * thread decodes, with a bounded queue: at most one decode in flight and one waiting; a newer goal
 * replaces the waiting one (newest goal wins), whose caller gets a GoalSupersededError. A decode
 * that runs past `timeoutMs` terminates the worker (a fresh one starts for the next goal).
 *
 * Running from TypeScript sources without a build there is no compiled worker (a worker cannot
 * load .ts): then the same queue decodes on this thread, and says so once.
 */
import { compiledWorkerScript } from '../util/worker-script.js';
import { Worker } from 'node:worker_threads';
import { decodeImage } from '../image/decode.js';
import type { Goal, Observation } from '../core/types.js';
import { errorMessage, UserError } from '../core/errors.js';

/** One encoded goal image and what names it in errors (`setGoal.images[0]`, the topic). */
export interface EncodedImage {
  bytes: Uint8Array;
  where: string;
  /** The goal image's stamp (ms); default the time it was decoded. */
  stamp?: number;
}

export interface EncodedGoal {
  images: EncodedImage[];
  instruction?: string;
}

export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** A goal that was still waiting when a newer one arrived; it was never decoded. */
export class GoalSupersededError extends Error {}

/** How long one goal's decoding may take before the worker is stopped. */
export const GOAL_DECODE_TIMEOUT_MS = 10_000;

/**
 * The one place goal images are decoded (worker and fallback alike), under the configured pixel
 * limit. decodeImage refuses an image whose declared size exceeds `maxPixels` before decoding it.
 */
export function decodeGoalImage(bytes: Uint8Array, where: string, maxPixels: number): DecodedImage {
  const img = decodeImage(bytes, where, { maxPixels });
  return { data: img.data, width: img.width, height: img.height };
}

/** Worker protocol. */
export interface DecodeRequest {
  id: number;
  images: { bytes: Uint8Array; where: string }[];
  maxPixels: number;
}
export type DecodeReply = { id: number; ok: true; images: DecodedImage[] } | { id: number; ok: false; message: string; user: boolean };

/** The compiled worker entry, or undefined when running from sources without a build. */
export function goalDecoderWorkerScript(): string | undefined {
  return compiledWorkerScript(import.meta.url, 'goal-decoder-worker.js');
}

export interface GoalDecoderOptions {
  /** goal.max_pixels. */
  maxPixels: number;
  /** Worker entry; default the compiled one; null decodes on this thread. */
  script?: string | null;
  timeoutMs?: number;
  log?: (line: string) => void;
}

interface Job {
  goal: EncodedGoal;
  resolve: (g: Goal) => void;
  reject: (e: Error) => void;
}

export class GoalDecoder {
  private worker: Worker | undefined;
  private inFlight: (Job & { id: number; timer?: NodeJS.Timeout }) | undefined;
  private waiting: Job | undefined;
  private ids = 0;
  private closed = false;
  private readonly script: string | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: GoalDecoderOptions) {
    this.script = opts.script === null ? undefined : (opts.script ?? goalDecoderWorkerScript());
    this.log = opts.log ?? (() => {});
    if (!this.script && opts.script !== null)
      this.log(
        'no compiled goal decoder worker (running from sources without `npm run build`): goal images are decoded on the service thread',
      );
  }

  /** Whether decoding runs in a worker thread. */
  get inWorker(): boolean {
    return this.script !== undefined;
  }

  /** Decodes a goal; a newer call before this one started replaces it (GoalSupersededError). */
  decode(goal: EncodedGoal): Promise<Goal> {
    if (this.closed) return Promise.reject(new Error('goal decoder closed'));
    return new Promise<Goal>((resolve, reject) => {
      this.waiting?.reject(new GoalSupersededError('superseded by a newer goal before it was decoded'));
      this.waiting = { goal, resolve, reject };
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('goal decoder closed');
    this.waiting?.reject(err);
    this.waiting = undefined;
    if (this.inFlight) this.finish(this.inFlight.id, () => this.inFlight?.reject(err));
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private pump(): void {
    if (this.inFlight || !this.waiting || this.closed) return;
    const job: Job & { id: number; timer?: NodeJS.Timeout } = { ...this.waiting, id: ++this.ids };
    this.waiting = undefined;
    this.inFlight = job;
    if (!this.script) {
      // No worker: still asynchronous and through the same queue, so callers behave the same.
      setImmediate(() => {
        if (this.inFlight?.id !== job.id) return;
        let result: Goal | Error;
        try {
          result = this.toGoal(
            job.goal,
            job.goal.images.map((im) => decodeGoalImage(im.bytes, im.where, this.opts.maxPixels)),
          );
        } catch (e) {
          result = e instanceof Error ? e : new Error(String(e));
        }
        this.finish(job.id, () => (result instanceof Error ? job.reject(result) : job.resolve(result)));
      });
      return;
    }
    const worker = this.ensureWorker();
    const transfer: ArrayBuffer[] = [];
    const images = job.goal.images.map((im) => {
      const bytes = im.bytes.slice();
      transfer.push(bytes.buffer);
      return { bytes, where: im.where };
    });
    const timeoutMs = this.opts.timeoutMs ?? GOAL_DECODE_TIMEOUT_MS;
    job.timer = setTimeout(() => {
      // A decode this slow is stopped with its worker; the next goal gets a fresh one.
      this.worker = undefined;
      void worker.terminate();
      this.finish(job.id, () =>
        job.reject(new UserError(`${job.goal.images.map((i) => i.where).join(', ')}: decoding took over ${timeoutMs} ms; stopped`)),
      );
    }, timeoutMs);
    worker.postMessage({ id: job.id, images, maxPixels: this.opts.maxPixels } satisfies DecodeRequest, transfer);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.script!);
    w.unref();
    w.on('message', (m: DecodeReply) => {
      const job = this.inFlight;
      if (!job || job.id !== m.id) return;
      this.finish(m.id, () =>
        m.ok ? job.resolve(this.toGoal(job.goal, m.images)) : job.reject(m.user ? new UserError(m.message) : new Error(m.message)),
      );
    });
    const died = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const job = this.inFlight;
      if (job) this.finish(job.id, () => job.reject(new Error(`goal decoder: ${why}`)));
    };
    w.on('error', (e) => died(`worker failed: ${errorMessage(e)}`));
    w.on('exit', (code) => died(`worker exited (code ${code})`));
    this.worker = w;
    return w;
  }

  /** Ends the job in flight (if it is still `id`), settles it and starts the waiting one. */
  private finish(id: number, settle: () => void): void {
    if (this.inFlight?.id !== id) return;
    clearTimeout(this.inFlight.timer);
    this.inFlight = undefined;
    settle();
    this.pump();
  }

  private toGoal(goal: EncodedGoal, decoded: DecodedImage[]): Goal {
    const now = Date.now();
    const images = decoded.map((d, i): Observation => ({
      image: d.data,
      height: d.height,
      width: d.width,
      stamp: goal.images[i]!.stamp ?? now,
    }));
    return { images, instruction: goal.instruction };
  }
}
