/**
 * Corrupt records skipped with --skip-corrupt, counted once each even when a pass over the data
 * repeats (training reads the shards epoch after epoch), for the report at the end of loading.
 */
export class CorruptRecordReport {
  private readonly seen = new Set<string>();

  constructor(
    /** How many messages the summary lists; the count covers all of them. */
    private readonly listed = 20,
  ) {}

  /** Records one skipped record by its message (which names shard, record and byte offset); true when new. */
  add(message: string): boolean {
    if (this.seen.has(message)) return false;
    this.seen.add(message);
    return true;
  }

  get count(): number {
    return this.seen.size;
  }

  /** `skipped N corrupt record(s):` and the records, one a line; empty when none were skipped. */
  summary(): string {
    if (this.seen.size === 0) return '';
    const messages = [...this.seen];
    const shown = messages.slice(0, this.listed).map((m) => `  ${m}`);
    if (messages.length > this.listed) shown.push(`  ... ${messages.length - this.listed} more`);
    return [`skipped ${messages.length} corrupt record(s):`, ...shown].join('\n');
  }
}
