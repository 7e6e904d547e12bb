import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { FileHandleLike, FileSystem } from './file-system.js';
import { decodeAt, RECORD_HEADER_BYTES, type RecordSource, recordSizeAt, resync } from './record-codec.js';

/** One segment file: records with offsets from `firstOffset` up, `size` bytes of them written. */
export interface Segment {
  readonly firstOffset: number;
  readonly path: string;
  /** Bytes known good: written and acknowledged by the OS (readers never read past it). */
  size: number;
}

export interface SegmentLogOptions {
  /** A new segment starts once the current one would pass this (--max-bytes-per-file). */
  maxBytesPerFile: number;
  /** Largest body a valid record can have (--max-msg-size). */
  maxBodyBytes: number;
  /** Converts stored due times (Unix ms) to the broker's monotonic clock. */
  clock: Clock;
  fs: FileSystem;
  /**
   * Yield to the event loop while encoding a write (write-behind, where deliveries go on meanwhile);
   * not when publishers wait for the write (--mem-queue-size=0), where a yield only delays the commit.
   */
  yieldWhileEncoding?: boolean;
}

/**
 * Bytes encoded per write: bounds the encoding buffer (one 240 MB buffer for a 1M backlog raised RSS as much)
 * and each step's event-loop hold (4 MiB took ~4 ms; out 456k → 549k-611k msgs/s going to 512 KiB).
 */
const WRITE_BYTES = 512 * 1024;
/**
 * Encoding yields to the event loop after this many bytes of a write (~0.1–0.2 ms of CRC and
 * copying here): a 512 KiB step held deliveries 0.6–1.4 ms, 23 times a second of write-behind
 * at 50k msgs/s, which is where the p99 of publish → deliver sat.
 */
const ENCODE_SLICE_BYTES = 64 * 1024;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const SEGMENT_NAME = /^(\d{20})\.seg$/;

function segmentName(firstOffset: number): string {
  return `${String(firstOffset).padStart(20, '0')}.seg`;
}

/**
 * The on-disk part of a topic log (DESIGN §2): segment files named by their first offset; offsets may skip
 * (records finished before their write never are). fsync is separate so the storage can group-commit.
 */
export class SegmentLog {
  readonly dir: string;
  readonly segments: Segment[] = [];
  endOffset = 0;
  /** Successful appends so far: lets a reader tell "nothing more on disk" from "not yet read". */
  appends = 0;
  private readonly options: SegmentLogOptions;
  private readonly logger: Logger;
  private fd: FileHandleLike | null = null;
  private unsynced = false;
  private dirUnsynced = false;
  /** Reused until idle (`release`): a fresh 4 MiB buffer per write left ~20-30 MiB freed-but-kept malloc in RSS. */
  private writeBuf: Buffer | null = null;
  /** Positions of corrupt records seen by any reader or by recovery (counted once each). */
  private readonly corrupt = new Set<string>();
  /** Corrupt records found since start (not lowered when their segment is deleted). */
  private corruptCount = 0;

  private constructor(dir: string, options: SegmentLogOptions, logger: Logger) {
    this.dir = dir;
    this.options = options;
    this.logger = logger;
  }

  /** A log for a topic made at run time: its directory is made with its first segment. */
  static fresh(dir: string, options: SegmentLogOptions, logger: Logger): SegmentLog {
    return new SegmentLog(dir, options, logger);
  }

  /** Opens (creating) the log: a torn tail is truncated at the last good record; corrupt ones are skipped. */
  static async open(dir: string, options: SegmentLogOptions, logger: Logger): Promise<SegmentLog> {
    const log = new SegmentLog(dir, options, logger);
    await options.fs.mkdir(dir, { recursive: true });
    const names = (await options.fs.readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
    for (const name of names) {
      const firstOffset = Number((SEGMENT_NAME.exec(name) as RegExpExecArray)[1]);
      log.segments.push({ firstOffset, path: join(dir, name), size: 0 });
    }
    const last = log.segments[log.segments.length - 1];
    if (last !== undefined) await log.recoverLast(last);
    return log;
  }

  private async recoverLast(seg: Segment): Promise<void> {
    const buf = await this.fs.readFile(seg.path);
    const { pos, lastOffset, torn } = this.scan(seg, buf, Number.POSITIVE_INFINITY);
    if (torn) {
      this.logger.warn(
        `DISKQUEUE(${this.dir}): truncating ${buf.length - pos} torn byte(s) at the end of ${seg.path} (last good record ends at ${pos})`,
      );
      await this.fs.truncate(seg.path, pos);
    }
    seg.size = Math.min(pos, buf.length);
    // Every earlier segment is complete: only the last one can hold the log's end.
    this.endOffset = lastOffset + 1;
    for (const s of this.segments) if (s !== seg) s.size = await fileSize(this.fs, s.path);
  }

  /**
   * Walks a segment's records up to the first at or above `below`: where the walk stopped, the last offset
   * before it, and whether it stopped at bytes no record follows (a torn tail). Corrupt records are noted.
   */
  private scan(seg: Segment, buf: Buffer, below: number): { pos: number; lastOffset: number; torn: boolean } {
    const max = this.options.maxBodyBytes;
    let pos = 0;
    let lastOffset = seg.firstOffset - 1;
    while (pos < buf.length) {
      const r = decodeAt(buf, pos, buf.length, max, this.options.clock);
      if (typeof r !== 'number') {
        if (r.offset >= below) break;
        lastOffset = r.offset;
        pos += recordSizeAt(buf, pos);
        continue;
      }
      const next = resync(buf, pos + 1, buf.length, lastOffset, max);
      if (next < 0) return { pos, lastOffset, torn: true };
      this.noteCorrupt(seg, pos);
      pos = next;
    }
    return { pos, lastOffset, torn: false };
  }

  /**
   * Drops every record at or above `offset`, segments and all: a replica's records that no batch it
   * stored holds (written before a write that failed, or by a leader whose batch nobody acknowledged).
   */
  async truncateFrom(offset: number): Promise<void> {
    if (offset >= this.endOffset) return;
    await this.closeFd();
    let last = this.segments.at(-1);
    while (last !== undefined && last.firstOffset >= offset) {
      this.segments.pop();
      await this.fs.unlink(last.path);
      last = this.segments.at(-1);
    }
    const seg = this.segments.at(-1);
    if (seg !== undefined) {
      const { pos } = this.scan(seg, await this.fs.readFile(seg.path), offset);
      await this.fs.truncate(seg.path, pos);
      seg.size = pos;
    }
    this.dirUnsynced = true;
    this.endOffset = offset;
  }

  get maxBodyBytes(): number {
    return this.options.maxBodyBytes;
  }

  get clock(): Clock {
    return this.options.clock;
  }

  get fs(): FileSystem {
    return this.options.fs;
  }

  get corruptRecords(): number {
    return this.corruptCount;
  }

  noteCorrupt(seg: Segment, pos: number): void {
    const key = `${seg.firstOffset}:${pos}`;
    if (this.corrupt.has(key)) return;
    this.corrupt.add(key);
    this.corruptCount++;
    this.logger.error(`DISKQUEUE(${this.dir}): corrupt record at ${seg.path}:${pos} skipped`);
  }

  get firstOffset(): number {
    return this.segments[0]?.firstOffset ?? this.endOffset;
  }

  get bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** WRITE_BYTES per write; a failure cuts the segment back to its last good size (no half batch). */
  async append(records: RecordSource): Promise<void> {
    const count = records.count;
    let i = 0;
    while (i < count) {
      const seg = await this.writableSegment(records.offsetAt(i), records.bodyLengthAt(i));
      const room = Math.max(0, this.options.maxBytesPerFile - seg.size);
      // Take records until the segment is full or the write is WRITE_BYTES long; at least one,
      // so an oversized record still goes.
      let bytes = 0;
      let j = i;
      while (j < count) {
        const size = RECORD_HEADER_BYTES + records.bodyLengthAt(j);
        if (j > i && (bytes + size > room || bytes + size > WRITE_BYTES)) break;
        bytes += size;
        j++;
      }
      if (this.writeBuf === null || this.writeBuf.length < bytes) this.writeBuf = Buffer.allocUnsafe(bytes);
      const buf = this.writeBuf.subarray(0, bytes);
      let pos = 0;
      let slice = this.options.yieldWhileEncoding === true ? ENCODE_SLICE_BYTES : Number.POSITIVE_INFINITY;
      for (let k = i; k < j; k++) {
        pos = records.encodeAt(k, buf, pos);
        if (pos >= slice && k + 1 < j) {
          await nextTurn();
          slice = pos + ENCODE_SLICE_BYTES;
        }
      }
      const fd = this.fd as FileHandleLike;
      try {
        await writeAll(fd, buf, seg.size);
      } catch (err) {
        await fd.truncate(seg.size).catch(() => undefined);
        throw err;
      }
      seg.size += bytes;
      this.appends++;
      this.unsynced = true;
      this.endOffset = records.offsetAt(j - 1) + 1;
      i = j;
    }
  }

  private async writableSegment(offset: number, bodyLength: number): Promise<Segment> {
    const last = this.segments[this.segments.length - 1];
    const size = RECORD_HEADER_BYTES + bodyLength;
    if (last !== undefined && (last.size === 0 || last.size + size <= this.options.maxBytesPerFile)) {
      this.fd ??= await this.fs.open(last.path, 'r+');
      return last;
    }
    if (this.fd !== null) {
      // NSQ syncs when it rolls to a new file; a finished segment is then never touched again.
      await this.fd.datasync();
      await this.fd.close();
      this.fd = null;
    }
    const seg: Segment = { firstOffset: offset, path: join(this.dir, segmentName(offset)), size: 0 };
    await this.fs.mkdir(this.dir, { recursive: true });
    this.fd = await this.fs.open(seg.path, 'w+');
    this.segments.push(seg);
    this.dirUnsynced = true;
    return seg;
  }

  /** fsyncs what was appended since the last sync (and the directory after a new segment). */
  async sync(): Promise<void> {
    if (this.unsynced && this.fd !== null) {
      this.unsynced = false;
      await this.fd.datasync();
    }
    if (this.dirUnsynced) {
      this.dirUnsynced = false;
      const dir = await this.fs.open(this.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
  }

  /** Closes an idle log's fd and drops its buffer (10,000 topics must not hold 10,000 fds); unsynced data keeps it. */
  async release(): Promise<void> {
    this.writeBuf = null;
    if (this.fd !== null && !this.unsynced) await this.closeFd();
  }

  /** Deletes segments wholly below `offset`, the one being written too if everything is (no file left). */
  async deleteBelow(offset: number): Promise<void> {
    for (;;) {
      const next = this.segments[1];
      const done =
        next !== undefined ? next.firstOffset <= offset : this.segments.length === 1 && offset >= this.endOffset;
      if (!done) return;
      if (next === undefined) await this.closeFd();
      const seg = this.segments.shift() as Segment;
      await this.fs.unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      for (const key of this.corrupt) if (key.startsWith(`${seg.firstOffset}:`)) this.corrupt.delete(key);
    }
  }

  /** Deletes every segment (topic emptied or left without channels); the log restarts at `nextOffset`. */
  async clear(nextOffset: number): Promise<void> {
    await this.closeFd();
    for (const seg of this.segments.splice(0)) await this.fs.unlink(seg.path).catch(() => undefined);
    this.corrupt.clear();
    this.endOffset = nextOffset;
  }

  /** Deletes its own segments, then the directory if empty (a recreated topic may already write in it). */
  async destroy(): Promise<void> {
    await this.closeFd();
    this.dirUnsynced = false;
    for (const seg of this.segments.splice(0)) await this.fs.unlink(seg.path).catch(() => undefined);
    await this.fs.rmdir(this.dir).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.sync();
    await this.closeFd();
  }

  private async closeFd(): Promise<void> {
    const fd = this.fd;
    this.fd = null;
    this.unsynced = false;
    await fd?.close();
  }
}

async function writeAll(fd: FileHandleLike, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fd.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

async function fileSize(fs: FileSystem, path: string): Promise<number> {
  const fd = await fs.open(path, 'r');
  try {
    return (await fd.stat()).size;
  } finally {
    await fd.close();
  }
}
