import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { chunkings } from './chunkings.test-util.js';
import { crc32c, maskedCrc32c } from './crc32c.js';
import {
  compressBlock,
  maxCompressedLength,
  SNAPPY_STREAM_IDENTIFIER,
  SnappyError,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  uncompressBlock,
} from './snappy.js';

/** The reference implementation (native, installed with nsqjs's snappystream), when present. */
function nativeSnappy(): { compressSync(b: Buffer): Buffer; uncompressSync(b: Buffer): Buffer } | null {
  try {
    return createRequire(import.meta.url)('snappy');
  } catch {
    return null;
  }
}

function samples(): Buffer[] {
  const random = Buffer.alloc(70_000);
  let x = 12345;
  for (let i = 0; i < random.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    random[i] = x >>> 24;
  }
  const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(3000));
  return [
    Buffer.alloc(0),
    Buffer.from('a'),
    Buffer.from('abcdefghijklmnop'),
    Buffer.alloc(100, 0x61),
    Buffer.alloc(65536, 7),
    random.subarray(0, 65536),
    text.subarray(0, 65536),
    Buffer.concat([random.subarray(0, 3000), random.subarray(0, 3000), Buffer.alloc(500, 1)]),
  ];
}

function compress(data: Buffer): Buffer {
  const dst = Buffer.alloc(maxCompressedLength(data.length));
  return dst.subarray(0, compressBlock(data, 0, data.length, dst, 0));
}

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
  });
  it('agrees between the sliced and the byte loop at every length', () => {
    const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
    for (let n = 0; n < data.length; n++) {
      let c = -1;
      for (let i = 0; i < n; i++) {
        c ^= data[i] as number;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      expect(crc32c(data, 0, n)).toBe((c ^ -1) >>> 0);
    }
  });
  it('masks as the framing format says', () => {
    const c = crc32c(Buffer.from('abc'));
    expect(maskedCrc32c(Buffer.from('abc'))).toBe((((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0);
  });
});

describe('snappy block', () => {
  it('round-trips and compresses repetitive input', () => {
    for (const s of samples()) {
      const c = compress(s);
      expect(uncompressBlock(c, 0, c.length, 1 << 20).equals(s)).toBe(true);
    }
    expect(compress(Buffer.alloc(65536, 7)).length).toBeLessThan(4000);
  });
  it('is read by, and reads, the reference implementation', () => {
    const native = nativeSnappy();
    if (native === null) return;
    for (const s of samples()) {
      expect(native.uncompressSync(compress(s)).equals(s)).toBe(true);
      const theirs = native.compressSync(s);
      expect(uncompressBlock(theirs, 0, theirs.length, 1 << 20).equals(s)).toBe(true);
    }
  });
  it('rejects corrupt input', () => {
    expect(() => uncompressBlock(Buffer.from([5, (0x05 << 2) | 1, 9]), 0, 3, 100)).toThrow(SnappyError);
    expect(() => uncompressBlock(Buffer.from([200]), 0, 1, 100)).toThrow(SnappyError);
    expect(() => uncompressBlock(Buffer.from([10, 0]), 0, 2, 5)).toThrow(SnappyError);
  });
});

describe('snappy framing', () => {
  it('starts with the stream identifier once', () => {
    const enc = new SnappyFrameEncoder();
    const first = enc.encode([Buffer.from('OK')]);
    expect(first.subarray(0, 10).equals(SNAPPY_STREAM_IDENTIFIER)).toBe(true);
    // "OK" is stored uncompressed: type 1, length 6, masked crc, data.
    expect([...first.subarray(10, 14)]).toEqual([1, 6, 0, 0]);
    expect(first.readUInt32LE(14)).toBe(maskedCrc32c(Buffer.from('OK')));
    expect(enc.encode([Buffer.from('x')])[0]).toBe(1);
  });
  it('decodes its own stream however it is cut', () => {
    const enc = new SnappyFrameEncoder();
    const stream = Buffer.concat([
      enc.encode([Buffer.from('hello '), Buffer.from('world')]),
      enc.encode([Buffer.alloc(200, 0x62)]),
    ]);
    for (const { label, chunks } of chunkings(stream, { pairs: false })) {
      const dec = new SnappyFrameDecoder();
      const out = Buffer.concat(chunks.flatMap((c) => dec.push(c)));
      expect(out.toString(), label).toBe(`hello world${'b'.repeat(200)}`);
    }
  });
  it('splits large flushes into 64 KiB chunks', () => {
    const big = Buffer.concat(samples());
    const dec = new SnappyFrameDecoder();
    const out = Buffer.concat(dec.push(new SnappyFrameEncoder().encode([big])));
    expect(out.equals(big)).toBe(true);
  });
  it('refuses a bad checksum, a missing identifier and reserved chunk types', () => {
    const ok = new SnappyFrameEncoder().encode([Buffer.from('data')]);
    const bad = Buffer.from(ok);
    bad[bad.length - 1] ^= 1;
    expect(() => new SnappyFrameDecoder().push(bad)).toThrow(/checksum/);
    expect(() => new SnappyFrameDecoder().push(ok.subarray(10))).toThrow(/identifier/);
    expect(() => new SnappyFrameDecoder().push(Buffer.concat([ok.subarray(0, 10), Buffer.from([2, 0, 0, 0])]))).toThrow(
      /chunk type/,
    );
    // Skippable chunks are skipped.
    expect(
      new SnappyFrameDecoder().push(
        Buffer.concat([ok.subarray(0, 10), Buffer.from([0x80, 1, 0, 0, 9]), ok.subarray(10)]),
      ),
    ).toEqual([Buffer.from('data')]);
  });
});
