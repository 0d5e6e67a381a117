/**
 * A progress bar over the bytes of a dataset's shards (read in order), for the commands that
 * scan a whole dataset: on RT-1's 111 GiB that takes a while, and episodes vary in size.
 */
import { statSync } from 'node:fs';
import { Progress } from '../util/progress.js';
import type { Episode } from './rlds.js';

export async function* withByteProgress(episodes: AsyncIterable<Episode>, shards: string[], label: string): AsyncGenerator<Episode> {
  const sizes = shards.map((s) => statSync(s).size);
  const before = new Map<string, number>();
  let sum = 0;
  shards.forEach((s, i) => {
    before.set(s, sum);
    sum += sizes[i]!;
  });
  const mib = (b: number) => Math.round(b / 2 ** 20);
  const bar = new Progress(label, mib(sum));
  let n = 0;
  for await (const ep of episodes) {
    n++;
    bar.update(mib((before.get(ep.shard) ?? 0) + ep.offset), `MiB read, ${n} episodes`);
    yield ep;
  }
  bar.finish(`MiB read, ${n} episodes`);
}
