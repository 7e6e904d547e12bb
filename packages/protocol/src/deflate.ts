import { createRequire } from 'node:module';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import type { Inflate } from 'fflate';

/** fflate is loaded by the first deflate connection: a broker without one never needs it. */
let fflate: typeof import('fflate') | null = null;
function loadFflate(): typeof import('fflate') {
  fflate ??= createRequire(import.meta.url)('fflate') as typeof import('fflate');
  return fflate;
}

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

/** Raised for a corrupt deflate stream; the connection should be dropped. */
export class InflateError extends Error {
  override name = 'InflateError';
}

/**
 * Input is inflated this many bytes at a time, so one piece of output is at most ~1032 times
 * that (DEFLATE's best ratio): a 64 KiB chunk of a deflate bomb comes out as a series of
 * pieces of a few MiB, not one buffer of 64 MiB.
 */
const INPUT_SLICE_BYTES = 4 * 1024;
/** Upper bound of one piece handed out by InflateStream.pushEach. */
export const MAX_INFLATE_PIECE_BYTES = 1032 * INPUT_SLICE_BYTES + 64 * 1024;

/**
 * A synchronous streaming raw inflater: feed it the received bytes in any chunking; it hands out
 * the plaintext decoded so far and keeps partial blocks for the next chunk. Throws InflateError
 * on a corrupt stream. Node's zlib has no synchronous streaming inflate, so this is fflate's
 * (pure JavaScript, no dependencies of its own).
 */
export class InflateStream {
  private readonly inflater: Inflate;
  private out: Uint8Array[] = [];

  constructor() {
    this.inflater = new (loadFflate().Inflate)((data) => this.out.push(data));
  }

  /** Returns all the plaintext `chunk` completes (possibly empty). */
  push(chunk: Buffer): Buffer {
    const pieces: Buffer[] = [];
    this.pushEach(chunk, (piece) => pieces.push(piece));
    if (pieces.length === 0) return EMPTY;
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
  }

  /**
   * Hands the plaintext `chunk` completes to `onData` in pieces of at most
   * MAX_INFLATE_PIECE_BYTES, so a highly compressed chunk never becomes one huge buffer.
   */
  pushEach(chunk: Buffer, onData: (piece: Buffer) => void): void {
    for (let at = 0; at < chunk.length; at += INPUT_SLICE_BYTES) {
      const slice = at === 0 && chunk.length <= INPUT_SLICE_BYTES ? chunk : chunk.subarray(at, at + INPUT_SLICE_BYTES);
      try {
        this.inflater.push(slice);
      } catch (err) {
        this.out = [];
        throw new InflateError(`deflate: ${(err as Error).message}`);
      }
      const out = this.out;
      if (out.length === 0) continue;
      this.out = [];
      if (out.length === 1) {
        const only = out[0] as Uint8Array;
        // A sync-flush marker alone yields an empty piece: nothing to hand out.
        if (only.byteLength > 0) onData(Buffer.from(only.buffer, only.byteOffset, only.byteLength));
      } else {
        const piece = Buffer.concat(out);
        if (piece.length > 0) onData(piece);
      }
    }
  }
}

const EMPTY = Buffer.alloc(0);
