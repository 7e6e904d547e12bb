import { deflateRawSync, constants as zlib } from 'node:zlib';
import { Inflate } from 'fflate';

/**
 * NSQ's deflate layer (nsq-spec §2.7): raw DEFLATE (RFC 1951), one continuous stream per
 * direction, sync-flushed at every flush so the peer can decode at once. Both halves are
 * synchronous: a connection at steady state flushes a few messages at a time, and zlib's
 * streaming API costs a thread-pool round trip per flush — that held deflate consumers to
 * ~30k msgs/s, against ~300k for plain and snappy connections.
 */

/**
 * Compresses one flush as its own raw-deflate segment ended by a sync flush. Segments from fresh
 * compressors concatenate into one valid stream (no back-reference crosses them), so any peer's
 * single inflater reads them; the price is a little ratio per flush.
 */
export function deflateSegment(data: Buffer, level: number): Buffer {
  return deflateRawSync(data, { level, finishFlush: zlib.Z_SYNC_FLUSH });
}

/**
 * A synchronous streaming raw inflater: feed it the received bytes in any chunking; it returns
 * the plaintext decoded so far (possibly empty) and keeps partial blocks for the next chunk.
 * Throws on a corrupt stream. Node's zlib has no synchronous streaming inflate, so this is
 * fflate's (pure JavaScript, no dependencies of its own).
 */
export class InflateStream {
  private readonly inflater: Inflate;
  private out: Uint8Array[] = [];

  constructor() {
    this.inflater = new Inflate((data) => this.out.push(data));
  }

  push(chunk: Buffer): Buffer {
    this.inflater.push(chunk);
    const out = this.out;
    if (out.length === 0) return EMPTY;
    this.out = [];
    if (out.length === 1) {
      const only = out[0] as Uint8Array;
      return Buffer.from(only.buffer, only.byteOffset, only.byteLength);
    }
    return Buffer.concat(out);
  }
}

const EMPTY = Buffer.alloc(0);
