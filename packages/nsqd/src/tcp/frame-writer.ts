import { FRAME_HEADER_BYTES, MESSAGE_HEADER_BYTES, type OutputSink, writeMessageHeaderRaw } from '@nsq-ts/protocol';
import type { Clock, TimerHandle } from '../clock.js';
import type { MessageRecord } from '../message.js';

/**
 * Over this many unsent bytes a connection gets no messages and its input is paused until it
 * drains, so a client that never reads cannot grow nsqd's memory; if it stays over for the
 * write deadline (nsqd's is the heartbeat interval), it is disconnected.
 */
export const MAX_PENDING_WRITE_BYTES = 4 * 1024 * 1024;

const SLAB_BYTES = 256 * 1024;
/** Bodies above this go to the sink as they are instead of being copied into the slab. */
const COPY_LIMIT_BYTES = 8 * 1024;
const NO_SLAB = Buffer.alloc(0);
/** [size][frame type][timestamp][attempts][ID]: what precedes a message body on the wire. */
const MESSAGE_PREFIX_BYTES = FRAME_HEADER_BYTES + MESSAGE_HEADER_BYTES;

export interface FrameWriterEvents {
  /** The first frame since the last flush: flush at the end of this tick. */
  onDirty(writer: FrameWriter): void;
  onCongested(): void;
  onDrained(): void;
  /** Still over the cap a write deadline after it got there: the peer does not read. */
  onWriteDeadline(unsentBytes: number, deadlineMs: number): void;
}

/** A connection's output: a slab handed to the corked sink, so a tick's frames leave in one writev. */
export class FrameWriter {
  private out: OutputSink;
  /** Allocated on the first message: a publisher or an idle connection never needs one. */
  private slab: Buffer = NO_SLAB;
  private slabStart = 0;
  private slabPos = 0;
  private corked = false;
  dirty = false;
  congested = false;
  private closed = false;
  private deadlineMs: number;
  /** One timer for the connection's life, refresh()ed at each congestion. */
  private deadlineTimer: TimerHandle | null = null;
  private deadlineArmed = false;

  constructor(
    out: OutputSink,
    private readonly clock: Clock,
    private readonly events: FrameWriterEvents,
    writeDeadlineMs: number,
  ) {
    this.out = out;
    this.deadlineMs = writeDeadlineMs;
  }

  setSink(out: OutputSink): void {
    this.out = out;
  }

  /** Sets the write deadline (0 or less: none) and disarms a running one. */
  setWriteDeadline(ms: number): void {
    this.deadlineMs = ms;
    this.deadlineArmed = false;
    if (this.deadlineTimer !== null) this.clock.clearTimer(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  /** Bytes of the output slab held (0 until the first message, and after releaseSlab()). */
  get slabBytes(): number {
    return this.slab.length;
  }

  get unsentBytes(): number {
    return this.out.writableLength + this.slabPos - this.slabStart;
  }

  /** Small bodies are copied next to their header; large ones go to the sink as they are. */
  writeMessage(record: MessageRecord, attempts: number, outputBufferSize: number): void {
    const length = record.length;
    const frameBytes = MESSAGE_PREFIX_BYTES + length;
    this.cork();
    const large = frameBytes > outputBufferSize || frameBytes > COPY_LIMIT_BYTES;
    if (!large && this.slabPos - this.slabStart + frameBytes > outputBufferSize) this.flushSlab();
    this.ensureSlab(large ? MESSAGE_PREFIX_BYTES : frameBytes);
    const at = writeMessageHeaderRaw(
      this.slab,
      this.slabPos,
      length,
      record.publishedAtMs,
      attempts,
      record.idHi,
      record.idLo,
    );
    if (large) {
      this.slabPos = at;
      this.flushSlab();
      this.out.write(record.body);
    } else {
      record.data.copy(this.slab, at, record.start, record.start + length);
      this.slabPos = at + length;
    }
    // Checked per message too, so one delivery pass cannot overshoot the cap by a whole RDY count.
    if (!this.congested && this.out.writableLength + this.slabPos - this.slabStart > MAX_PENDING_WRITE_BYTES) {
      this.congest();
    }
    this.markDirty();
  }

  writeFrame(frame: Buffer): void {
    if (this.closed) return;
    this.cork();
    this.flushSlab();
    this.out.write(frame);
    this.markDirty();
  }

  /** Sends everything buffered: one writev per flush thanks to cork/uncork. */
  flush(): void {
    this.dirty = false;
    if (this.closed) return;
    this.flushSlab();
    if (this.corked) {
      this.corked = false;
      this.out.uncork();
    }
    if (this.out.writableLength > MAX_PENDING_WRITE_BYTES && !this.congested) this.congest();
  }

  drained(): void {
    if (this.congested && this.out.writableLength <= MAX_PENDING_WRITE_BYTES) {
      this.congested = false;
      this.deadlineArmed = false;
      this.events.onDrained();
    }
  }

  /**
   * Gives the slab back when nothing is buffered in it (an idle consumer does not keep 256 KiB):
   * the next message allocates a new one. Regions already handed to the sink keep their memory
   * until they are sent.
   */
  releaseSlab(): void {
    if (this.slabPos > this.slabStart) return;
    this.slab = NO_SLAB;
    this.slabStart = 0;
    this.slabPos = 0;
  }

  close(): void {
    this.closed = true;
    this.releaseSlab();
    this.deadlineArmed = false;
    if (this.deadlineTimer !== null) this.clock.clearTimer(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private markDirty(): void {
    if (!this.dirty) {
      this.dirty = true;
      this.events.onDirty(this);
    }
  }

  private cork(): void {
    if (!this.corked) {
      this.corked = true;
      this.out.cork();
    }
  }

  private ensureSlab(bytes: number): void {
    if (this.slabPos + bytes <= this.slab.length) return;
    this.flushSlab();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    this.slabStart = 0;
    this.slabPos = 0;
  }

  /** Hands the buffered region to the sink (still corked: it leaves at flush()). */
  private flushSlab(): void {
    if (this.slabPos > this.slabStart) {
      this.out.write(this.slab.subarray(this.slabStart, this.slabPos));
      this.slabStart = this.slabPos;
    }
  }

  private congest(): void {
    this.congested = true;
    this.events.onCongested();
    if (this.deadlineMs <= 0 || this.deadlineArmed) return;
    this.deadlineArmed = true;
    if (this.deadlineTimer === null) {
      this.deadlineTimer = this.clock.setTimer(() => this.deadlineExpired(), this.deadlineMs);
    } else this.deadlineTimer.refresh();
  }

  private deadlineExpired(): void {
    if (!this.deadlineArmed) return;
    this.deadlineArmed = false;
    if (this.closed || this.out.writableLength <= MAX_PENDING_WRITE_BYTES) return;
    this.events.onWriteDeadline(this.out.writableLength, this.deadlineMs);
  }
}
