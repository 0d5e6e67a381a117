import { computeActionStats, saveActionStats } from '../data/action-stats.js';
import { loadCard, type DatasetCard } from '../data/card.js';
import { checkFeaturesJson } from '../data/features-json.js';
import { formatInspect, inspectDataset } from '../data/inspect.js';
import { withByteProgress } from '../data/episode-progress.js';
import { listShards, readEpisodes } from '../data/rlds.js';
import { UserError } from '../core/errors.js';
import { bool, requireStr, str, type Command, type Options, type ParsedOptions } from './command.js';

export const DATA_OPTIONS: Options = {
  data: { type: 'string', arg: 'NAME|PATH', description: 'dataset card: a name in datasets/ (rt1, bridge) or a card file', default: 'rt1' },
  'data-dir': { type: 'string', arg: 'DIR', description: 'directory holding the TFRecord shards' },
  'skip-corrupt': { type: 'boolean', description: 'skip corrupt records (counted and reported) instead of stopping at the first' },
};

/** The card and the comma-separated `--data-dir` directories, each checked against the card's features. */
export function checkedDataDirs(opts: ParsedOptions): { card: DatasetCard; dirs: string[] } {
  const dirs = requireStr(opts, 'data-dir').split(',').filter(Boolean);
  const card = loadCard(requireStr(opts, 'data'));
  checkDirs(card, dirs);
  return { card, dirs };
}

/** Each directory's features.json must describe the card's features; the problems name the directory. */
export function checkDirs(card: DatasetCard, dirs: string[]): void {
  for (const d of dirs) {
    const fj = checkFeaturesJson(d, card);
    if (fj.problems.length) throw new UserError(fj.problems.join('\n'));
  }
}

export const dataInspectCommand: Command = {
  name: 'data inspect',
  summary: 'shards, episodes, steps, features, image codec/size, instructions and episode lengths of a dataset',
  options: { ...DATA_OPTIONS, json: { type: 'boolean', description: 'print one JSON object instead of text' } },
  async run(opts) {
    const card = loadCard(requireStr(opts, 'data'));
    const report = await inspectDataset(requireStr(opts, 'data-dir'), card, bool(opts, 'skip-corrupt'), true);
    console.log(bool(opts, 'json') ? JSON.stringify(report, null, 2) : formatInspect(report));
    if (report.corrupt_skipped) console.error(`skipped ${report.corrupt_skipped} corrupt record(s)`);
  },
};

export const dataStatsCommand: Command = {
  name: 'data stats',
  summary: 'per-dimension action statistics (mean, std, min, max, q01, q99) used to normalise actions',
  options: { ...DATA_OPTIONS, out: { type: 'string', arg: 'FILE', description: 'write the statistics as JSON here (default: print)' } },
  async run(opts) {
    const card = loadCard(requireStr(opts, 'data'));
    const dataDir = requireStr(opts, 'data-dir');
    const fj = checkFeaturesJson(dataDir, card);
    if (fj.problems.length) throw new UserError(fj.problems.join('\n'));
    let skipped = 0;
    const shards = listShards(dataDir, card);
    const episodes = readEpisodes(dataDir, card, {
      shards,
      skipCorrupt: bool(opts, 'skip-corrupt'),
      onCorrupt: (m) => (skipped++, console.error(`skipped: ${m}`)),
    });
    const stats = await computeActionStats(card, withByteProgress(episodes, shards, 'stats'));
    const out = str(opts, 'out');
    if (out) {
      saveActionStats(out, stats);
      console.log(`wrote ${out}: ${stats.count} steps, ${stats.names.length} action dimensions`);
    } else console.log(JSON.stringify(stats, null, 2));
    const w = Math.max(...stats.names.map((n) => n.length));
    console.error(
      [
        'dimension'.padEnd(w) + '      mean       std       q01       q99',
        ...stats.names.map(
          (n, i) =>
            `${n.padEnd(w)} ${[stats.mean[i]!, stats.std[i]!, stats.q01[i]!, stats.q99[i]!].map((v) => v.toFixed(4).padStart(9)).join(' ')}`,
        ),
      ].join('\n'),
    );
    if (skipped) console.error(`skipped ${skipped} corrupt record(s)`);
  },
};
