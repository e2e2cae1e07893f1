/**
 * The consumer's counters: running totals since it started (`ConsumerStats`, what `handle.stats`
 * returns), and the log line that reports them every `statsIntervalSeconds` and on exit.
 */

/** Running totals since the consumer started. */
export interface ConsumerStats {
  readonly received: number
  readonly committed: number
  readonly failed: number
  readonly deleted: number
  readonly deleteFailures: number
  readonly duplicates: number
  readonly events: number
  readonly commits: number
  /** Commit attempts that failed because the database could not be used. */
  readonly commitRetries: number
  /** Milliseconds of the slowest commit so far. */
  readonly maxCommitMs: number
  /** Sum of commit durations, for an average. */
  readonly totalCommitMs: number
  /** Seconds between SentTimestamp and commit of the oldest message processed so far. */
  readonly oldestMessageAgeSeconds: number | null
}

/** The mutable totals the consumer's fibers add to (plain fields: they are bumped once per batch). */
export class Counters implements ConsumerStats {
  received = 0
  committed = 0
  failed = 0
  deleted = 0
  deleteFailures = 0
  duplicates = 0
  events = 0
  commits = 0
  commitRetries = 0
  maxCommitMs = 0
  totalCommitMs = 0
  oldestMessageAgeSeconds: number | null = null

  snapshot(): ConsumerStats {
    return { ...this }
  }
}

export const zeroStats: ConsumerStats = {
  received: 0,
  committed: 0,
  failed: 0,
  deleted: 0,
  deleteFailures: 0,
  duplicates: 0,
  events: 0,
  commits: 0,
  commitRetries: 0,
  maxCommitMs: 0,
  totalCommitMs: 0,
  oldestMessageAgeSeconds: null
}

/** What the logs show: the window since the previous line, and the totals. */
export const describeStats = (now: ConsumerStats, previous: ConsumerStats, seconds: number) => ({
  received: now.received - previous.received,
  committed: now.committed - previous.committed,
  failed: now.failed - previous.failed,
  deleted: now.deleted - previous.deleted,
  duplicates: now.duplicates - previous.duplicates,
  messagesPerSecond: seconds > 0 ? Math.round((now.committed - previous.committed) / seconds) : 0,
  avgCommitMs:
    now.commits > previous.commits
      ? Math.round((now.totalCommitMs - previous.totalCommitMs) / (now.commits - previous.commits))
      : null,
  maxCommitMs: now.maxCommitMs,
  oldestMessageAgeSeconds: now.oldestMessageAgeSeconds,
  commitRetries: now.commitRetries,
  deleteFailures: now.deleteFailures,
  total: {
    received: now.received,
    committed: now.committed,
    failed: now.failed,
    deleted: now.deleted,
    duplicates: now.duplicates,
    events: now.events
  }
})
