import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkings, copy } from './chunkings.test-util.js';
import { FrameDecodeError, FrameDecoder } from './frame-decoder.js';
import { FrameType } from './frames.js';

// Frames are built by hand here (not with frames.ts) so the decoder is checked against the wire
// format itself: [size: int32 BE = 4 + data.length][type: int32 BE][data].
function frame(type: number, data: Buffer | string, size?: number): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const header = Buffer.alloc(8);
  header.writeInt32BE(size ?? 4 + d.length, 0);
  header.writeInt32BE(type, 4);
  return Buffer.concat([header, d]);
}

function messageData(ns: bigint, attempts: number, id: string, body: Buffer | string): Buffer {
  const head = Buffer.alloc(26);
  head.writeBigInt64BE(ns, 0);
  head.writeUInt16BE(attempts, 8);
  head.write(id, 10, 16, 'latin1');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body) : body]);
}

function pattern(size: number, seed = 3): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + seed + (i >>> 10)) & 0xff;
  return b;
}

interface Decoded {
  type: FrameType;
  data: string;
}

/** Decoded frames as `type` + a printable digest of the data (hex when short). */
function describeData(data: Buffer): string {
  return data.length <= 96
    ? data.toString('hex')
    : `${data.length} bytes sha1:${createHash('sha1').update(data).digest('hex')}`;
}

function decodeAll(chunks: Buffer[], maxFrameBytes?: number): Decoded[] {
  const decoder = new FrameDecoder(maxFrameBytes === undefined ? {} : { maxFrameBytes });
  const out: Decoded[] = [];
  for (const chunk of chunks) decoder.push(chunk, (type, data) => out.push({ type, data: describeData(data) }));
  return out;
}

function expectAllChunkings(
  data: Buffer,
  expected: Decoded[],
  options: { pairs?: boolean; offsets?: Iterable<number> } = {},
) {
  const want = JSON.stringify(expected);
  let n = 0;
  for (const { label, chunks } of chunkings(data, { pairsUpTo: 300, ...options })) {
    const got = decodeAll(chunks);
    if (JSON.stringify(got) !== want) expect(got, label).toEqual(expected);
    n++;
  }
  return n;
}

const ID = '0a1b2c3d4e5f6071';
const TS = 1_700_000_000_123_456_789n;

const FIXTURES: Array<{ name: string; frames: Array<[number, Buffer]> }> = [
  { name: 'response OK', frames: [[FrameType.Response, Buffer.from('OK')]] },
  { name: 'heartbeat', frames: [[FrameType.Response, Buffer.from('_heartbeat_')]] },
  {
    name: 'IDENTIFY JSON response',
    frames: [[FrameType.Response, Buffer.from('{"max_rdy_count":2500,"version":"1.3.0"}')]],
  },
  { name: 'error frame', frames: [[FrameType.Error, Buffer.from('E_INVALID invalid command FOO')]] },
  { name: 'message frame', frames: [[FrameType.Message, messageData(TS, 1, ID, 'hello')]] },
  { name: 'frame with empty data (size 4)', frames: [[FrameType.Response, Buffer.alloc(0)]] },
  {
    name: 'several frames back to back',
    frames: [
      [FrameType.Response, Buffer.from('OK')],
      [FrameType.Message, messageData(TS, 1, ID, 'first')],
      [FrameType.Response, Buffer.from('_heartbeat_')],
      [FrameType.Message, messageData(TS + 1n, 65535, 'ffffffffffffffff', Buffer.from([0, 1, 2, 0x0a, 0xff]))],
      [FrameType.Error, Buffer.from('E_FIN_FAILED FIN 0123456789abcdef failed')],
      [FrameType.Response, Buffer.alloc(0)],
      [FrameType.Response, Buffer.from('CLOSE_WAIT')],
    ],
  },
];

describe('FrameDecoder: every frame, every chunking', () => {
  for (const fixture of FIXTURES) {
    it(fixture.name, () => {
      const data = Buffer.concat(fixture.frames.map(([type, d]) => frame(type, d)));
      const expected = fixture.frames.map(([type, d]) => ({ type: type as FrameType, data: describeData(d) }));
      const n = expectAllChunkings(data, expected);
      expect(n).toBeGreaterThan(data.length);
    });
  }

  it('hands out the frame type and data (without the 8-byte header)', () => {
    const seen: Array<[number, string]> = [];
    new FrameDecoder().push(
      Buffer.concat([frame(0, 'OK'), frame(1, 'E_BAD_BODY x'), frame(2, messageData(1n, 2, ID, 'b'))]),
      (t, d) => seen.push([t, d.toString('latin1')]),
    );
    expect(seen).toEqual([
      [FrameType.Response, 'OK'],
      [FrameType.Error, 'E_BAD_BODY x'],
      [FrameType.Message, messageData(1n, 2, ID, 'b').toString('latin1')],
    ]);
  });

  it('calls onFrame nothing for an incomplete frame and keeps it for the next chunk', () => {
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    const data = frame(0, 'hello');
    decoder.push(copy(data, 0, 3), (_, d) => seen.push(d.toString()));
    decoder.push(copy(data, 3, 10), (_, d) => seen.push(d.toString()));
    expect(seen).toEqual([]);
    decoder.push(copy(data, 10, data.length), (_, d) => seen.push(d.toString()));
    expect(seen).toEqual(['hello']);
    decoder.push(Buffer.alloc(0), (_, d) => seen.push(d.toString()));
    expect(seen).toEqual(['hello']);
  });
});

describe('FrameDecoder: large frames', () => {
  it('assembles a 5 MiB message frame across 64 KiB chunks, with small frames around it', () => {
    const body = pattern(5 * 1024 * 1024);
    const big = messageData(TS, 3, ID, body);
    const data = Buffer.concat([frame(0, 'OK'), frame(2, big), frame(0, '_heartbeat_')]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 65_536) chunks.push(copy(data, i, i + 65_536));
    expect(decodeAll(chunks)).toEqual([
      { type: FrameType.Response, data: describeData(Buffer.from('OK')) },
      { type: FrameType.Message, data: describeData(big) },
      { type: FrameType.Response, data: describeData(Buffer.from('_heartbeat_')) },
    ]);
  });

  it('assembles a 1 MiB frame whole, byte by byte, and split around its header and end', () => {
    const big = messageData(TS, 1, ID, pattern(1024 * 1024, 9));
    const data = Buffer.concat([frame(1, 'E_X y'), frame(2, big), frame(0, 'OK')]);
    const start = frame(1, 'E_X y').length;
    const end = start + 8 + big.length;
    const offsets = new Set<number>();
    for (let i = 1; i < start + 8 + 30; i++) offsets.add(i);
    for (let i = end - 8; i < data.length; i++) offsets.add(i);
    for (let i = start + 8; i < end; i += 99_991) offsets.add(i);
    const n = expectAllChunkings(
      data,
      [
        { type: FrameType.Error, data: describeData(Buffer.from('E_X y')) },
        { type: FrameType.Message, data: describeData(big) },
        { type: FrameType.Response, data: describeData(Buffer.from('OK')) },
      ],
      { pairs: false, offsets: [...offsets].sort((a, b) => a - b) },
    );
    expect(n).toBe(2 + offsets.size);
  });

  it('a frame of exactly maxFrameBytes is accepted', () => {
    const decoder = new FrameDecoder({ maxFrameBytes: 104 });
    const seen: number[] = [];
    decoder.push(frame(0, Buffer.alloc(100)), (_, d) => seen.push(d.length));
    expect(seen).toEqual([100]);
  });

  it('complete frames and assembled frames keep their bytes after the chunks are reused', () => {
    const decoder = new FrameDecoder();
    const a = frame(0, 'first');
    const b = frame(0, 'second');
    const kept: Buffer[] = [];
    // 'first' arrives whole; 'second' is split and must be assembled into a buffer of its own.
    const chunk1 = Buffer.concat([a, b.subarray(0, 10)]);
    const chunk2 = Buffer.from(b.subarray(10));
    decoder.push(chunk1, (_, d) => kept.push(Buffer.from(d)));
    let assembled: Buffer | null = null;
    decoder.push(chunk2, (_, d) => {
      assembled = d;
    });
    chunk1.fill(0);
    chunk2.fill(0);
    expect(kept.map((k) => k.toString())).toEqual(['first']);
    expect((assembled as Buffer | null)?.toString()).toBe('second');
  });
});

describe('FrameDecoder: invalid streams throw FrameDecodeError', () => {
  function header(size: number, type: number): Buffer {
    const h = Buffer.alloc(8);
    h.writeInt32BE(size, 0);
    h.writeInt32BE(type, 4);
    return h;
  }

  const cases: Array<{ name: string; data: Buffer; max?: number; pattern: RegExp }> = [
    { name: 'size 3 (smaller than the type field)', data: header(3, 0), pattern: /invalid frame size 3/ },
    { name: 'size 0', data: header(0, 0), pattern: /invalid frame size 0/ },
    { name: 'negative size', data: header(-1, 0), pattern: /invalid frame size -1/ },
    { name: 'size -2^31', data: header(-0x8000_0000, 0), pattern: /invalid frame size/ },
    { name: 'size over maxFrameBytes', data: header(105, 0), max: 104, pattern: /invalid frame size 105/ },
    { name: 'size 2^31-1 over the 64 MiB default', data: header(0x7fff_ffff, 2), pattern: /invalid frame size/ },
    { name: 'type 3', data: header(6, 3), pattern: /invalid frame type 3/ },
    { name: 'type -1', data: header(6, -1), pattern: /invalid frame type -1/ },
    { name: 'type 2^31-1', data: header(6, 0x7fff_ffff), pattern: /invalid frame type/ },
    {
      name: 'an HTTP response instead of frames',
      data: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'),
      pattern: /invalid frame/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: whole`, () => {
      const decoder = new FrameDecoder(c.max === undefined ? {} : { maxFrameBytes: c.max });
      expect(() => decoder.push(Buffer.from(c.data), () => {})).toThrow(FrameDecodeError);
      const again = new FrameDecoder(c.max === undefined ? {} : { maxFrameBytes: c.max });
      expect(() => again.push(Buffer.from(c.data), () => {})).toThrow(c.pattern);
    });

    it(`${c.name}: as soon as the 8-byte header is complete, in every chunking of the header`, () => {
      const head = c.data.subarray(0, 8);
      for (const { label, chunks } of chunkings(head, { pairs: true })) {
        const decoder = new FrameDecoder(c.max === undefined ? {} : { maxFrameBytes: c.max });
        const last = chunks.length - 1;
        for (let i = 0; i < last; i++) decoder.push(chunks[i], () => {});
        expect(() => decoder.push(chunks[last], () => {}), label).toThrow(FrameDecodeError);
      }
    });
  }

  it('frames before the invalid one are delivered first', () => {
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    const data = Buffer.concat([frame(0, 'OK'), frame(1, 'E_INVALID x'), header(2, 0)]);
    expect(() => decoder.push(data, (_, d) => seen.push(d.toString()))).toThrow(FrameDecodeError);
    expect(seen).toEqual(['OK', 'E_INVALID x']);
  });

  it('an invalid header right after an assembled frame is detected', () => {
    const decoder = new FrameDecoder();
    const seen: string[] = [];
    const ok = frame(0, 'assembled');
    decoder.push(copy(ok, 0, 9), (_, d) => seen.push(d.toString()));
    expect(() =>
      decoder.push(Buffer.concat([ok.subarray(9), header(6, 7)]), (_, d) => seen.push(d.toString())),
    ).toThrow(/invalid frame type 7/);
    expect(seen).toEqual(['assembled']);
  });

  it('FrameDecodeError is an Error named FrameDecodeError', () => {
    const err = new FrameDecodeError('x');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('FrameDecodeError');
    expect(err.message).toBe('x');
  });
});
