/**
 * Property-based tests of every decoder that reads bytes from a peer: random bytes and mutated
 * valid fixtures (flipped bytes, truncations, insertions, huge announced sizes), cut at random
 * offsets, never make a decoder throw anything but its documented error, never reach a callback
 * with out-of-contract data, and never make it buffer more than its limits. A decoder fed the
 * same bytes in any chunking reports the same events.
 *
 * Runs are bounded (NUM_RUNS each) and seeded: the seed is logged; replay with FC_SEED=<seed>.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Command,
  CommandDecoder,
  type CommandHandler,
  hasBody,
  MAX_LINE_BYTES,
  type MpubMessages,
} from './command-decoder.js';
import { encodeCommand, encodeMpubBody, scanMpubBody } from './commands.js';
import { deflateSegment, InflateError, InflateStream, MAX_INFLATE_PIECE_BYTES } from './deflate.js';
import { FrameDecodeError, FrameDecoder } from './frame-decoder.js';
import { encodeFrame, FrameType } from './frames.js';
import { decodeGoJsonFields, decodeIdentifyBody, IdentifyDecodeError, type JsonFieldKind } from './identify.js';
import { encodeLookupResponse, LookupResponseDecodeError, LookupResponseDecoder } from './lookup-v1.js';
import {
  compressBlock,
  MAX_SNAPPY_BUFFERED_BYTES,
  maxCompressedLength,
  SnappyError,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
  uncompressBlock,
} from './snappy.js';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;
const NUM_RUNS = Number(process.env.FC_RUNS ?? 300);
console.log(`decoder properties: fast-check seed ${SEED}, ${NUM_RUNS} runs each (replay: FC_SEED=${SEED})`);
const RUN = { seed: SEED, numRuns: NUM_RUNS };

// ---- input generation ----

const INT32_EDGES = [0, -1, 1, 3, 4, 5, 255, 256, 65536, 65540, 2 ** 24 - 1, 2 ** 31 - 1, -(2 ** 31)];
/** Announced sizes: edge values, values around the limits under test, and any int32. */
const announcedSize = (limits: number[]) =>
  fc.oneof(
    fc.constantFrom(...INT32_EDGES, ...limits.flatMap((l) => [l - 1, l, l + 1])),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  );

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'size'; at: number; size: number; be: boolean };

const mutation = (limits: number[]): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('size' as const), at: fc.nat(), size: announcedSize(limits), be: fc.boolean() }),
  );

function mutate(data: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(data);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < out.length) out[at] = m.value;
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.n)]);
        break;
      case 'size': {
        const size = Buffer.allocUnsafe(4);
        if (m.be) size.writeInt32BE(m.size);
        else size.writeInt32LE(m.size);
        const end = Math.min(out.length, at + 4);
        out = Buffer.concat([out.subarray(0, at), size.subarray(0, end - at || 4), out.subarray(end)]);
        break;
      }
    }
  }
  return Buffer.from(out);
}

/** Cut points for a buffer: any number of offsets, as fresh chunks. */
const cuts = fc.array(fc.nat(), { maxLength: 12 });

function split(data: Buffer, points: readonly number[]): Buffer[] {
  const offsets = [...new Set(points.map((p) => (data.length === 0 ? 0 : p % data.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const o of offsets) {
    if (o > prev) chunks.push(Buffer.from(data.subarray(prev, o)));
    prev = Math.max(prev, o);
  }
  chunks.push(Buffer.from(data.subarray(prev)));
  return chunks;
}

/** A valid fixture mutated, or plain random bytes. */
function hostile(valid: fc.Arbitrary<Buffer>, limits: number[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 1, arbitrary: valid },
    {
      weight: 4,
      arbitrary: fc
        .tuple(valid, fc.array(mutation(limits), { minLength: 1, maxLength: 4 }))
        .map(([data, ms]) => mutate(data, ms)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
  );
}

const token = fc.string({
  unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)),
  maxLength: 12,
});

// ---- CommandDecoder ----

const MAX_MSG = 256;
const MAX_BODY = 1024;
const COMMAND_NAMES = ['FIN', 'RDY', 'REQ', 'NOP', 'SUB', 'CLS', 'TOUCH', 'XYZ', ''];
const BODY_NAMES = ['PUB', 'DPUB', 'IDENTIFY', 'AUTH'];

/** An MPUB with its size field as go-nsq writes it (the whole body) or as nsqjs does (bodies only). */
const validMpub: fc.Arbitrary<Buffer> = fc
  .tuple(fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 8 }), fc.boolean())
  .map(([bodies, nsqjs]) => {
    const body = encodeMpubBody(bodies.map((b) => Buffer.from(b)));
    const size = Buffer.alloc(4);
    size.writeInt32BE(nsqjs ? bodies.reduce((n, b) => n + b.length, 0) : body.length);
    return Buffer.concat([Buffer.from('MPUB t\n'), size, body]);
  });

/** One complete, valid command. */
const validCommand: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...COMMAND_NAMES), fc.array(token, { maxLength: 4 }), fc.boolean())
    .map(([name, params, crlf]) => {
      const line = encodeCommand(name, params);
      return crlf ? Buffer.concat([line.subarray(0, -1), Buffer.from('\r\n')]) : line;
    }),
  fc
    .tuple(
      fc.constantFrom(...BODY_NAMES),
      fc.array(token, { maxLength: 2 }),
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
    )
    .map(([name, params, body]) => encodeCommand(name, params, Buffer.from(body))),
  validMpub,
  // Many empty parameters on one line.
  fc.integer({ min: 1, max: 10_000 }).map((n) => Buffer.from(`RDY${' '.repeat(n)}\n`)),
);
const commandBytes: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: validCommand },
  // Long lines around the 16 KiB limit, with or without their newline.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: MAX_LINE_BYTES - 3, max: MAX_LINE_BYTES + 3 }), fc.boolean())
      .map(([n, lf]) => Buffer.from(`FIN ${'a'.repeat(n - 4)}${lf ? '\n' : ''}`)),
  },
);
const commandStream = fc.array(commandBytes, { minLength: 1, maxLength: 8 }).map((parts) => Buffer.concat(parts));

/** Feeds chunks to a CommandDecoder, checking every callback and the buffer bound; returns the events. */
function decodeCommands(chunks: Buffer[]): string[] {
  const decoder = new CommandDecoder({ maxMsgBytes: MAX_MSG, maxBodyBytes: MAX_BODY });
  const events: string[] = [];
  let ended = false;
  let pendingLine: string | null = null;
  const checkLine = (cmd: Command) => {
    expect(ended).toBe(false);
    expect(cmd.name).not.toMatch(/[ \n]/);
    // One plain check per parameter (a line may carry 10,000 of them), one expect.
    expect(cmd.params.every((p) => p.indexOf(' ') < 0 && p.indexOf('\n') < 0)).toBe(true);
  };
  const handler: CommandHandler = {
    onBodyCommandLine(cmd) {
      checkLine(cmd);
      expect(hasBody(cmd.name)).toBe(true);
      expect(cmd.body).toBeNull();
      expect(cmd.bodySize).toBe(-1);
      pendingLine = cmd.name;
      events.push(`line ${cmd.name} ${cmd.params.length} ${cmd.params.join(' ')}`);
      return true;
    },
    onCommand(cmd) {
      checkLine(cmd);
      if (!hasBody(cmd.name)) {
        expect(pendingLine).toBeNull();
        expect(cmd.body).toBeNull();
        expect(cmd.bodySize).toBe(-1);
        events.push(`cmd ${cmd.name} ${cmd.params.length} ${cmd.params.join(' ')}`);
        return true;
      }
      expect(pendingLine).toBe(cmd.name);
      pendingLine = null;
      const limit = decoder.bodyLimit(cmd.name);
      if (cmd.error !== null) {
        // An MPUB framed wrongly by its count or lengths: reported once, then nothing more.
        expect(cmd.name).toBe('MPUB');
        expect(cmd.body).toBeNull();
        expect(cmd.error.fatal).toBe(true);
        ended = true;
        events.push(`refused MPUB ${cmd.error.message}`);
        return false;
      }
      if (cmd.body === null) {
        // A refused size: reported once, then nothing more.
        expect(cmd.bodySize <= 0 || cmd.bodySize > limit).toBe(true);
        ended = true;
        events.push(`refused ${cmd.name} ${cmd.bodySize}`);
        return false;
      }
      expect(cmd.bodySize).toBeGreaterThan(0);
      expect(cmd.bodySize).toBeLessThanOrEqual(limit);
      if (cmd.name === 'MPUB') {
        // Framed by its count and lengths, not by the size field: its messages lie in its body.
        const m = cmd.messages as MpubMessages;
        let total = 0;
        for (let i = 0; i < m.count; i++) {
          const [start, length] = [m.starts[i] as number, m.lengths[i] as number];
          expect(length > 0 && length <= MAX_MSG && start + length <= (cmd.body as Buffer).length).toBe(true);
          total += length;
        }
        expect(total).toBeLessThanOrEqual(MAX_BODY);
      } else {
        expect(cmd.body?.length).toBe(cmd.bodySize);
      }
      events.push(`cmd ${cmd.name} ${cmd.params.length} ${cmd.params.join(' ')} ${cmd.body?.toString('hex')}`);
      return true;
    },
    onLineTooLong() {
      expect(ended).toBe(false);
      ended = true;
      events.push('too long');
    },
  };
  for (const chunk of chunks) {
    decoder.push(chunk, handler);
    // An MPUB holds its messages (at most MAX_BODY bytes) and their framing.
    const mpubFraming = 4 + 4 * Math.floor((MAX_BODY - 4) / 5);
    expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX_LINE_BYTES + 4 + MAX_BODY + mpubFraming);
  }
  return events;
}

describe('CommandDecoder', () => {
  it('keeps its contract and its buffer bound on any input, in any chunking', () => {
    fc.assert(
      fc.property(hostile(commandStream, [MAX_MSG, MAX_BODY]), cuts, (data, points) => {
        const whole = decodeCommands([data]);
        expect(decodeCommands(split(data, points))).toEqual(whole);
      }),
      RUN,
    );
  });

  it('decodes unmutated streams completely', () => {
    fc.assert(
      fc.property(fc.array(validCommand, { minLength: 1, maxLength: 6 }), cuts, (parts, points) => {
        const events = decodeCommands(split(Buffer.concat(parts), points));
        // Bodies over the (small) limits under test are refused, which ends the stream.
        if (!events.some((e) => e.startsWith('refused'))) {
          expect(events.filter((e) => e.startsWith('cmd')).length).toBe(parts.length);
        }
      }),
      RUN,
    );
  });
});

// ---- MPUB bodies ----

describe('scanMpubBody', () => {
  const mpubBody = fc
    .array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 20 })
    .map((bodies) => encodeMpubBody(bodies.map((b) => Buffer.from(b))));

  it('returns an in-bounds layout or an error, never throws', () => {
    fc.assert(
      fc.property(
        hostile(mpubBody, [MAX_MSG, MAX_BODY]),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 5, max: 2048 }),
        (body, maxMsg, maxBody) => {
          const starts: number[] = [];
          const lengths: number[] = [];
          const result = scanMpubBody(body, maxMsg, maxBody, starts, lengths);
          if (typeof result !== 'number') {
            expect(['count', 'size', 'too-big', 'truncated', 'truncated-size', 'truncated-body']).toContain(
              result.kind,
            );
            return;
          }
          expect(result).toBeGreaterThan(0);
          expect(result).toBeLessThanOrEqual(Math.floor((maxBody - 4) / 5));
          let end = 4;
          for (let i = 0; i < result; i++) {
            const start = starts[i] as number;
            const length = lengths[i] as number;
            expect(start).toBe(end + 4);
            expect(length).toBeGreaterThan(0);
            expect(length).toBeLessThanOrEqual(maxMsg);
            expect(start + length).toBeLessThanOrEqual(body.length);
            expect(body.readInt32BE(start - 4)).toBe(length);
            end = start + length;
          }
        },
      ),
      RUN,
    );
  });
});

// ---- IDENTIFY JSON ----

const IDENTIFY_KEYS = [
  'client_id',
  'hostname',
  'user_agent',
  'feature_negotiation',
  'heartbeat_interval',
  'output_buffer_size',
  'output_buffer_timeout',
  'tls_v1',
  'snappy',
  'deflate',
  'deflate_level',
  'sample_rate',
  'msg_timeout',
  'CLIENT_ID',
  'Heartbeat_Interval',
  '__proto__',
  'constructor',
];

const jsonScalar = fc.oneof(
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1e300, -0),
);
const identifyText = fc.oneof(
  fc.dictionary(fc.constantFrom(...IDENTIFY_KEYS), fc.oneof(jsonScalar, fc.jsonValue())).map((o) => JSON.stringify(o)),
  fc
    .tuple(
      fc.constantFrom(...IDENTIFY_KEYS),
      fc.constantFrom('1000.0', '1e3', '-0', '1E+3', '12345678901234567890', '"x"'),
    )
    .map(([k, v]) => `{"${k}": ${v}}`),
  fc.json(),
  fc.integer({ min: 1, max: 100_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"client_id":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
  fc.integer({ min: 1, max: 100_000 }).map((n) => '{"a":'.repeat(n)),
);
const identifyBytes = hostile(
  identifyText.map((t) => Buffer.from(t)),
  [],
);
const identifyInput = fc.oneof(
  identifyBytes,
  fc.constantFrom(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
);

describe('decodeIdentifyBody', () => {
  it('returns well-typed fields or throws IdentifyDecodeError', () => {
    fc.assert(
      fc.property(identifyInput, (body) => {
        let request: ReturnType<typeof decodeIdentifyBody>;
        try {
          request = decodeIdentifyBody(body);
        } catch (err) {
          expect(err).toBeInstanceOf(IdentifyDecodeError);
          return;
        }
        for (const key of ['client_id', 'hostname', 'user_agent'] as const) expect(typeof request[key]).toBe('string');
        for (const key of ['feature_negotiation', 'tls_v1', 'snappy', 'deflate'] as const) {
          expect(typeof request[key]).toBe('boolean');
        }
        for (const key of [
          'heartbeat_interval',
          'output_buffer_size',
          'output_buffer_timeout',
          'deflate_level',
          'msg_timeout',
        ] as const) {
          expect(Number.isSafeInteger(request[key])).toBe(true);
        }
        expect(request.sample_rate).toBeGreaterThanOrEqual(-(2 ** 31));
        expect(request.sample_rate).toBeLessThanOrEqual(2 ** 31 - 1);
        expect(Object.keys(request).length).toBe(13);
      }),
      RUN,
    );
  });

  it('decodes into any field set the same way (lookupd IDENTIFY)', () => {
    const fields: Record<string, JsonFieldKind> = { tcp_port: 'int', hostname: 'string', version: 'string' };
    fc.assert(
      fc.property(identifyInput, (body) => {
        const target: Record<string, unknown> = {};
        try {
          decodeGoJsonFields(body, fields, target);
        } catch (err) {
          expect(err).toBeInstanceOf(IdentifyDecodeError);
          return;
        }
        for (const key of Object.keys(target)) expect(Object.hasOwn(fields, key)).toBe(true);
      }),
      RUN,
    );
  });
});

// ---- frames (client side) ----

const MAX_FRAME = 512;

describe('FrameDecoder', () => {
  const frames = fc
    .array(
      fc.tuple(
        fc.constantFrom(FrameType.Response, FrameType.Error, FrameType.Message),
        fc.uint8Array({ maxLength: 200 }),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((fs) => Buffer.concat(fs.map(([type, data]) => encodeFrame(type, Buffer.from(data)))));

  function decodeFrames(chunks: Buffer[]): string[] {
    const decoder = new FrameDecoder({ maxFrameBytes: MAX_FRAME });
    const events: string[] = [];
    try {
      for (const chunk of chunks) {
        decoder.push(chunk, (type, data) => {
          expect([0, 1, 2]).toContain(type);
          expect(data.length).toBeLessThanOrEqual(MAX_FRAME - 4);
          events.push(`${type} ${data.toString('hex')}`);
        });
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(4 + MAX_FRAME);
      }
    } catch (err) {
      expect(err).toBeInstanceOf(FrameDecodeError);
      events.push('error');
    }
    return events;
  }

  it('throws only FrameDecodeError, hands out in-contract frames, stays within its bound', () => {
    fc.assert(
      fc.property(hostile(frames, [MAX_FRAME]), cuts, (data, points) => {
        expect(decodeFrames(split(data, points))).toEqual(decodeFrames([data]));
      }),
      RUN,
    );
  });
});

// ---- lookupd V1 responses ----

const MAX_RESPONSE = 512;

describe('LookupResponseDecoder', () => {
  const responses = fc
    .array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 })
    .map((rs) => Buffer.concat(rs.map((r) => encodeLookupResponse(Buffer.from(r)))));

  function decodeResponses(chunks: Buffer[]): string[] {
    const decoder = new LookupResponseDecoder({ maxResponseBytes: MAX_RESPONSE });
    const events: string[] = [];
    try {
      for (const chunk of chunks) {
        decoder.push(chunk, (data) => {
          expect(data.length).toBeLessThanOrEqual(MAX_RESPONSE);
          events.push(data.toString('hex'));
        });
        expect(decoder.bufferedBytes).toBeLessThan(4 + MAX_RESPONSE);
      }
    } catch (err) {
      expect(err).toBeInstanceOf(LookupResponseDecodeError);
      events.push('error');
    }
    return events;
  }

  it('throws only LookupResponseDecodeError and stays within its bound', () => {
    fc.assert(
      fc.property(hostile(responses, [MAX_RESPONSE]), cuts, (data, points) => {
        expect(decodeResponses(split(data, points))).toEqual(decodeResponses([data]));
      }),
      RUN,
    );
  });
});

// ---- snappy ----

/** Data that compresses (few distinct bytes) or not. */
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
  fc.array(fc.constantFrom(0x61, 0x62, 0x63), { maxLength: 3000 }).map((a) => Buffer.from(a)),
  fc.integer({ min: 60_000, max: 140_000 }).map((n) => Buffer.alloc(n, 0x7a)),
);

describe('snappy', () => {
  const stream = fc.array(payload, { minLength: 1, maxLength: 3 }).map((parts) => {
    const encoder = new SnappyFrameEncoder();
    return { data: Buffer.concat(parts), stream: Buffer.concat(parts.map((p) => encoder.encode([p]))) };
  });

  function decodeSnappy(chunks: Buffer[]): { data: Buffer; error: boolean } {
    const decoder = new SnappyFrameDecoder();
    const out: Buffer[] = [];
    try {
      for (const chunk of chunks) {
        for (const piece of decoder.push(chunk)) {
          expect(piece.length).toBeLessThanOrEqual(65536);
          out.push(piece);
        }
        expect(decoder.bufferedBytes).toBeLessThanOrEqual(MAX_SNAPPY_BUFFERED_BYTES);
      }
    } catch (err) {
      expect(err).toBeInstanceOf(SnappyError);
      return { data: Buffer.concat(out), error: true };
    }
    return { data: Buffer.concat(out), error: false };
  }

  it('round-trips any data in any chunking', () => {
    fc.assert(
      fc.property(stream, cuts, ({ data, stream }, points) => {
        const decoded = decodeSnappy(split(stream, points));
        expect(decoded.error).toBe(false);
        expect(decoded.data.equals(data)).toBe(true);
      }),
      { ...RUN, numRuns: Math.ceil(NUM_RUNS / 3) },
    );
  });

  it('the framing decoder throws only SnappyError and stays within its bound', () => {
    fc.assert(
      fc.property(
        hostile(
          stream.map((s) => s.stream),
          [65536, maxCompressedLength(65536) + 4],
        ),
        cuts,
        (data, points) => {
          const whole = decodeSnappy([data]);
          const parts = decodeSnappy(split(data, points));
          expect(parts.error).toBe(whole.error);
          if (!whole.error) expect(parts.data.equals(whole.data)).toBe(true);
        },
      ),
      { ...RUN, numRuns: Math.ceil(NUM_RUNS / 3) },
    );
  });

  it('the block decoder throws only SnappyError and never exceeds its maximum length', () => {
    const block = payload.map((p) => {
      const data = p.subarray(0, 65536);
      const dst = Buffer.allocUnsafe(maxCompressedLength(data.length));
      return dst.subarray(0, compressBlock(data, 0, data.length, dst, 0));
    });
    fc.assert(
      fc.property(hostile(block, [65536]), fc.integer({ min: 0, max: 70_000 }), (data, max) => {
        try {
          expect(uncompressBlock(data, 0, data.length, max).length).toBeLessThanOrEqual(max);
        } catch (err) {
          expect(err).toBeInstanceOf(SnappyError);
        }
      }),
      RUN,
    );
  });
});

// ---- deflate ----

describe('InflateStream', () => {
  const stream = fc
    .array(payload, { minLength: 1, maxLength: 3 })
    .map((parts) => ({ data: Buffer.concat(parts), stream: Buffer.concat(parts.map((p) => deflateSegment(p, 6))) }));

  function inflate(chunks: Buffer[]): { data: Buffer; error: boolean } {
    const inflater = new InflateStream();
    const out: Buffer[] = [];
    try {
      for (const chunk of chunks) {
        inflater.pushEach(chunk, (piece) => {
          expect(piece.length).toBeGreaterThan(0);
          expect(piece.length).toBeLessThanOrEqual(MAX_INFLATE_PIECE_BYTES);
          out.push(piece);
        });
      }
    } catch (err) {
      expect(err).toBeInstanceOf(InflateError);
      return { data: Buffer.concat(out), error: true };
    }
    return { data: Buffer.concat(out), error: false };
  }

  it('round-trips any data in any chunking', () => {
    fc.assert(
      fc.property(stream, cuts, ({ data, stream }, points) => {
        const decoded = inflate(split(stream, points));
        expect(decoded.error).toBe(false);
        expect(decoded.data.equals(data)).toBe(true);
      }),
      { ...RUN, numRuns: Math.ceil(NUM_RUNS / 3) },
    );
  });

  it('throws only InflateError on mutated streams; each piece is bounded', () => {
    // `inflate` asserts both (only InflateError escapes; every piece is 1..MAX bytes). What a
    // corrupt raw-deflate stream decodes to is not specified (it has no checksum): fflate's
    // streaming inflater can yield different garbage for different chunkings of the same
    // corrupt stored block (FC_SEED=481850585: 3,637 bytes whole, 4,149 cut at byte 91), so
    // whole-vs-chunked equality is asserted only for valid streams (the test above).
    fc.assert(
      fc.property(
        hostile(
          stream.map((s) => s.stream),
          [],
        ),
        cuts,
        (data, points) => {
          inflate([data]);
          inflate(split(data, points));
        },
      ),
      { ...RUN, numRuns: Math.ceil(NUM_RUNS / 3) },
    );
  });

  it('hands a deflate bomb out in bounded pieces', () => {
    const bomb = deflateSegment(Buffer.alloc(64 * 1024 * 1024), 9);
    const inflater = new InflateStream();
    let total = 0;
    let largest = 0;
    for (let at = 0; at < bomb.length; at += 65536) {
      inflater.pushEach(bomb.subarray(at, at + 65536), (piece) => {
        total += piece.length;
        largest = Math.max(largest, piece.length);
      });
    }
    expect(total).toBe(64 * 1024 * 1024);
    expect(largest).toBeLessThanOrEqual(MAX_INFLATE_PIECE_BYTES);
  });
});
