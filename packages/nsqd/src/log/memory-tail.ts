import type { MessageRecord } from '../message.js';

/**
 * The in-memory tail of a topic log: records addressed by offset in a growable ring. Offsets
 * increase forever; `start` is the oldest offset still held, `end` the next one to be written.
 */
export class MemoryTail {
  private ring: (MessageRecord | undefined)[] = new Array(1024);
  private mask = 1023;
  private startOffset = 0;
  private endOffset = 0;

  get start(): number {
    return this.startOffset;
  }

  get end(): number {
    return this.endOffset;
  }

  get length(): number {
    return this.endOffset - this.startOffset;
  }

  /** Offset the next appended record will get. */
  nextOffset(): number {
    return this.endOffset;
  }

  append(record: MessageRecord): void {
    if (this.endOffset - this.startOffset > this.mask) this.grow();
    this.ring[this.endOffset & this.mask] = record;
    this.endOffset++;
  }

  get(offset: number): MessageRecord | undefined {
    if (offset < this.startOffset || offset >= this.endOffset) return undefined;
    return this.ring[offset & this.mask];
  }

  /** Drops every record below `offset` (which may be at most `end`). */
  trimTo(offset: number): void {
    const to = Math.min(offset, this.endOffset);
    for (let o = this.startOffset; o < to; o++) this.ring[o & this.mask] = undefined;
    if (to > this.startOffset) this.startOffset = to;
    if (this.length === 0 && this.ring.length > 1024) this.shrink();
  }

  /** Empties the tail and makes `offset` the next one (a log reopened after a restart). */
  resetTo(offset: number): void {
    this.clear();
    this.startOffset = offset;
    this.endOffset = offset;
  }

  /** Drops everything; the next offset stays where it was. */
  clear(): void {
    this.trimTo(this.endOffset);
  }

  private grow(): void {
    const size = this.ring.length * 2;
    const next: (MessageRecord | undefined)[] = new Array(size);
    for (let o = this.startOffset; o < this.endOffset; o++) next[o & (size - 1)] = this.ring[o & this.mask];
    this.ring = next;
    this.mask = size - 1;
  }

  private shrink(): void {
    this.ring = new Array(1024);
    this.mask = 1023;
  }
}
