import { findRecord } from './log/log-reader.js';
import type { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';
import type { MessageRecord } from './message.js';

/** Where a replay starts, or (no longer retained) the earliest time or offset still available. */
export type ReplayTarget = { readonly offset: number } | { readonly earliest: string };

/** What a replay search reads of a topic (a `Topic` is one). */
export interface RetainedLog {
  readonly tail: MemoryTail;
  readonly log: SegmentLog | null;
  readonly backlogStart: number;
  skippedBetween(from: number, to: number): number;
}

/**
 * Where `POST /channel/replay` starts: the first retained message published at or after
 * `sinceMs`, or the message at `offset`; `earliest` when that is no longer retained.
 */
export async function findReplayTarget(
  topic: RetainedLog,
  at: { readonly sinceMs: number } | { readonly offset: number },
): Promise<ReplayTarget> {
  const end = topic.tail.end;
  const earliest = await retainedRecord(topic, topic.backlogStart, () => true);
  if (earliest === null) {
    if ('offset' in at ? at.offset >= end : end === 0) return { offset: end };
    return { earliest: `offset ${end} (nothing retained)` };
  }
  if ('offset' in at) {
    if (at.offset < earliest.offset) return { earliest: `offset ${earliest.offset}` };
    return { offset: at.offset };
  }
  // Offset 0 retained: nothing was ever lost, however early `since` is.
  if (at.sinceMs < earliest.publishedAtMs && earliest.offset > 0) {
    return { earliest: new Date(earliest.publishedAtMs).toISOString() };
  }
  const since = at.sinceMs;
  const found = await retainedRecord(
    topic,
    await segmentBefore(topic, since, earliest.offset),
    (r) => r.publishedAtMs >= since,
  );
  return { offset: found?.offset ?? topic.tail.end };
}

/**
 * Where a scan for `sinceMs` may start: the first offset of the last segment whose first
 * record was published before it (publish times follow log order, bar wall-clock steps).
 */
async function segmentBefore(topic: RetainedLog, sinceMs: number, from: number): Promise<number> {
  const log = topic.log;
  if (log === null) return from;
  const segments = log.segments.filter((s) => s.firstOffset >= from && s.firstOffset < topic.tail.start);
  let lo = 0;
  let hi = segments.length - 1;
  let start = from;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const first = (segments[mid] as { firstOffset: number }).firstOffset;
    const r = await findRecord(log, first, () => true);
    if (r !== null && r.publishedAtMs < sinceMs) {
      start = first;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return start;
}

/** The first record at or after `from`, on disk then in memory, outside skipped ranges, that passes `test`. */
async function retainedRecord(
  topic: RetainedLog,
  from: number,
  test: (r: MessageRecord) => boolean,
): Promise<MessageRecord | null> {
  const tail = topic.tail;
  const wanted = (r: MessageRecord) => topic.skippedBetween(r.offset, r.offset + 1) === 0 && test(r);
  const log = topic.log;
  if (log !== null && from < tail.start && log.segments.length > 0) {
    const r = await findRecord(log, from, (r) => r.offset >= tail.start || wanted(r));
    if (r !== null && r.offset < tail.start) return r;
  }
  for (let o = Math.max(from, tail.start); o < tail.end; o++) {
    const r = tail.get(o) as MessageRecord;
    if (wanted(r)) return r;
  }
  return null;
}
