import { constants, createDeflateRaw, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { chunkings } from './chunkings.test-util.js';
import { deflateSegment, InflateStream } from './deflate.js';

const messages = Array.from({ length: 40 }, (_, i) => Buffer.from(`message ${i} ${'x'.repeat(i * 3)}`));

/** A continuous raw-deflate stream sync-flushed after each message, as nsqjs and pynsq send it. */
async function zlibStream(parts: Buffer[]): Promise<Buffer> {
  const deflater = createDeflateRaw();
  const out: Buffer[] = [];
  deflater.on('data', (c: Buffer) => out.push(c));
  for (const p of parts) {
    deflater.write(p);
    await new Promise<void>((r) => deflater.flush(constants.Z_SYNC_FLUSH, () => r()));
  }
  return Buffer.concat(out);
}

function inflateAll(chunks: Buffer[]): Buffer {
  const inflater = new InflateStream();
  return Buffer.concat(chunks.map((c) => inflater.push(c)));
}

describe('InflateStream', () => {
  it('decodes a continuous sync-flushed stream in every chunking', async () => {
    const stream = await zlibStream(messages.slice(0, 6));
    for (const { label, chunks } of chunkings(stream, { pairs: false })) {
      expect(inflateAll(chunks).equals(Buffer.concat(messages.slice(0, 6))), label).toBe(true);
    }
  });

  it('returns each flush as soon as its bytes are in', async () => {
    const inflater = new InflateStream();
    for (const m of messages) expect(inflater.push(await zlibStream([m]))).toEqual(m);
  });

  it('throws on a corrupt stream', () => {
    expect(() => new InflateStream().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toThrow();
  });
});

describe('deflateSegment', () => {
  it('makes segments that concatenate into one stream any raw inflater reads', () => {
    const segments = Buffer.concat(messages.map((m) => deflateSegment(m, 6)));
    expect(inflateAll([segments]).equals(Buffer.concat(messages))).toBe(true);
    expect(inflateRawSync(segments, { finishFlush: constants.Z_SYNC_FLUSH }).equals(Buffer.concat(messages))).toBe(
      true,
    );
  });
});
