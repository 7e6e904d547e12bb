/**
 * Bodies under this many bytes come from Node's shared 8 KiB pool (Buffer.allocUnsafe's own
 * rule): an arena would pin a block per quiet topic for a few bytes.
 */
const MIN_POOLED = Buffer.poolSize >>> 1;
/** Bodies over this get an allocation of their own (large enough for glibc to map it apart). */
const MAX_POOLED = 128 * 1024;
const FIRST_BLOCK = 64 * 1024;
/**
 * Messages a topic's memory must hold (and --mem-queue-size allow) before its bodies go to blocks.
 * Bodies freed soon after they arrive (a drained queue, a spilling one) leave holes glibc refills
 * with the next ones, while every 1 MiB block is a fresh mapping, faulted in page by page: blocks
 * for them cost --mem-queue-size=0 publishing 7–17 % (1.13M → 0.93–1.05M msgs/s) and its
 * publish-and-consume ~10 %.
 */
export const ARENA_MIN_BACKLOG = 10_000;
const MAX_BLOCK = 1024 * 1024;

/**
 * Where one topic's mid-size publish bodies (typically MPUBs of small messages) are copied to:
 * consecutive ranges of blocks that grow from 64 KiB to 1 MiB as the topic keeps publishing.
 * Allocated one by one, a 40 KiB body lands in the hole a freed 64 KiB socket read left in
 * glibc's heap and strands the rest of it: a deep in-memory queue cost ~25 % over its bodies.
 * Blocks are never reused; one is freed once no body in it is referenced. A topic's messages are
 * consumed in order, so its blocks go in order; the ones held out of order for long (requeued,
 * deferred) are copied out by `MessageRecord.compact`, so at most in-flight ones pin a block.
 */
export class BodyArena {
  private block: Buffer = Buffer.alloc(0);
  private used = 0;
  private nextBlock = FIRST_BLOCK;

  /** Whether `alloc(size)` would use a block (else it is `Buffer.allocUnsafe`). */
  static takes(size: number): boolean {
    return size >= MIN_POOLED && size <= MAX_POOLED;
  }

  /** `size` bytes to copy a body into, not zeroed. */
  alloc(size: number): Buffer {
    if (!BodyArena.takes(size)) return Buffer.allocUnsafe(size);
    if (this.used + size > this.block.length) {
      this.block = Buffer.allocUnsafeSlow(Math.max(this.nextBlock, 8 * size));
      this.used = 0;
      this.nextBlock = Math.min(MAX_BLOCK, this.nextBlock * 2);
    }
    const body = this.block.subarray(this.used, this.used + size);
    this.used += size;
    return body;
  }
}
