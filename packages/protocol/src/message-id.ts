/**
 * Message IDs (nsq-spec §2.4): a 64-bit snowflake sent as 16 lowercase hex ASCII characters.
 *
 *   bits 63..22  (now_ns >> 20) - 1288834974288   (≈ 1.05 ms ticks since NSQ's epoch)
 *   bits 21..12  node id, 0..1023
 *   bits 11..0   sequence within one tick
 *
 * The value never exists as one number: it is kept as a high and a low 32-bit half, because a
 * double cannot hold 64 bits and BigInt costs an allocation per ID.
 */
const TWIST_EPOCH = 1288834974288;
const SEQUENCE_MASK = 0xfff;
const TWO_POW_32 = 0x1_0000_0000;
const NS_PER_TICK_POW = 20; // one tick = 2^20 ns

export const MESSAGE_ID_LENGTH = 16;

/** The current tick (now_ns >> 20) from a millisecond clock with sub-millisecond precision. */
function currentTick(): number {
  // ns = ms * 1e6; tick = floor(ns / 2^20). Doubles are exact to 2^53, and ms * 1e6 / 2^20 stays
  // far below that, so the loss is only in the sub-tick fraction that floor() drops anyway.
  const ms = performance.timeOrigin + performance.now();
  return Math.floor((ms * 1e6) / 2 ** NS_PER_TICK_POW);
}

const HEX_BYTES = Buffer.from('0123456789abcdef', 'latin1');

/** The 16-character hex form of an ID given as its two 32-bit halves. */
export function messageIdHex(hi: number, lo: number): string {
  return hex8(hi) + hex8(lo);
}

/** Writes the 16 hex characters of an ID straight into `out` (no string on the hot path). */
export function writeMessageIdHex(out: Buffer, offset: number, hi: number, lo: number): void {
  for (let i = 7; i >= 0; i--) {
    out[offset + i] = HEX_BYTES[hi & 0xf] as number;
    out[offset + 8 + i] = HEX_BYTES[lo & 0xf] as number;
    hi >>>= 4;
    lo >>>= 4;
  }
}

export class MessageIdGenerator {
  private readonly nodeId: number;
  private lastTick = -1;
  private sequence = 0;
  /** Low half of the ID last returned by nextHi(). */
  lo = 0;

  constructor(nodeId: number) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId >= 1024) {
      throw new RangeError(`node id ${nodeId} must be in [0,1024)`);
    }
    this.nodeId = nodeId;
  }

  /** Returns the next ID as its 16-character hex form. */
  next(): string {
    const hi = this.nextHi();
    return messageIdHex(hi, this.lo);
  }

  /**
   * Generates the next ID without building its text: returns the high half and leaves the low
   * half in `lo`. The broker keeps IDs as numbers and writes hex only on the wire.
   */
  nextHi(): number {
    let tick = currentTick() - TWIST_EPOCH;
    if (tick < this.lastTick) tick = this.lastTick; // wall clock stepped back: stay monotonic
    if (tick === this.lastTick) {
      this.sequence = (this.sequence + 1) & SEQUENCE_MASK;
      // Sequence exhausted within one tick: borrow the next tick rather than repeat an ID.
      if (this.sequence === 0) tick = this.lastTick + 1;
    } else {
      this.sequence = 0;
    }
    this.lastTick = tick;
    // value = tick * 2^22 + node * 2^12 + seq, split into 32-bit halves.
    this.lo = (((tick % 1024) << 22) | (this.nodeId << 12) | this.sequence) >>> 0;
    return Math.floor(tick / 1024) % TWO_POW_32;
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
