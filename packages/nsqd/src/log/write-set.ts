import type { Clock } from '../clock.js';
import type { MessageRecord } from '../message.js';
import type { MemoryTail } from './memory-tail.js';
import { encodeRecord, type RecordSource } from './record-codec.js';

/**
 * What one flush appends to a topic's log: records below `from` that channels still hold
 * (`held`, ascending), then the memory tail's records in [from, to). The tail is pinned from
 * `from` while the write runs, so trimming cannot free what is being written.
 */
export class WriteSet implements RecordSource {
  readonly count: number;

  constructor(
    private readonly held: readonly MessageRecord[],
    private readonly tail: MemoryTail,
    private readonly from: number,
    to: number,
    private readonly clock: Clock,
  ) {
    this.count = held.length + Math.max(0, to - from);
  }

  offsetAt(i: number): number {
    const held = this.held;
    return i < held.length ? (held[i] as MessageRecord).offset : this.from + i - held.length;
  }

  bodyLengthAt(i: number): number {
    const held = this.held;
    return i < held.length ? (held[i] as MessageRecord).length : this.tail.bodyLengthAt(this.from + i - held.length);
  }

  encodeAt(i: number, out: Buffer, pos: number): number {
    const held = this.held;
    if (i < held.length) return encodeRecord(held[i] as MessageRecord, out, pos, this.clock);
    return this.tail.encodeAt(this.from + i - held.length, out, pos, this.clock);
  }
}
