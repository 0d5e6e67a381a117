/**
 * What `model train-policy` and `model train-reader` share around their training loop: the resume
 * file next to the output (`--checkpoint-every`), a progress bar that starts where a resumed run
 * continues, and the resume file's removal once the finished network is written.
 */
import { rmSync } from 'node:fs';
import { resumeFileFor, type SmallNetResume } from '../train/small-net-fit.js';
import { Progress } from '../util/progress.js';
import { UsageError, type OptionSpec, type ParsedOptions } from './command.js';

export const CHECKPOINT_EVERY_OPTION: OptionSpec = {
  type: 'string',
  arg: 'N',
  description: 'write a resume file (OUT.resume.safetensors) every N steps; rerunning the same command continues from it (0: none)',
  default: '500',
};

export interface SmallNetRun {
  resume?: SmallNetResume;
  onProgress: (step: number, loss: number) => void;
  /** Ends the progress bar. */
  finish(): void;
  /** Removes the resume file: call once the trained network is written. */
  written(): void;
}

/** The flags that shape the trained weights (not where they go or how they are reported), and the data's size. */
export function runFingerprint(opts: ParsedOptions, samples: number): unknown {
  const ignored = new Set(['out', 'json', 'backend', 'checkpoint-every', 'skip-corrupt']);
  return {
    flags: Object.fromEntries(
      Object.entries(opts)
        .filter(([k]) => !ignored.has(k))
        .sort(),
    ),
    samples,
  };
}

/** `fingerprint`: the flags and data that make the run; a resume file of another fingerprint is refused. */
export function smallNetRun(label: string, steps: number, out: string, every: number, fingerprint: unknown): SmallNetRun {
  if (!Number.isInteger(every) || every < 0) throw new UsageError(`--checkpoint-every must be a whole number >= 0, got ${every}`);
  let from = 0;
  let progress: Progress | undefined;
  const path = resumeFileFor(out);
  return {
    resume: every
      ? {
          path,
          every,
          fingerprint: JSON.stringify(fingerprint),
          onResume: (step) => {
            from = step;
            console.error(`${label}: continuing from step ${step} of ${path}`);
          },
        }
      : undefined,
    onProgress: (step, loss) => {
      progress ??= new Progress(label, steps, { initial: from });
      progress.update(step, `loss ${loss.toFixed(4)}`);
    },
    finish: () => progress?.finish(),
    written: () => rmSync(path, { force: true }),
  };
}
