import { LogReader } from './log/log-reader.js';
import type { SegmentLog } from './log/segment-log.js';
import type { Logger } from './logger.js';
import type { MessageRecord } from './message.js';
import type { TopicLog } from './topic-log.js';

/** What a channel's disk reads see and move of it (a `Channel` is one). */
export interface DiskReadingChannel {
  readonly name: string;
  readonly topic: TopicLog;
  /** Next log offset the channel will take. */
  cursor: number;
  /** Runs the channel's pump soon. */
  schedule(): void;
}

/**
 * A channel's reads of what left memory: a read-ahead over its topic's segment files from the
 * cursor, opened on the first read below the memory tail and closed whenever the cursor jumps.
 */
export class ChannelDiskReader {
  private reader: LogReader | null = null;
  /** Redrives waiting for the reader's next load. */
  private waiters: (() => void)[] = [];

  constructor(
    private readonly channel: DiskReadingChannel,
    private readonly logger: Logger,
  ) {}

  /** The record at the cursor from disk, or null while the read-ahead loads (it reschedules the pump). */
  read(limit: number): MessageRecord | null {
    const r = this.peek(limit);
    // Null, or memory's record (the reader closed): nothing to move on.
    if (r === null || this.reader === null) return r;
    this.reader.advance();
    const topic = this.channel.topic;
    topic.noteDiskRead();
    if (r.offset >= topic.tail.start) this.close();
    return r;
  }

  /** `read` without taking it: the cursor's record stays next. */
  peek(limit: number): MessageRecord | null {
    const channel = this.channel;
    const topic = channel.topic;
    const tail = topic.tail;
    this.reader ??= new LogReader(topic.log as SegmentLog, channel.cursor, this.onLoaded);
    const reader = this.reader;
    const r = reader.peek(channel.cursor);
    if (r !== null) {
      if (r.offset >= limit) return null;
      if (r.offset > tail.start) {
        // Memory is the authority for what it holds (cannot happen while flushes write in order).
        this.close();
        channel.cursor = tail.start;
        return tail.get(channel.cursor) ?? null;
      }
      return r;
    }
    if (reader.exhausted) {
      // Records between the cursor and memory are not on disk: lost to a corrupt segment.
      this.logger.error(
        `CHANNEL(${topic.name}:${channel.name}): offsets ${channel.cursor}-${tail.start - 1} not found on disk, skipped`,
      );
      this.close();
      channel.cursor = tail.start;
      channel.schedule();
    }
    return null;
  }

  /** A read-ahead is open (its record at the cursor is the one `peek` gave). */
  get open(): boolean {
    return this.reader !== null;
  }

  private readonly onLoaded = (): void => {
    this.channel.schedule();
    const waiters = this.waiters;
    if (waiters.length > 0) this.waiters = [];
    for (const resolve of waiters) resolve();
  };

  /** Resolves when the disk read under way is in; null when none is. */
  loading(): Promise<void> | null {
    if (this.reader === null || this.channel.cursor >= this.channel.topic.tail.start) return null;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.reader?.close();
    this.reader = null;
  }
}
