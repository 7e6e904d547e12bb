import type { MessageRecord } from '../message.js';
import type { FileHandleLike } from './file-system.js';
import { Decoded, decodeAt, RECORD_HEADER_BYTES, recordSizeAt, resync } from './record-codec.js';
import type { Segment, SegmentLog } from './segment-log.js';

/** Bytes per read: one read brings ~4,500 records of 200 B, so a channel reads ahead in bulk. */
const CHUNK_BYTES = 1 << 20;

/**
 * A channel's sequential reader of its topic's segments (DESIGN §2: reads are asynchronous,
 * batched and read ahead). `peek()` never waits: it returns what a previous read brought, or
 * null after starting the next read, and calls `onLoaded` when that read completes so the
 * channel's pump runs again.
 *
 * Records keep their bodies in the read chunk (no copy per message). A corrupt record is
 * reported to the log (counted, logged) and skipped; reading resumes at the next good one.
 */
export class LogReader {
  private readonly log: SegmentLog;
  private readonly onLoaded: () => void;
  private seg: Segment | null;
  private pos = 0;
  private fd: FileHandleLike | null = null;
  private fdSeg: Segment | null = null;
  private records: MessageRecord[] = [];
  private head = 0;
  private loading = false;
  private closed = false;
  /** Offset of the last record read (for resync: a valid record must come after it). */
  private lastOffset: number;
  /** Set after a bad record whose successor could not be found in the same chunk. */
  private resyncing = false;
  /** Bytes the record at `pos` needs when it did not fit one chunk. */
  private need = 0;
  /** The last read found nothing new: the reader is at the end of what is written. */
  private atEnd = false;
  /** The log's append count when that read started. */
  private endAppends = -1;

  constructor(log: SegmentLog, fromOffset: number, onLoaded: () => void) {
    this.log = log;
    this.onLoaded = onLoaded;
    this.lastOffset = fromOffset - 1;
    // The last segment that starts at or before the offset holds it (or the first after it).
    let seg: Segment | null = log.segments[0] ?? null;
    for (const s of log.segments) if (s.firstOffset <= fromOffset) seg = s;
    this.seg = seg;
  }

  /**
   * The next record at or after `offset` without consuming it (`advance()` does), or null
   * while a read is under way (or none is possible: see `exhausted`).
   */
  peek(offset: number): MessageRecord | null {
    const records = this.records;
    while (this.head < records.length) {
      const r = records[this.head] as MessageRecord;
      if (r.offset >= offset) return r;
      this.head++;
    }
    if (this.head > 0) {
      this.records = [];
      this.head = 0;
    }
    if (!this.exhausted) this.startRead();
    return null;
  }

  advance(): void {
    this.head++;
  }

  /**
   * True when the last read found nothing and nothing was appended since: the record a caller
   * waits for is not on disk (lost to corruption), so it must move on.
   */
  get exhausted(): boolean {
    return !this.loading && this.atEnd && this.endAppends === this.log.appends;
  }

  private startRead(): void {
    if (this.loading || this.closed) return;
    this.loading = true;
    const appends = this.log.appends;
    this.read().then(
      (progressed) => {
        this.loading = false;
        if (this.closed) return;
        this.atEnd = !progressed;
        this.endAppends = appends;
        this.onLoaded();
      },
      () => {
        // A failed read (segment deleted under a channel that was emptied, I/O error): the
        // channel sees the end and falls back to memory; the error is the log's to report.
        this.loading = false;
        this.atEnd = true;
        this.endAppends = appends;
        if (!this.closed) this.onLoaded();
      },
    );
  }

  /** Reads the next chunk; false when there is nothing new to read. */
  private async read(): Promise<boolean> {
    for (;;) {
      const seg = this.seg;
      if (seg === null) {
        this.seg = this.log.segments[0] ?? null;
        if (this.seg === null) return false;
        continue;
      }
      if (this.pos >= seg.size) {
        const segments = this.log.segments;
        const next = segments[segments.indexOf(seg) + 1];
        if (next === undefined) return false;
        this.seg = next;
        this.pos = 0;
        this.need = 0;
        this.resyncing = false;
        continue;
      }
      const fd = await this.fdFor(seg);
      const maxRecord = RECORD_HEADER_BYTES + this.log.maxBodyBytes;
      const want = Math.min(seg.size - this.pos, Math.max(CHUNK_BYTES, this.need, this.resyncing ? 2 * maxRecord : 0));
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fd.read(buf, 0, want, this.pos);
      if (this.closed) return false;
      const atSegmentEnd = this.pos + bytesRead >= seg.size;
      if (this.decode(seg, buf, bytesRead, atSegmentEnd)) return true;
    }
  }

  /** Decodes a chunk; true when records were found. Advances `pos` past what was consumed. */
  private decode(seg: Segment, buf: Buffer, end: number, atSegmentEnd: boolean): boolean {
    const maxBody = this.log.maxBodyBytes;
    let p = 0;
    if (this.resyncing) {
      const q = resync(buf, 0, end, this.lastOffset, maxBody);
      if (q < 0) {
        // Keep the last record's worth of bytes: a record may straddle the chunk's end.
        this.pos = atSegmentEnd ? seg.size : this.pos + Math.max(1, end - (RECORD_HEADER_BYTES + maxBody));
        return false;
      }
      this.resyncing = false;
      p = q;
    }
    const found = this.records.length;
    while (p < end) {
      const r = decodeAt(buf, p, end, maxBody, this.log.clock);
      if (typeof r !== 'number') {
        this.records.push(r);
        this.lastOffset = r.offset;
        p += recordSizeAt(buf, p);
        continue;
      }
      if (r === Decoded.Short) {
        if (atSegmentEnd) {
          // A partial record at the end of a finished segment: cut by a crash or truncated.
          this.log.noteCorrupt(seg, this.pos + p);
          p = end;
          break;
        }
        // The record continues in the next read; make sure the next read can hold it.
        this.need = end - p >= 4 ? 8 + buf.readUInt32BE(p) : 0;
        break;
      }
      this.log.noteCorrupt(seg, this.pos + p);
      const q = resync(buf, p + 1, end, this.lastOffset, maxBody);
      if (q < 0) {
        this.resyncing = true;
        p += 1;
        break;
      }
      p = q;
    }
    if (this.records.length > found) this.need = 0;
    this.pos += p;
    return this.records.length > found;
  }

  private async fdFor(seg: Segment): Promise<FileHandleLike> {
    if (this.fdSeg !== seg || this.fd === null) {
      const previous = this.fd;
      this.fd = null;
      await previous?.close();
      const fd = await this.log.fs.open(seg.path, 'r');
      if (this.closed) {
        // Closed while opening: nobody else will close this one.
        await fd.close();
        throw new Error('reader closed');
      }
      this.fd = fd;
      this.fdSeg = seg;
    }
    return this.fd;
  }

  close(): void {
    this.closed = true;
    this.records = [];
    const fd = this.fd;
    this.fd = null;
    void fd?.close().catch(() => undefined);
  }
}

/**
 * A LogReader whose reads are awaited, for code that reads the log outside a channel's pump
 * (recovery, replay, redrive). Kept open across calls with rising offsets, it reads on from
 * where it is instead of from its segment's start.
 */
export class AwaitedLogReader {
  private wake: (() => void) | null = null;
  private readonly reader: LogReader;

  constructor(log: SegmentLog, from: number) {
    this.reader = new LogReader(log, from, () => {
      const wake = this.wake;
      this.wake = null;
      wake?.();
    });
  }

  /** The first record on disk at or after `from` for which `test` holds, or null (end of the log). */
  async find(from: number, test: (record: MessageRecord) => boolean): Promise<MessageRecord | null> {
    const reader = this.reader;
    let at = from;
    for (;;) {
      const r = reader.peek(at);
      if (r === null) {
        if (reader.exhausted) return null;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      // The record found stays next: a later call from past it still sees what follows.
      if (test(r)) return r.compact();
      reader.advance();
      at = r.offset + 1;
    }
  }

  /** Calls `fn` for each record from `from` up to `last` (inclusive) on disk; ends early at the end of the log. */
  async forEach(from: number, last: number, fn: (record: MessageRecord) => void): Promise<void> {
    await this.find(from, (r) => {
      if (r.offset > last) return true;
      fn(r);
      return r.offset === last;
    });
  }

  close(): void {
    this.reader.close();
  }
}

/**
 * Calls `fn` for each record from `from` up to `last` (inclusive) that is on disk, reading
 * ahead as a channel does and waiting for each read; ends early at the end of the log.
 */
export async function forEachRecord(
  log: SegmentLog,
  from: number,
  last: number,
  fn: (record: MessageRecord) => void,
): Promise<void> {
  const reader = new AwaitedLogReader(log, from);
  try {
    await reader.forEach(from, last, fn);
  } finally {
    reader.close();
  }
}

/** The first record on disk at or after `from` for which `test` holds, or null (end of the log). */
export async function findRecord(
  log: SegmentLog,
  from: number,
  test: (record: MessageRecord) => boolean,
): Promise<MessageRecord | null> {
  const reader = new AwaitedLogReader(log, from);
  try {
    return await reader.find(from, test);
  } finally {
    reader.close();
  }
}
