#!/usr/bin/env node
/**
 * Sums eval directories run with the same settings (e.g. one per seed set) into one report, through the same
 * arithmetic as `eval` (dist/src/eval/report.js: build first). Prints report.md's table over all their episodes, then
 * the pooled totals per policy, each policy's points above the first, and the share of the gap from the first
 * policy to the last that each closes (the first to run, the policy alone here, first; `oracle:` presets last).
 * Unfinished directories count with the episodes they hold; the count of each is printed.
 * Usage: node scripts/sum-evals.mjs DIR...
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, reportMarkdown } from '../dist/src/eval/report.js';
import { wilson } from '../dist/src/eval/metrics.js';

const fail = (msg) => {
  console.error(msg);
  process.exit(1);
};
const dirs = process.argv.slice(2);
if (!dirs.length) fail('usage: node scripts/sum-evals.mjs DIR... (eval --out directories)');
/** One eval directory's settings text and finished episodes, read once. */
const sets = dirs.map((d) => {
  const file = join(d, 'episodes.jsonl');
  if (!existsSync(file)) fail(`${d}: no episodes.jsonl (not an eval --out directory)`);
  const episodes = readFileSync(file, 'utf8')
    .split('\n')
    .map((l, i) => [l, i + 1])
    .filter(([l]) => l.trim())
    .map(([l, line]) => {
      try {
        return JSON.parse(l);
      } catch {
        return fail(`${file}:${line}: not a JSON episode record`);
      }
    });
  return {
    dir: d,
    settings: readFileSync(join(d, 'settings.json'), 'utf8').trim(),
    episodes,
    finished: existsSync(join(d, 'report.json')),
  };
});
const odd = sets.filter((x) => x.settings !== sets[0].settings).map((x) => x.dir);
if (odd.length) fail(`${odd.join(', ')} ran with other settings than ${dirs[0]}: not summed together`);
const outcomes = sets.flatMap((x) => x.episodes);
// In the order they first ran, with oracle: presets last, so the last column is the ceiling whatever ran after it.
const seen = [...new Set(outcomes.map((o) => o.policy))];
const policies = [...seen.filter((p) => !p.startsWith('oracle:')), ...seen.filter((p) => p.startsWith('oracle:'))];
const tasks = [...new Set(outcomes.map((o) => o.task))];
const setup = JSON.parse(sets[0].settings);
const report = buildReport(outcomes, policies, tasks, Math.min(...outcomes.map((o) => o.seed)), setup.checkpoint ?? undefined, setup);
for (const x of sets) console.log(`${x.dir}: ${x.episodes.length} episodes${x.finished ? '' : ' (unfinished)'}`);
console.log(`\n${reportMarkdown(report)}`);
const pooled = policies.map((p) => {
  const ts = Object.values(report.policies[p].tasks);
  return { p, k: ts.reduce((s, t) => s + t.successes, 0), n: ts.reduce((s, t) => s + t.episodes, 0) };
});
const pct = (x) => (100 * x).toFixed(1);
const [first, last] = [pooled[0], pooled[pooled.length - 1]];
const rate = (x) => (x.n ? x.k / x.n : 0);
console.log('| policy | successes | 95 % CI | points above the first | share of the gap first-to-last closed |');
console.log('| --- | --- | --- | --- | --- |');
for (const x of pooled) {
  const [lo, hi] = wilson(x.k, x.n);
  const gap = rate(last) - rate(first);
  const closed = gap > 0 ? `${pct((rate(x) - rate(first)) / gap)} %` : 'n/a';
  console.log(
    `| ${x.p} | ${x.k}/${x.n} = ${pct(rate(x))} % | ${pct(lo)}-${pct(hi)} % | ${(100 * (rate(x) - rate(first))).toFixed(1)} | ${closed} |`,
  );
}
