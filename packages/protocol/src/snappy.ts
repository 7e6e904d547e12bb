import { maskedCrc32c } from './crc32c.js';

/**
 * Snappy block and framing formats (nsq-spec §2.7; Go's framed writer/reader).
 *
 * Block:  varint(uncompressed length) then elements, each led by a tag byte whose low 2 bits say
 *         00 literal   (len-1 in the upper 6 bits, or 60..63 = 1..4 little-endian length bytes)
 *         01 copy      (len-4 in bits 2..4, offset bits 8..10 in bits 5..7, then 1 offset byte)
 *         10 copy      (len-1 in the upper 6 bits, then a 2-byte little-endian offset)
 *         11 copy      (len-1 in the upper 6 bits, then a 4-byte little-endian offset)
 *
 * Framing: chunks of  type(1) length(3, LE) data(length)
 *         0xff stream identifier, data "sNaPpY" (first in every stream)
 *         0x00 compressed:   masked CRC-32C(4, LE) of the uncompressed data + a block
 *         0x01 uncompressed: masked CRC-32C(4, LE) + the data
 *         0x02..0x7f reserved (an error), 0x80..0xfe skippable.
 * Each chunk carries at most 65536 uncompressed bytes.
 */

export const SNAPPY_STREAM_IDENTIFIER: Buffer = Buffer.from([
  0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59,
]);
const MAX_CHUNK_DATA = 65536;
const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_STREAM_ID = 0xff;
const HASH_BITS = 14;
/** Inputs shorter than this are emitted as one literal (as Go's encoder does). */
const MIN_NON_LITERAL = 17;

/** The largest chunk length a decoder accepts (a compressed chunk of 64 KiB with its CRC). */
const MAX_CHUNK_LENGTH = maxCompressedLength(MAX_CHUNK_DATA) + 4;
/** Upper bound of SnappyFrameDecoder.bufferedBytes: one incomplete chunk with its header. */
export const MAX_SNAPPY_BUFFERED_BYTES = 4 + MAX_CHUNK_LENGTH;

export class SnappyError extends Error {
  override name = 'SnappyError';
}

/** Upper bound of a compressed block's size for `n` input bytes. */
export function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

const table = new Int32Array(1 << HASH_BITS);

function load32(b: Uint8Array, i: number): number {
  return (
    ((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0
  );
}

function hash(v: number): number {
  return Math.imul(v, 0x1e35a7bd) >>> (32 - HASH_BITS);
}

function emitLiteral(dst: Uint8Array, d: number, src: Uint8Array, start: number, end: number): number {
  const n = end - start - 1;
  if (n < 60) dst[d++] = n << 2;
  else if (n < 0x100) {
    dst[d++] = 60 << 2;
    dst[d++] = n;
  } else if (n < 0x10000) {
    dst[d++] = 61 << 2;
    dst[d++] = n & 0xff;
    dst[d++] = n >>> 8;
  } else {
    dst[d++] = 62 << 2;
    dst[d++] = n & 0xff;
    dst[d++] = (n >>> 8) & 0xff;
    dst[d++] = n >>> 16;
  }
  if (end - start < 32) for (let i = start; i < end; i++) dst[d++] = src[i] as number;
  else {
    dst.set(src.subarray(start, end), d);
    d += end - start;
  }
  return d;
}

function emitCopy(dst: Uint8Array, d: number, offset: number, length: number): number {
  while (length >= 68) {
    dst[d++] = (63 << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    length -= 64;
  }
  if (length > 64) {
    dst[d++] = (59 << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
    length -= 60;
  }
  if (length >= 12 || offset >= 2048) {
    dst[d++] = ((length - 1) << 2) | 2;
    dst[d++] = offset & 0xff;
    dst[d++] = offset >>> 8;
  } else {
    dst[d++] = ((offset >>> 8) << 5) | ((length - 4) << 2) | 1;
    dst[d++] = offset & 0xff;
  }
  return d;
}

/** At most 65536 bytes, so every offset fits 2 bytes; `dst` needs maxCompressedLength bytes. */
export function compressBlock(src: Uint8Array, start: number, end: number, dst: Uint8Array, d: number): number {
  let n = end - start;
  while (n >= 0x80) {
    dst[d++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  dst[d++] = n;
  if (end - start < MIN_NON_LITERAL) return end > start ? emitLiteral(dst, d, src, start, end) : d;
  table.fill(0);
  let nextEmit = start;
  let s = start + 1;
  const limit = end - 4;
  while (s <= limit) {
    const v = load32(src, s);
    const h = hash(v);
    const candidate = (table[h] as number) - 1 + start;
    table[h] = s - start + 1;
    if (candidate < start || s - candidate > 0xffff || load32(src, candidate) !== v) {
      // Skip faster through incompressible data (Snappy's heuristic: 1 + distance/32).
      s += 1 + ((s - nextEmit) >>> 5);
      continue;
    }
    if (s > nextEmit) d = emitLiteral(dst, d, src, nextEmit, s);
    const base = s;
    let c = candidate + 4;
    s += 4;
    while (s < end && src[s] === src[c]) {
      s++;
      c++;
    }
    d = emitCopy(dst, d, base - candidate, s - base);
    nextEmit = s;
    if (s <= limit) table[hash(load32(src, s - 1))] = s - 1 - start + 1;
  }
  if (nextEmit < end) d = emitLiteral(dst, d, src, nextEmit, end);
  return d;
}

/** Decompresses one block; throws SnappyError on corrupt input or a length over `maxLength`. */
export function uncompressBlock(src: Uint8Array, start: number, end: number, maxLength: number): Buffer {
  let s = start;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (s >= end || shift > 28) throw new SnappyError('snappy: corrupt input (length)');
    const b = src[s++] as number;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length > maxLength) throw new SnappyError('snappy: decoded block is too large');
  const dst = Buffer.allocUnsafe(length);
  let d = 0;
  while (s < end) {
    const tag = src[s++] as number;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >>> 2;
      if (n >= 60) {
        const bytes = n - 59;
        if (s + bytes > end) throw new SnappyError('snappy: corrupt input (literal length)');
        n = 0;
        for (let i = 0; i < bytes; i++) n += (src[s + i] as number) * 2 ** (8 * i);
        s += bytes;
      }
      n += 1;
      if (s + n > end || d + n > length) throw new SnappyError('snappy: corrupt input (literal)');
      if (n < 32) for (let i = 0; i < n; i++) dst[d++] = src[s++] as number;
      else {
        dst.set(src.subarray(s, s + n), d);
        s += n;
        d += n;
      }
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      if (s >= end) throw new SnappyError('snappy: corrupt input (copy1)');
      n = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | (src[s++] as number);
    } else if (kind === 2) {
      if (s + 2 > end) throw new SnappyError('snappy: corrupt input (copy2)');
      n = (tag >>> 2) + 1;
      offset = (src[s] as number) | ((src[s + 1] as number) << 8);
      s += 2;
    } else {
      if (s + 4 > end) throw new SnappyError('snappy: corrupt input (copy4)');
      n = (tag >>> 2) + 1;
      offset = load32(src, s);
      s += 4;
    }
    if (offset === 0 || offset > d || d + n > length) throw new SnappyError('snappy: corrupt input (copy)');
    // Overlapping copies repeat the last `offset` bytes: copy byte by byte when they overlap.
    if (offset >= n && n >= 32) {
      dst.copyWithin(d, d - offset, d - offset + n);
      d += n;
    } else {
      for (let i = 0; i < n; i++, d++) dst[d] = dst[d - offset] as number;
    }
  }
  if (d !== length) throw new SnappyError('snappy: corrupt input (short block)');
  return dst;
}

/** Data that does not shrink by at least 1/8 is sent uncompressed (Go's rule). */
export class SnappyFrameEncoder {
  private started = false;
  private scratch: Buffer = Buffer.allocUnsafe(maxCompressedLength(MAX_CHUNK_DATA));

  encode(parts: readonly Buffer[]): Buffer {
    const data = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    let total = this.started ? 0 : SNAPPY_STREAM_IDENTIFIER.length;
    const chunks = Math.ceil(data.length / MAX_CHUNK_DATA);
    total += chunks * 8 + maxCompressedLength(Math.min(data.length, MAX_CHUNK_DATA)) * chunks;
    const out = Buffer.allocUnsafe(total);
    let o = 0;
    if (!this.started) {
      SNAPPY_STREAM_IDENTIFIER.copy(out, 0);
      o = SNAPPY_STREAM_IDENTIFIER.length;
      this.started = true;
    }
    for (let at = 0; at < data.length; at += MAX_CHUNK_DATA) {
      const end = Math.min(data.length, at + MAX_CHUNK_DATA);
      const raw = end - at;
      const crc = maskedCrc32c(data, at, end);
      const compressedEnd = compressBlock(data, at, end, this.scratch, 0);
      const compressed = compressedEnd < raw - (raw >>> 3);
      const bodyLength = 4 + (compressed ? compressedEnd : raw);
      out[o] = compressed ? CHUNK_COMPRESSED : CHUNK_UNCOMPRESSED;
      out.writeUIntLE(bodyLength, o + 1, 3);
      out.writeUInt32LE(crc, o + 4);
      o += 8;
      if (compressed) o += this.scratch.copy(out, o, 0, compressedEnd);
      else o += data.copy(out, o, at, end);
    }
    return out.subarray(0, o);
  }
}

/** Accepts any cut of the stream. Throws SnappyError on corruption or a bad checksum. */
export class SnappyFrameDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private sawIdentifier = false;

  /** Bytes held for a chunk split across pushes (at most one chunk: MAX_SNAPPY_BUFFERED_BYTES). */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): Buffer[] {
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    while (buf.length - at >= 4) {
      const type = buf[at] as number;
      const length = buf.readUIntLE(at + 1, 3);
      // Go's reader refuses such chunks too; checked before a byte of the chunk is buffered.
      if (length > MAX_CHUNK_LENGTH) throw new SnappyError('snappy: chunk too large');
      if (buf.length - at - 4 < length) break;
      const body = at + 4;
      at = body + length;
      if (type === CHUNK_STREAM_ID) {
        if (length !== 6 || buf.toString('latin1', body, body + 6) !== 'sNaPpY') {
          throw new SnappyError('snappy: bad stream identifier');
        }
        this.sawIdentifier = true;
        continue;
      }
      if (type >= 0x80) continue; // skippable and padding chunks
      if (type > CHUNK_UNCOMPRESSED) throw new SnappyError(`snappy: unsupported chunk type ${type}`);
      if (!this.sawIdentifier) throw new SnappyError('snappy: missing stream identifier');
      if (length < 4) throw new SnappyError('snappy: chunk too short');
      const crc = buf.readUInt32LE(body);
      const data =
        type === CHUNK_COMPRESSED
          ? uncompressBlock(buf, body + 4, at, MAX_CHUNK_DATA)
          : Buffer.from(buf.subarray(body + 4, at));
      if (data.length > MAX_CHUNK_DATA) throw new SnappyError('snappy: chunk too large');
      if (maskedCrc32c(data) !== crc) throw new SnappyError('snappy: checksum mismatch');
      out.push(data);
    }
    // The carried-over tail is at most one chunk (64 KiB + header), copied so chunk buffers are not pinned.
    this.pending = at >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
    return out;
  }
}
