import type { HeapEntry } from './min-heap.js';

/**
 * One published message, stored once in its topic's log and shared by every channel and every
 * socket that carries it. Immutable after publish.
 */
export class MessageRecord {
  constructor(
    /** Position in the topic log; -1 for a deferred message handed straight to channels. */
    readonly offset: number,
    /** 16 lowercase hex characters, as on the wire. */
    readonly id: string,
    readonly body: Buffer,
    /** Publish time as Unix nanoseconds, split in uint32 halves (see nsTimestampFromMs). */
    readonly tsHi: number,
    readonly tsLo: number,
    /** Publish time, wall-clock ms (e2e latency). */
    readonly publishedAtMs: number,
    /** Monotonic ms before which a DPUB message may not be delivered; 0 when not deferred. */
    readonly deliverAfter: number,
  ) {}
}

/**
 * A channel's copy of a message once it left the log: in flight, requeued or deferred. The
 * same object moves between those states, carrying its attempts; `heapKey` is its in-flight
 * deadline or its due time depending on which heap holds it.
 */
export class ChannelMessage implements HeapEntry {
  heapKey = 0;
  heapIndex = -1;
  /** The connection it is in flight to; null when not in flight. */
  owner: object | null = null;
  /** Monotonic ms of the current delivery (bounds TOUCH by --max-msg-timeout). */
  deliveredAt = 0;

  constructor(
    readonly record: MessageRecord,
    public attempts: number,
  ) {}
}
