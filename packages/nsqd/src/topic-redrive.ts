import type { Channel } from './channel.js';
import type { SkipRange } from './durable-state.js';
import { AwaitedLogReader } from './log/log-reader.js';
import type { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';
import type { MessageRecord } from './message.js';
import { skipAt } from './skip-ranges.js';

/** Messages a redrive moves per step (and per flush it waits for). */
const REDRIVE_CHUNK = 1_000;

/** What a redrive reads and changes of the topic it empties (a `Topic` is one). */
export interface RedriveSource {
  readonly deleted: boolean;
  readonly channels: ReadonlyMap<string, Channel>;
  readonly tail: MemoryTail;
  readonly log: SegmentLog | null;
  readonly backlogStart: number;
  readonly skips: readonly SkipRange[];
  /** Messages moved out of this topic by POST /topic/redrive. */
  redrivenCount: number;
  skippedBetween(from: number, to: number): number;
  /** Without channels: [from, to) of the backlog moved away, skipped from now on. */
  skipMoved(from: number, to: number): void;
  /** Resolves once everything appended so far is stored; null without storage. */
  flushed(): Promise<void> | null;
}

/** The topic a redrive fills. */
export interface RedriveTarget {
  readonly deleted: boolean;
  /** Appends a copy of `record`, published at `publishedAtMs`, as a dead letter with its intent. */
  appendDeadLetter(record: MessageRecord, publishedAtMs: number): void;
}

/**
 * POST /topic/redrive: moves up to `max` messages of `from` into `into` — what the first
 * channel has ready (requeued, then unread), or without channels the buffered backlog —
 * republished there at `wallMs()`, body kept. Each chunk's appends to `into` and its removal
 * from `from` happen in one synchronous step and so go in one flush; the appends are dead
 * letters with their intent, so a crash before that flush's state write skips them in `into`
 * and leaves them in `from`. Resolves with how many moved once they are stored.
 */
export async function redrive(
  from: RedriveSource,
  into: RedriveTarget,
  max: number,
  wallMs: () => number,
): Promise<number> {
  const sink = (record: MessageRecord) => into.appendDeadLetter(record, wallMs());
  const disk: BacklogReading = { reader: null, next: -1 };
  try {
    return await redriveChunks(from, into, max, sink, disk);
  } finally {
    disk.reader?.close();
  }
}

/**
 * The backlog's disk reader, kept across chunks while each starts where the last ended: a new
 * reader starts at the beginning of its segment, so one per chunk would read ever more of it.
 */
interface BacklogReading {
  reader: AwaitedLogReader | null;
  /** The offset the reader is at. */
  next: number;
}

async function redriveChunks(
  from: RedriveSource,
  into: RedriveTarget,
  max: number,
  sink: (record: MessageRecord) => void,
  disk: BacklogReading,
): Promise<number> {
  let moved = 0;
  while (moved < max && !from.deleted && !into.deleted) {
    const chunk = Math.min(REDRIVE_CHUNK, max - moved);
    const channel = from.channels.values().next().value;
    let n: number;
    if (channel !== undefined) {
      n = channel.drain(chunk, sink);
      if (n === 0) {
        const loading = channel.diskRead();
        if (loading === null) break;
        await loading;
        continue;
      }
    } else {
      n = await drainBacklog(from, chunk, sink, disk);
      if (n === 0) break;
    }
    moved += n;
    from.redrivenCount += n;
    await (from.flushed() ?? new Promise<void>((resolve) => setImmediate(resolve)));
  }
  return moved;
}

/** Without channels: up to `max` messages of the backlog into `sink`, then skipped in `topic`. */
async function drainBacklog(
  topic: RedriveSource,
  max: number,
  sink: (record: MessageRecord) => void,
  disk: BacklogReading,
): Promise<number> {
  const tail = topic.tail;
  const start = topic.backlogStart;
  let from = start;
  for (let skip = skipAt(topic.skips, from); skip !== undefined; skip = skipAt(topic.skips, from)) from = skip[1];
  const records: MessageRecord[] = [];
  const log = topic.log;
  if (log !== null && from < tail.start) {
    const last = Math.min(tail.start, from + max) - 1;
    if (disk.reader === null || disk.next !== from) {
      disk.reader?.close();
      disk.reader = new AwaitedLogReader(log, from);
    }
    await disk.reader.forEach(from, last, (r) => {
      if (records.length < max) records.push(r.compact());
    });
    disk.next = last + 1;
  }
  // The read was asynchronous: only a backlog still as it was is moved.
  if (
    topic.channels.size > 0 ||
    topic.backlogStart !== start ||
    skipAt(topic.skips, from) !== undefined ||
    topic.deleted
  )
    return 0;
  let to = records.length > 0 ? (records[records.length - 1] as MessageRecord).offset + 1 : from;
  for (let o = Math.max(to, tail.start); o < tail.end && records.length < max; o++) {
    records.push(tail.get(o) as MessageRecord);
    to = o + 1;
  }
  let n = 0;
  for (const r of records) {
    if (topic.skippedBetween(r.offset, r.offset + 1) > 0) continue;
    sink(r);
    n++;
  }
  if (to > from) topic.skipMoved(from, to);
  return n;
}

/**
 * Offsets of dead letters appended since the last flush took them. The flush stores them (an
 * intent) before its appends and deletes the intent in the state write that also removes them
 * from their channels: an intent found at start-up marks records whose move did not commit,
 * and they are skipped.
 */
export class DeadLetterIntents {
  private unflushed: number[] = [];

  add(offset: number): void {
    this.unflushed.push(offset);
  }

  /** The dead letters a flush writes. */
  take(): number[] {
    const offsets = this.unflushed;
    if (offsets.length > 0) this.unflushed = [];
    return offsets;
  }

  /** A flush failed: its dead letters go with the next one. */
  untake(offsets: readonly number[]): void {
    if (offsets.length > 0) this.unflushed = [...offsets, ...this.unflushed];
  }
}
