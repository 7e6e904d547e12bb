import { describe, expect, it } from 'vitest';
import {
  CLOSE_WAIT,
  CLOSE_WAIT_FRAME,
  decodeMessage,
  encodeErrorFrame,
  encodeFrame,
  encodeMessageFrame,
  encodeResponse,
  FRAME_HEADER_BYTES,
  FrameType,
  HEARTBEAT,
  HEARTBEAT_FRAME,
  MESSAGE_HEADER_BYTES,
  nsTimestampFromMs,
  nsTimestampToMs,
  OK,
  OK_FRAME,
  writeMessageHeader,
} from './frames.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

describe('frame constants', () => {
  it('frame types and header sizes match the wire format', () => {
    expect(FrameType).toEqual({ Response: 0, Error: 1, Message: 2 });
    expect(FRAME_HEADER_BYTES).toBe(8);
    expect(MESSAGE_HEADER_BYTES).toBe(26);
    expect([OK, HEARTBEAT, CLOSE_WAIT]).toEqual(['OK', '_heartbeat_', 'CLOSE_WAIT']);
  });

  it('OK_FRAME is byte-exact', () => {
    expect(OK_FRAME.toString('hex')).toBe(hex('00000006 00000000 4f4b').toString('hex'));
  });

  it('HEARTBEAT_FRAME is byte-exact', () => {
    const expected = Buffer.concat([hex('0000000f 00000000'), Buffer.from('_heartbeat_', 'ascii')]);
    expect(HEARTBEAT_FRAME.toString('hex')).toBe(expected.toString('hex'));
    expect(HEARTBEAT_FRAME.toString('hex')).toBe('0000000f000000005f6865617274626561745f');
  });

  it('CLOSE_WAIT_FRAME is byte-exact', () => {
    expect(CLOSE_WAIT_FRAME.toString('hex')).toBe(
      Buffer.concat([hex('0000000e 00000000'), Buffer.from('CLOSE_WAIT')]).toString('hex'),
    );
  });
});

describe('encodeFrame / encodeResponse / encodeErrorFrame', () => {
  it("encodeErrorFrame('E_INVALID', 'invalid command FOO') is byte-exact", () => {
    const frame = encodeErrorFrame('E_INVALID', 'invalid command FOO');
    // 'E_INVALID invalid command FOO' is 29 bytes: size = 4 + 29 = 33 = 0x21, type 1.
    const expected = Buffer.concat([hex('00000021 00000001'), Buffer.from('E_INVALID invalid command FOO', 'ascii')]);
    expect(frame.toString('hex')).toBe(expected.toString('hex'));
  });

  it('an error frame is CODE, one space, description', () => {
    const frame = encodeErrorFrame('E_BAD_TOPIC', 'PUB topic name "a b" is not valid');
    expect(frame.readInt32BE(0)).toBe(frame.length - 4);
    expect(frame.readInt32BE(4)).toBe(FrameType.Error);
    expect(frame.subarray(8).toString()).toBe('E_BAD_TOPIC PUB topic name "a b" is not valid');
  });

  it('encodeFrame with empty data is just the header, size 4', () => {
    expect(encodeFrame(FrameType.Response, '').toString('hex')).toBe('0000000400000000');
    expect(encodeFrame(FrameType.Error, Buffer.alloc(0)).toString('hex')).toBe('0000000400000001');
  });

  it('encodeFrame copies Buffer data verbatim', () => {
    const data = Buffer.from([0, 1, 0xfe, 0xff, 0x0a]);
    expect(encodeFrame(FrameType.Message, data).toString('hex')).toBe('00000009' + '00000002' + '0001feff0a');
  });

  it('string data is written byte for byte (latin1), so echoed bytes round-trip', () => {
    // A name received as latin1 (each byte one char) must be echoed as the same bytes.
    const raw = Buffer.from([0x63, 0x61, 0x66, 0xc3, 0xa9, 0xff]);
    const frame = encodeResponse(raw.toString('latin1'));
    expect(frame.readInt32BE(0)).toBe(4 + raw.length);
    expect(frame.subarray(8).equals(raw)).toBe(true);
    expect(encodeResponse(raw).subarray(8).equals(raw)).toBe(true);
  });

  it('encodeResponse of a JSON document', () => {
    const json = '{"max_rdy_count":2500,"version":"1.3.0"}';
    const frame = encodeResponse(json);
    expect(frame.readInt32BE(0)).toBe(4 + json.length);
    expect(frame.readInt32BE(4)).toBe(FrameType.Response);
    expect(frame.subarray(8).toString()).toBe(json);
  });
});

// ---------------------------------------------------------------------------------------------
// nsTimestampFromMs: exact against BigInt arithmetic
// ---------------------------------------------------------------------------------------------

/** The exact value of a non-negative double as numerator / 2^shift (both BigInt). */
function exactRational(x: number): { num: bigint; shift: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const exponent = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  if (exponent === 0) return { num: fraction, shift: 1074n }; // subnormal (or zero)
  const mantissa = fraction | (1n << 52n);
  const e = exponent - 1075; // x = mantissa * 2^e
  return e >= 0 ? { num: mantissa << BigInt(e), shift: 0n } : { num: mantissa, shift: BigInt(-e) };
}

/** round(x * 1e6) of the exact double x, halves rounded up (as Math.round does for positives). */
function exactNs(ms: number): bigint {
  const { num, shift } = exactRational(ms);
  const scaled = num * 1_000_000n;
  if (shift === 0n) return scaled;
  const half = 1n << (shift - 1n);
  return (scaled + half) >> shift;
}

function combined(ts: { hi: number; lo: number }): bigint {
  return (BigInt(ts.hi) << 32n) + BigInt(ts.lo);
}

describe('nsTimestampFromMs', () => {
  it('the BigInt reference itself is right on simple values', () => {
    expect(exactNs(0)).toBe(0n);
    expect(exactNs(1)).toBe(1_000_000n);
    expect(exactNs(0.5)).toBe(500_000n);
    expect(exactNs(1_700_000_000_123.5)).toBe(1_700_000_000_123_500_000n);
  });

  const values: number[] = [
    0,
    1,
    0.5,
    0.25,
    0.001, // 1 µs
    0.000001, // 1 ns
    0.0000004, // rounds to 0 ns
    0.0000006, // rounds to 1 ns
    999.999999,
    2 ** 32 - 1, // the low half of the ms value at its maximum
    2 ** 32,
    2 ** 32 + 0.999,
    2 ** 32 + 0.9999999, // sub-ms part rounds up to a whole ms
    1_288_834_974_288, // NSQ's twitter epoch
    1_700_000_000_000,
    1_700_000_000_123,
    1_700_000_000_123.25,
    1_700_000_000_123.5,
    1_700_000_000_123.75,
    1_700_000_000_123.456,
    1_735_689_600_000 + 2 ** -12, // one ulp above a whole ms at this magnitude
    1_735_689_601_000 - 2 ** -12, // one ulp below the next whole ms
    4_102_444_800_000.125, // 2100-01-01
    9_223_372_036_853.5, // just under int64 ns overflow
  ];

  for (const ms of values) {
    it(`is exact for ${ms} ms`, () => {
      const ts = nsTimestampFromMs(ms);
      expect(Number.isInteger(ts.hi) && Number.isInteger(ts.lo)).toBe(true);
      expect(ts.lo).toBeGreaterThanOrEqual(0);
      expect(ts.lo).toBeLessThan(2 ** 32);
      expect(ts.hi).toBeGreaterThanOrEqual(0);
      expect(combined(ts)).toBe(exactNs(ms));
    });
  }

  it('is exact for the current clock (performance.timeOrigin + performance.now())', () => {
    for (let i = 0; i < 1000; i++) {
      const ms = performance.timeOrigin + performance.now();
      const got = combined(nsTimestampFromMs(ms));
      const want = exactNs(ms);
      if (got !== want) expect(got, `ms=${ms}`).toBe(want);
    }
  });

  it('is exact for 20k pseudo-random times with sub-ms parts', () => {
    let seed = 0x2545f491;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(rand() * 4_000_000_000_000) + Math.floor(rand() * 1_000_000) / 1_000_000;
      const got = combined(nsTimestampFromMs(ms));
      const want = exactNs(ms);
      if (got !== want) expect(got, `ms=${ms}`).toBe(want);
    }
  });

  it('a naive ms * 1e6 would not be exact, so the test can tell the difference', () => {
    const ms = 1_700_000_000_123.456;
    expect(BigInt(Math.round(ms * 1e6))).not.toBe(exactNs(ms));
  });

  it('nsTimestampToMs inverts it to within a microsecond', () => {
    for (const ms of [0, 1.5, 1_700_000_000_123.456, 4_102_444_800_000.125]) {
      expect(Math.abs(nsTimestampToMs(nsTimestampFromMs(ms)) - ms)).toBeLessThan(0.001);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Message frames
// ---------------------------------------------------------------------------------------------

describe('message frames', () => {
  const id = '0a1b2c3d4e5f6071';

  it('encodeMessageFrame is byte-exact', () => {
    const ms = 1_700_000_000_123.456;
    const ns = exactNs(ms);
    const frame = encodeMessageFrame({ timestamp: nsTimestampFromMs(ms), attempts: 3, id, body: Buffer.from('hello') });
    const expected = Buffer.alloc(8 + 26 + 5);
    expected.writeInt32BE(4 + 26 + 5, 0);
    expected.writeInt32BE(2, 4);
    expected.writeBigInt64BE(ns, 8);
    expected.writeUInt16BE(3, 16);
    expected.write(id, 18, 'ascii');
    expected.write('hello', 34, 'ascii');
    expect(frame.toString('hex')).toBe(expected.toString('hex'));
  });

  it('round-trips through decodeMessage', () => {
    const cases = [
      { ms: 1_700_000_000_123.456, attempts: 1, body: Buffer.from('hello world') },
      { ms: 0, attempts: 0, body: Buffer.from([0]) },
      { ms: 4_102_444_800_000.125, attempts: 65535, body: Buffer.from([0x0a, 0x00, 0xff, 0x0d]) },
      { ms: 2 ** 32 + 0.5, attempts: 256, body: Buffer.alloc(100_000, 0x61) },
    ];
    for (const c of cases) {
      const frame = encodeMessageFrame({ timestamp: nsTimestampFromMs(c.ms), attempts: c.attempts, id, body: c.body });
      expect(frame.readInt32BE(0)).toBe(frame.length - 4);
      expect(frame.readInt32BE(4)).toBe(FrameType.Message);
      const msg = decodeMessage(frame.subarray(FRAME_HEADER_BYTES));
      expect(msg.timestamp).toBe(exactNs(c.ms));
      expect(msg.attempts).toBe(c.attempts);
      expect(msg.id).toBe(id);
      expect(msg.body.equals(c.body)).toBe(true);
    }
  });

  it('writeMessageHeader writes at an offset and returns where the body goes', () => {
    const out = Buffer.alloc(100, 0xee);
    const ts = nsTimestampFromMs(1_700_000_000_000);
    const at = writeMessageHeader(out, 10, 4, ts.hi, ts.lo, 7, id);
    expect(at).toBe(10 + 8 + 26);
    expect(out.subarray(0, 10).every((b) => b === 0xee)).toBe(true);
    expect(out.readInt32BE(10)).toBe(4 + 26 + 4);
    expect(out.readInt32BE(14)).toBe(2);
    expect(out.readBigInt64BE(18)).toBe(1_700_000_000_000_000_000n);
    expect(out.readUInt16BE(26)).toBe(7);
    expect(out.toString('latin1', 28, 44)).toBe(id);
    expect(out.subarray(44).every((b) => b === 0xee)).toBe(true);
  });

  it('decodeMessage reads the fields at their offsets', () => {
    const data = Buffer.concat([hex('17 9b 9f 8a 4c 2d 5e 15'), hex('00 02'), Buffer.from(id), Buffer.from('xyz')]);
    const msg = decodeMessage(data);
    expect(msg.timestamp).toBe(0x179b9f8a4c2d5e15n);
    expect(msg.attempts).toBe(2);
    expect(msg.id).toBe(id);
    expect(msg.body.toString()).toBe('xyz');
  });

  it('decodeMessage of exactly 26 bytes has an empty body; shorter throws RangeError', () => {
    const data = Buffer.concat([Buffer.alloc(8), hex('0001'), Buffer.from(id)]);
    expect(decodeMessage(data).body.length).toBe(0);
    expect(() => decodeMessage(data.subarray(0, 25))).toThrow(RangeError);
    expect(() => decodeMessage(Buffer.alloc(0))).toThrow(RangeError);
  });

  it('decodeMessage keeps the ID bytes verbatim, even if they are not hex', () => {
    const odd = 'ABCDEF-_ \u00ff\u0080xyz!?';
    const data = Buffer.concat([Buffer.alloc(10), Buffer.from(odd, 'latin1'), Buffer.from('b')]);
    expect(Buffer.from(decodeMessage(data).id, 'latin1').equals(Buffer.from(odd, 'latin1'))).toBe(true);
  });
});
