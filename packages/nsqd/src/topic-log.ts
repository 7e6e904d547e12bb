import type { SkipRange } from './durable-state.js';
import type { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';

/** What a channel reads of its topic (a `Topic` is one): the log and where reading must stop. */
export interface TopicLog {
  readonly name: string;
  /** The newest part of the log, in memory. */
  readonly tail: MemoryTail;
  /** The segment files; null for a topic that never touches disk. */
  readonly log: SegmentLog | null;
  readonly skips: readonly SkipRange[];
  /** The log's end, the release mark while paused, or in durable mode what is stored. */
  readonly readLimit: number;
  /** message_ttl in ms (0 = off): older messages are not delivered. */
  readonly messageTtlMs: number;
  /** A channel let a message expire (the topic's expired_count). */
  noteExpired(): void;
  /** Offsets in [from, to) that lie in skipped ranges. */
  skippedBetween(from: number, to: number): number;
  /** Drops from memory what every channel has passed. */
  trim(): void;
  /** Counts a record read from the segment files toward --sync-every. */
  noteDiskRead(): void;
}
