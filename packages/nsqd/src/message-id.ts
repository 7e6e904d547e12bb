import { messageIdHex } from '@nsq-ts/protocol';

/**
 * The bit layout of the message IDs this broker makes (nsq-spec §2.4): a 64-bit snowflake, of
 * which the wire sees only the 16 hex characters.
 *
 *   bits 63..22  tick = (now_ns >> 20) - 1288834974288   (≈ 1.05 ms since NSQ's epoch)
 *   bits 21..12  node id, 0..1023
 *   bits 11..0   sequence within one tick
 *
 * The value never exists as one number: it is kept as a high and a low 32-bit half, because a
 * double cannot hold 64 bits and BigInt costs an allocation per ID. The in-flight table's key
 * ({@link inFlightKey}) is built from this layout too, so both live here.
 */
export const MESSAGE_ID_LAYOUT = {
  sequenceBits: 12,
  nodeBits: 10,
  /** Where the tick starts: sequenceBits + nodeBits. */
  tickShift: 22,
  /** The tick's bits in the low half: 32 − tickShift. */
  tickBitsInLo: 10,
  /** The tick's bits an in-flight key keeps: 2^20 ticks ≈ 18.3 minutes, above --max-msg-timeout's 15. */
  keyTickBits: 20,
} as const;

const { sequenceBits, nodeBits, tickShift, tickBitsInLo, keyTickBits } = MESSAGE_ID_LAYOUT;
const SEQUENCE_MASK = (1 << sequenceBits) - 1;
const NODE_LIMIT = 1 << nodeBits;
const TICKS_IN_LO = 1 << tickBitsInLo;
const KEY_HI_MASK = (1 << (keyTickBits - tickBitsInLo)) - 1;
const TWIST_EPOCH = 1288834974288;
const TWO_POW_32 = 0x1_0000_0000;
const NS_PER_TICK_POW = 20; // one tick = 2^20 ns

/**
 * A 32-bit key of an ID for the in-flight table: the tick's low {@link MESSAGE_ID_LAYOUT}
 * `keyTickBits` bits and the sequence. The node bits are dropped, being the same for every ID
 * one node makes; IDs made `2^keyTickBits` ticks apart, or by another node, can share a key.
 */
export function inFlightKey(hi: number, lo: number): number {
  return (
    ((hi & KEY_HI_MASK) << (tickBitsInLo + sequenceBits)) | ((lo >>> tickShift) << sequenceBits) | (lo & SEQUENCE_MASK)
  );
}

/** The current tick (now_ns >> 20) from a millisecond clock with sub-millisecond precision. */
function currentTick(): number {
  // ns = ms * 1e6; tick = floor(ns / 2^20). Doubles are exact to 2^53, and ms * 1e6 / 2^20 stays
  // far below that, so the loss is only in the sub-tick fraction that floor() drops anyway.
  const ms = performance.timeOrigin + performance.now();
  return Math.floor((ms * 1e6) / 2 ** NS_PER_TICK_POW);
}

export class MessageIdGenerator {
  private readonly nodeId: number;
  private lastTick = -1;
  private sequence = 0;
  lo = 0;

  constructor(nodeId: number) {
    if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId >= NODE_LIMIT) {
      throw new RangeError(`node id ${nodeId} must be in [0,${NODE_LIMIT})`);
    }
    this.nodeId = nodeId;
  }

  next(): string {
    const hi = this.nextHi();
    return messageIdHex(hi, this.lo);
  }

  /** Returns the high half and leaves the low half in `lo`: hex is written only on the wire. */
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
    this.lo = (((tick % TICKS_IN_LO) << tickShift) | (this.nodeId << sequenceBits) | this.sequence) >>> 0;
    return Math.floor(tick / TICKS_IN_LO) % TWO_POW_32;
  }
}
