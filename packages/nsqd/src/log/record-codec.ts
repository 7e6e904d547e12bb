import { crc32c } from '@nsq-ts/protocol';
import { type Clock, monotonicFromWall, wallFromMonotonic } from '../clock.js';
import { MessageRecord } from '../message.js';

/**
 * One message in a segment file (DESIGN §2). Big-endian, like NSQ's own formats:
 *
 * ```
 *  0  u32  N = payload bytes after this 8-byte header (32 + body length)
 *  4  u32  CRC-32C of those N bytes
 *  8  u32  log offset, high 32 bits      ┐
 * 12  u32  log offset, low 32 bits       │
 * 16  u32  message ID, high half         │ payload (CRC-covered)
 * 20  u32  message ID, low half          │
 * 24  f64  published at, Unix ms         │
 * 32  f64  deliver after, Unix ms (0: not deferred)
 * 40  ...  body                          ┘
 * ```
 *
 * The CRC makes a torn write (power loss mid-append) and a flipped bit detectable, so recovery
 * can truncate exactly the torn part and readers can skip exactly the bad record.
 */
export const RECORD_HEADER_BYTES = 40;
const PAYLOAD_FIXED_BYTES = RECORD_HEADER_BYTES - 8;
const TWO_32 = 2 ** 32;

/** Writes `r` at `pos` of `out` (which must have room); returns the position after it. */
export function encodeRecord(r: MessageRecord, out: Buffer, pos: number, clock: Clock): number {
  return encodeRecordFields(
    out,
    pos,
    r.offset,
    r.idHi,
    r.idLo,
    r.publishedAtMs,
    wallDueTime(r.deliverAfter, clock),
    r.data,
    r.start,
    r.length,
  );
}

/** A monotonic due time (0: none) as the Unix ms a record stores. */
export function wallDueTime(deliverAfter: number, clock: Clock): number {
  return deliverAfter === 0 ? 0 : wallFromMonotonic(deliverAfter, clock);
}

/** The memory tail holds no record objects. */
export function encodeRecordFields(
  out: Buffer,
  pos: number,
  offset: number,
  idHi: number,
  idLo: number,
  publishedAtMs: number,
  deliverAfterWallMs: number,
  data: Buffer,
  start: number,
  length: number,
): number {
  const n = PAYLOAD_FIXED_BYTES + length;
  out.writeUInt32BE(n, pos);
  out.writeUInt32BE(Math.floor(offset / TWO_32), pos + 8);
  out.writeUInt32BE(offset >>> 0, pos + 12);
  out.writeUInt32BE(idHi, pos + 16);
  out.writeUInt32BE(idLo, pos + 20);
  out.writeDoubleBE(publishedAtMs, pos + 24);
  out.writeDoubleBE(deliverAfterWallMs, pos + 32);
  data.copy(out, pos + RECORD_HEADER_BYTES, start, start + length);
  out.writeUInt32BE(crc32c(out, pos + 8, pos + 8 + n), pos + 4);
  return pos + 8 + n;
}

/** Records to append in ascending offset order, by index (mostly the memory tail's columns). */
export interface RecordSource {
  readonly count: number;
  offsetAt(i: number): number;
  bodyLengthAt(i: number): number;
  encodeAt(i: number, out: Buffer, pos: number): number;
}

/** Already-encoded records, back to back (what a replica receives). */
export class EncodedRecords implements RecordSource {
  readonly count: number;
  private readonly positions: number[] = [];

  constructor(private readonly bytes: Buffer) {
    for (let pos = 0; pos + 8 <= bytes.length; pos += recordSizeAt(bytes, pos)) this.positions.push(pos);
    this.count = this.positions.length;
  }

  offsetAt(i: number): number {
    const p = this.positions[i] as number;
    return this.bytes.readUInt32BE(p + 8) * TWO_32 + this.bytes.readUInt32BE(p + 12);
  }

  bodyLengthAt(i: number): number {
    return this.bytes.readUInt32BE(this.positions[i] as number) - PAYLOAD_FIXED_BYTES;
  }

  encodeAt(i: number, out: Buffer, pos: number): number {
    const p = this.positions[i] as number;
    return pos + this.bytes.copy(out, pos, p, p + recordSizeAt(this.bytes, p));
  }
}

export const Decoded = {
  /** Not enough bytes for the record (the rest is in the next read, or the file is torn). */
  Short: 0,
  /** Bytes that are not a valid record: implausible length or a CRC mismatch. */
  Bad: 1,
} as const;

/** The record at `pos` of `buf[0, end)`, else Short or Bad; its body stays a range of `buf`. */
export function decodeAt(
  buf: Buffer,
  pos: number,
  end: number,
  maxBodyBytes: number,
  clock: Clock,
): MessageRecord | number {
  if (end - pos < 8) return Decoded.Short;
  const n = buf.readUInt32BE(pos);
  if (n < PAYLOAD_FIXED_BYTES || n > PAYLOAD_FIXED_BYTES + maxBodyBytes) return Decoded.Bad;
  if (end - pos - 8 < n) return Decoded.Short;
  if (crc32c(buf, pos + 8, pos + 8 + n) !== buf.readUInt32BE(pos + 4)) return Decoded.Bad;
  const offset = buf.readUInt32BE(pos + 8) * TWO_32 + buf.readUInt32BE(pos + 12);
  const deliverAtWall = buf.readDoubleBE(pos + 32);
  return new MessageRecord(
    offset,
    buf.readUInt32BE(pos + 16),
    buf.readUInt32BE(pos + 20),
    buf,
    pos + RECORD_HEADER_BYTES,
    n - PAYLOAD_FIXED_BYTES,
    buf.readDoubleBE(pos + 24),
    deliverAtWall === 0 ? 0 : Math.max(1, monotonicFromWall(deliverAtWall, clock)),
  );
}

/** Valid only after `decodeAt` returned a record there. */
export function recordSizeAt(buf: Buffer, pos: number): number {
  return 8 + buf.readUInt32BE(pos);
}

/**
 * After a bad record: the first position in `buf[from, end)` where a valid record with an
 * offset above `minOffset` starts, or -1. The offset test rejects almost every false start
 * before the CRC is computed; the CRC rejects the rest.
 */
export function resync(buf: Buffer, from: number, end: number, minOffset: number, maxBodyBytes: number): number {
  for (let p = from; p + RECORD_HEADER_BYTES <= end; p++) {
    const n = buf.readUInt32BE(p);
    if (n < PAYLOAD_FIXED_BYTES || n > PAYLOAD_FIXED_BYTES + maxBodyBytes || p + 8 + n > end) continue;
    const offset = buf.readUInt32BE(p + 8) * TWO_32 + buf.readUInt32BE(p + 12);
    if (offset <= minOffset || offset > minOffset + TWO_32) continue;
    if (crc32c(buf, p + 8, p + 8 + n) === buf.readUInt32BE(p + 4)) return p;
  }
  return -1;
}
