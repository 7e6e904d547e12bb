import { createRequire } from 'node:module';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import type { Inflate } from 'fflate';

// Loaded by the first deflate connection: a broker without one never needs it.
let fflate: typeof import('fflate') | null = null;
function loadFflate(): typeof import('fflate') {
  fflate ??= createRequire(import.meta.url)('fflate') as typeof import('fflate');
  return fflate;
}

/**
 * Raw DEFLATE (RFC 1951), one stream per direction, sync-flushed per flush, synchronous: zlib's
 * streaming API costs a thread-pool round trip per flush, which held deflate consumers to ~30k msgs/s.
 */

/** Segments from fresh compressors concatenate into one valid stream (no back-reference crosses them). */
export function deflateSegment(data: Buffer, level: number): Buffer {
  return deflateRawSync(data, { level, finishFlush: zlib.Z_SYNC_FLUSH });
}

export class InflateError extends Error {
  override name = 'InflateError';
}

/** DEFLATE's best ratio is ~1032: a 64 KiB chunk of a deflate bomb comes out in pieces of a few MiB. */
const INPUT_SLICE_BYTES = 4 * 1024;
export const MAX_INFLATE_PIECE_BYTES = 1032 * INPUT_SLICE_BYTES + 64 * 1024;

/** Node's zlib has no synchronous streaming inflate, hence fflate's. Throws InflateError. */
export class InflateStream {
  private readonly inflater: Inflate;
  private out: Uint8Array[] = [];

  constructor() {
    this.inflater = new (loadFflate().Inflate)((data) => this.out.push(data));
  }

  push(chunk: Buffer): Buffer {
    const pieces: Buffer[] = [];
    this.pushEach(chunk, (piece) => pieces.push(piece));
    if (pieces.length === 0) return EMPTY;
    return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces);
  }

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
