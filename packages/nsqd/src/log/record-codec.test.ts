import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.test-util.js';
import { MessageRecord } from '../message.js';
import { Decoded, decodeAt, encodeRecord, RECORD_HEADER_BYTES, recordSizeAt, resync } from './record-codec.js';

const MAX_BODY = 1024;
const clock = new ManualClock();

const recordArb = fc.record({
  offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  idHi: fc.nat({ max: 0xffffffff }),
  idLo: fc.nat({ max: 0xffffffff }),
  publishedAtMs: fc.integer({ min: 0, max: 4_000_000_000_000 }),
  // A monotonic due time (0: none), an integer so the wall-clock round trip is exact.
  deliverAfter: fc.oneof(fc.constant(0), fc.integer({ min: 1_000, max: 10_000_000 })),
  body: fc.uint8Array({ maxLength: 200 }),
});
type Fields = typeof recordArb extends fc.Arbitrary<infer T> ? T : never;

function recordOf(f: Fields, offset = f.offset): MessageRecord {
  const body = Buffer.from(f.body);
  return new MessageRecord(offset, f.idHi, f.idLo, body, 0, body.length, f.publishedAtMs, f.deliverAfter);
}

function encode(records: MessageRecord[]): Buffer {
  const out = Buffer.alloc(records.reduce((n, r) => n + RECORD_HEADER_BYTES + r.length, 0));
  let pos = 0;
  for (const r of records) pos = encodeRecord(r, out, pos, clock);
  expect(pos).toBe(out.length);
  return out;
}

function fieldsOf(r: MessageRecord) {
  return [r.offset, r.idHi, r.idLo, r.publishedAtMs, r.deliverAfter, r.body.toString('hex')];
}

/** Ascending offsets for `list`, with gaps (offsets may skip in a segment). */
function ascending(list: Fields[]): MessageRecord[] {
  let offset = 0;
  return list.map((f) => {
    offset += 1 + (f.idLo % 5);
    return recordOf(f, offset);
  });
}

describe('record codec', () => {
  it('decodes what it encodes, field for field, the body a range of the buffer', () => {
    fc.assert(
      fc.property(recordArb, (f) => {
        const r = recordOf(f);
        const buf = encode([r]);
        const back = decodeAt(buf, 0, buf.length, MAX_BODY, clock);
        if (typeof back === 'number') throw new Error(`decoded as ${back}`);
        expect(fieldsOf(back)).toEqual(fieldsOf(r));
        expect(back.data).toBe(buf);
        expect(recordSizeAt(buf, 0)).toBe(buf.length);
      }),
    );
  });

  it('stores the due time as Unix ms: after a wall-clock step it comes back moved, monotonic', () => {
    const c = new ManualClock();
    const r = new MessageRecord(7, 1, 2, Buffer.from('x'), 0, 1, 0, c.monotonicMs() + 5_000);
    const buf = Buffer.alloc(RECORD_HEADER_BYTES + 1);
    encodeRecord(r, buf, 0, c);
    expect(buf.readDoubleBE(32)).toBe(c.wallMs() + 5_000);
    c.stepWall(-60_000);
    expect((decodeAt(buf, 0, buf.length, MAX_BODY, c) as MessageRecord).deliverAfter).toBe(c.monotonicMs() + 65_000);
    // Far in the past on the monotonic scale: due at once, still marked as deferred (not 0).
    c.stepWall(3_600_000);
    expect((decodeAt(buf, 0, buf.length, MAX_BODY, c) as MessageRecord).deliverAfter).toBe(1);
  });

  it('every strict prefix of a record is Short: a torn write is never read as a record', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(), (f, cut) => {
        const buf = encode([recordOf(f)]);
        const end = cut % buf.length;
        expect(decodeAt(buf, 0, end, MAX_BODY, clock)).toBe(Decoded.Short);
      }),
    );
  });

  it('a flipped bit anywhere in a record is never read as a record', () => {
    fc.assert(
      fc.property(recordArb, fc.nat(), fc.integer({ min: 0, max: 7 }), (f, at, bit) => {
        const buf = encode([recordOf(f)]);
        const i = at % buf.length;
        buf[i] = (buf[i] as number) ^ (1 << bit);
        expect(typeof decodeAt(buf, 0, buf.length, MAX_BODY, clock)).toBe('number');
      }),
      { numRuns: 500 },
    );
  });

  it('rejects a length above the largest allowed body as Bad, before reading it', () => {
    const buf = encode([new MessageRecord(1, 0, 0, Buffer.alloc(64), 0, 64, 0, 0)]);
    expect(decodeAt(buf, 0, buf.length, 63, clock)).toBe(Decoded.Bad);
    expect(decodeAt(buf, 0, buf.length, 64, clock)).not.toBe(Decoded.Bad);
    buf.writeUInt32BE(10, 0); // shorter than the fixed fields
    expect(decodeAt(buf, 0, buf.length, 64, clock)).toBe(Decoded.Bad);
  });

  it('a sequence cut anywhere decodes as its whole records, then Short', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 8 }), fc.nat(), (list, cut) => {
        const records = ascending(list);
        const buf = encode(records);
        const end = cut % (buf.length + 1);
        const got: number[] = [];
        let pos = 0;
        for (;;) {
          const r = decodeAt(buf, pos, end, MAX_BODY, clock);
          if (typeof r === 'number') {
            expect(r).toBe(Decoded.Short);
            break;
          }
          got.push(r.offset);
          pos += recordSizeAt(buf, pos);
        }
        const whole: number[] = [];
        let size = 0;
        for (const r of records) {
          size += RECORD_HEADER_BYTES + r.length;
          if (size <= end) whole.push(r.offset);
        }
        expect(got).toEqual(whole);
      }),
    );
  });

  it('after a corrupt record, resync finds the next good one', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 3, maxLength: 6 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        (list, at, bit) => {
          const records = ascending(list);
          const buf = encode(records);
          const second = RECORD_HEADER_BYTES + (records[0] as MessageRecord).length;
          const third = second + RECORD_HEADER_BYTES + (records[1] as MessageRecord).length;
          const i = second + (at % (third - second));
          buf[i] = (buf[i] as number) ^ (1 << bit);
          const minOffset = (records[0] as MessageRecord).offset;
          const next = resync(buf, second + 1, buf.length, minOffset, MAX_BODY);
          expect(next).toBe(third);
          expect((decodeAt(buf, next, buf.length, MAX_BODY, clock) as MessageRecord).offset).toBe(
            (records[2] as MessageRecord).offset,
          );
        },
      ),
    );
  });

  it('resync finds nothing in bytes that hold no whole valid record', () => {
    const buf = encode([new MessageRecord(5, 1, 1, Buffer.from('abc'), 0, 3, 0, 0)]);
    expect(resync(buf, 1, buf.length, 4, MAX_BODY)).toBe(-1);
    // A record whose offset is not above the last good one is a false start.
    expect(resync(buf, 0, buf.length, 5, MAX_BODY)).toBe(-1);
    expect(resync(buf, 0, buf.length, 4, MAX_BODY)).toBe(0);
  });
});
