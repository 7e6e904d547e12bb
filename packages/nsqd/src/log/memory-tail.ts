import type { Clock } from '../clock.js';
import { MessageRecord } from '../message.js';
import { encodeRecordFields, wallDueTime } from './record-codec.js';

/**
 * Slots a topic gets on its first message, and keeps while its tail stays this small: a topic
 * costs nothing here until it is published to, and 10 KiB once it is (10,000 topics).
 */
const MIN_CAPACITY = 256;

/**
 * A topic log's in-memory tail: a growable ring addressed by offset (`start` oldest held, `end` next written).
 * Columns of typed arrays, not objects: 32 bytes per message besides its body (40 while it holds a DPUB) (MPUB messages share theirs), and
 * nothing for the GC to walk (an object per message cost ~123 B of heap); a `MessageRecord` is made only when a
 * channel takes it. A flush pins what it writes (`pin`): readers stop seeing trimmed records, slots stay.
 */
export class MemoryTail {
  private capacity = 0;
  private mask = 0;
  private idHi = new Uint32Array(0);
  private idLo = new Uint32Array(0);
  private bodyStart = new Uint32Array(0);
  private bodyLength = new Uint32Array(0);
  /** Publish time, Unix ms. */
  private publishedAt = new Float64Array(0);
  /**
   * Monotonic ms before which a DPUB message may not be delivered; 0 when not deferred. Made on
   * the first DPUB the tail holds (8 B a slot that plain publishes never need).
   */
  private deliverAfter: Float64Array | null = null;
  private data: (Buffer | undefined)[] = [];
  /** Oldest offset readers can get. */
  private startOffset = 0;
  /** Oldest offset whose slot is still occupied: `startOffset`, or lower while pinned. */
  private keptOffset = 0;
  private endOffset = 0;
  /** Offset a flush is writing from (slots from there are kept); Infinity when none. */
  private pinnedOffset = Number.POSITIVE_INFINITY;

  get start(): number {
    return this.startOffset;
  }

  get end(): number {
    return this.endOffset;
  }

  get length(): number {
    return this.endOffset - this.startOffset;
  }

  get slots(): number {
    return this.capacity;
  }

  append(
    data: Buffer,
    start: number,
    length: number,
    idHi: number,
    idLo: number,
    publishedAtMs: number,
    deliverAfter: number,
  ): number {
    if (this.endOffset - this.keptOffset >= this.capacity) this.resize(Math.max(MIN_CAPACITY, this.capacity * 2));
    const offset = this.endOffset++;
    const i = offset & this.mask;
    this.data[i] = data;
    this.bodyStart[i] = start;
    this.bodyLength[i] = length;
    this.idHi[i] = idHi;
    this.idLo[i] = idLo;
    this.publishedAt[i] = publishedAtMs;
    if (this.deliverAfter !== null) this.deliverAfter[i] = deliverAfter;
    else if (deliverAfter !== 0) this.deferredColumn()[i] = deliverAfter;
    return offset;
  }

  /** The message at `offset` as a record of its own, if memory still holds it. */
  get(offset: number): MessageRecord | undefined {
    if (offset < this.startOffset || offset >= this.endOffset) return undefined;
    const i = offset & this.mask;
    return new MessageRecord(
      offset,
      this.idHi[i] as number,
      this.idLo[i] as number,
      this.data[i] as Buffer,
      this.bodyStart[i] as number,
      this.bodyLength[i] as number,
      this.publishedAt[i] as number,
      this.deliverAfterAt(i),
    );
  }

  private deliverAfterAt(i: number): number {
    return this.deliverAfter === null ? 0 : (this.deliverAfter[i] as number);
  }

  private deferredColumn(): Float64Array {
    this.deliverAfter = new Float64Array(this.capacity);
    return this.deliverAfter;
  }

  bodyLengthAt(offset: number): number {
    return this.bodyLength[offset & this.mask] as number;
  }

  /** Encodes a held (or pinned) record at `pos` of `out`; returns the position after it. */
  encodeAt(offset: number, out: Buffer, pos: number, clock: Clock): number {
    const i = offset & this.mask;
    return encodeRecordFields(
      out,
      pos,
      offset,
      this.idHi[i] as number,
      this.idLo[i] as number,
      this.publishedAt[i] as number,
      wallDueTime(this.deliverAfterAt(i), clock),
      this.data[i] as Buffer,
      this.bodyStart[i] as number,
      this.bodyLength[i] as number,
    );
  }

  /** Keeps the slots from `offset` (at least `start`) until `unpin`, whatever is trimmed. */
  pin(offset: number): void {
    this.pinnedOffset = Math.max(offset, this.startOffset);
  }

  unpin(): void {
    this.pinnedOffset = Number.POSITIVE_INFINITY;
    this.release();
  }

  /** Drops every record below `offset` (which may be at most `end`). */
  trimTo(offset: number): void {
    const to = Math.min(offset, this.endOffset);
    if (to <= this.startOffset) return;
    this.startOffset = to;
    this.release();
  }

  /** Empties the tail and makes `offset` the next one (a log reopened after a restart). */
  resetTo(offset: number): void {
    this.clear();
    this.startOffset = offset;
    this.keptOffset = offset;
    this.endOffset = offset;
  }

  /** Drops everything; the next offset stays where it was. */
  clear(): void {
    this.trimTo(this.endOffset);
  }

  /** Frees the slots below both the start and the pin (body references go at once). */
  private release(): void {
    const to = Math.min(this.startOffset, this.pinnedOffset);
    if (to <= this.keptOffset) return;
    for (let o = this.keptOffset; o < to; o++) this.data[o & this.mask] = undefined;
    this.keptOffset = to;
  }

  /** Gives a drained backlog's columns back, on a timer, not at each emptying (reallocating cost 2 % plus GC). */
  shrinkIfEmpty(): void {
    if (this.keptOffset === this.endOffset && this.capacity > MIN_CAPACITY) this.resize(0);
  }

  /** Moves the kept slots into columns of `capacity` (0, or a power of two ≥ the kept count). */
  private resize(capacity: number): void {
    const mask = Math.max(0, capacity - 1);
    const idHi = new Uint32Array(capacity);
    const idLo = new Uint32Array(capacity);
    const bodyStart = new Uint32Array(capacity);
    const bodyLength = new Uint32Array(capacity);
    const publishedAt = new Float64Array(capacity);
    // Kept only while a kept slot is deferred.
    let deliverAfter: Float64Array | null = null;
    for (let o = this.keptOffset; o < this.endOffset && this.deliverAfter !== null; o++) {
      if (this.deliverAfter[o & this.mask] !== 0) {
        deliverAfter = new Float64Array(capacity);
        break;
      }
    }
    const data: (Buffer | undefined)[] = new Array(capacity);
    for (let o = this.keptOffset; o < this.endOffset; o++) {
      const from = o & this.mask;
      const to = o & mask;
      idHi[to] = this.idHi[from] as number;
      idLo[to] = this.idLo[from] as number;
      bodyStart[to] = this.bodyStart[from] as number;
      bodyLength[to] = this.bodyLength[from] as number;
      publishedAt[to] = this.publishedAt[from] as number;
      if (deliverAfter !== null) deliverAfter[to] = this.deliverAfterAt(from);
      data[to] = this.data[from];
    }
    this.idHi = idHi;
    this.idLo = idLo;
    this.bodyStart = bodyStart;
    this.bodyLength = bodyLength;
    this.publishedAt = publishedAt;
    this.deliverAfter = deliverAfter;
    this.data = data;
    this.capacity = capacity;
    this.mask = mask;
  }
}
