import { messageIdHex } from '@nsq-ts/protocol';
import type { HeapEntry } from './min-heap.js';

/** A message as a channel holds it; the body is a range of its arrival buffer (MPUB's share theirs), the ID two numbers. */
export class MessageRecord {
  private idText: string | null = null;

  constructor(
    readonly offset: number,
    readonly idHi: number,
    readonly idLo: number,
    /** Holds the body at [start, start + length). */
    readonly data: Buffer,
    readonly start: number,
    readonly length: number,
    /** Publish time, Unix ms (the wire timestamp and e2e latency). */
    readonly publishedAtMs: number,
    /** Monotonic ms before which a DPUB message may not be delivered; 0 when not deferred. */
    readonly deliverAfter: number,
  ) {}

  /** As clients echo them in FIN/REQ/TOUCH. */
  get id(): string {
    if (this.idText === null) this.idText = messageIdHex(this.idHi, this.idLo);
    return this.idText;
  }

  /** The body as a Buffer view (off the hot path: the TCP writer copies from `data`). */
  get body(): Buffer {
    return this.data.subarray(this.start, this.start + this.length);
  }

  /**
   * A copy with its own buffer, for one kept long (requeued, deferred, restored), so it does not
   * pin the allocation its body is part of: an MPUB's body, a topic's arena block, a read chunk
   * (Node's shared 8 KiB pool excepted, which a copy would come from again).
   */
  compact(): MessageRecord {
    const whole = this.data.buffer.byteLength;
    const held = whole === Buffer.poolSize ? this.data.length : whole;
    if (held <= 4 * this.length + 4096) return this;
    const r = new MessageRecord(
      this.offset,
      this.idHi,
      this.idLo,
      Buffer.from(this.body),
      0,
      this.length,
      this.publishedAtMs,
      this.deliverAfter,
    );
    r.idText = this.idText;
    return r;
  }
}

export type MessageState = 'inFlight' | 'requeued' | 'deferred';

/** Moves between the states carrying its attempts; `heapKey` is the in-flight deadline or the due time. */
export class ChannelMessage implements HeapEntry {
  state: MessageState = 'requeued';
  heapKey = 0;
  heapIndex = -1;
  /** null when not in flight. */
  owner: object | null = null;
  /** Monotonic ms of the current delivery (bounds TOUCH by --max-msg-timeout). */
  deliveredAt = 0;

  constructor(
    public record: MessageRecord,
    public attempts: number,
  ) {}
}
