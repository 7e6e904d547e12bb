import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chunkings, copy } from './chunkings.test-util.js';
import {
  type Command,
  CommandDecoder,
  type CommandDecoderOptions,
  type CommandHandler,
  finCommand,
  hasBody,
  MAX_LINE_BYTES,
} from './command-decoder.js';

// ---------------------------------------------------------------------------------------------
// Fixture builders (independent of the encoders in commands.ts on purpose)
// ---------------------------------------------------------------------------------------------

const LIMITS: CommandDecoderOptions = { maxMsgBytes: 1024, maxBodyBytes: 4096 };
/** nsqd's defaults: --max-msg-size 1 MiB, --max-body-size 5 MiB. */
const NSQD_LIMITS: CommandDecoderOptions = { maxMsgBytes: 1024 * 1024, maxBodyBytes: 5 * 1024 * 1024 };

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function line(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A body command: its line, the announced size (defaults to the body length), the body. */
function withBody(text: string, body: Buffer | string, size?: number): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([line(text), int32(size ?? b.length), b]);
}

function mpubBody(messages: Array<string | Buffer>): Buffer {
  const bodies = messages.map((m) => (typeof m === 'string' ? Buffer.from(m) : m));
  return Buffer.concat([int32(bodies.length), ...bodies.flatMap((b) => [int32(b.length), b])]);
}

/** The messages of a well-formed MPUB body, read independently of the decoder. */
function mpubMessages(body: Buffer): string[] {
  const out: string[] = [];
  let at = 4;
  for (let i = body.readInt32BE(0); i > 0; i--) {
    const length = body.readInt32BE(at);
    out.push(body.toString('hex', at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

/** A valid MPUB body of exactly `total` bytes, messages of at most `maxMsg` bytes. */
function mpubBodyOfSize(total: number, maxMsg: number): Buffer {
  const bodies: Buffer[] = [];
  let left = total - 4;
  while (left > 0) {
    const length = Math.min(maxMsg, left - 4);
    bodies.push(pattern(length, bodies.length));
    left -= 4 + length;
  }
  const body = mpubBody(bodies);
  expect(body.length).toBe(total);
  return body;
}

function pattern(size: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed + (i >>> 8)) & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------
// A recording handler
// ---------------------------------------------------------------------------------------------

type Event =
  /** A body command's line, as seen by onBodyCommandLine (its body must not be read yet). */
  | { kind: 'line'; name: string; params: string[]; bodySize: number; body: Buffer | null }
  | {
      kind: 'command';
      name: string;
      params: string[];
      bodySize: number;
      body: Buffer | null;
      /** MPUB: its messages (hex) as `Command.messages` locates them in the body. */
      messages: string[] | null;
      /** MPUB: the framing error's frame text. */
      error: string | null;
    }
  | { kind: 'too-long' };

interface RunOptions {
  limits?: CommandDecoderOptions;
  /** Return false to stop decoding at this body command line. */
  onBodyCommandLine?: (cmd: Command) => boolean;
  /** Return false to stop decoding after this command. */
  onCommand?: (cmd: Command) => boolean;
}

interface RunResult {
  events: Event[];
  /** takeRemainder() plus every chunk not pushed, when the handler stopped decoding; else null. */
  remainder: Buffer | null;
  /** Largest bufferedBytes seen after a push (only while the handler had not stopped). */
  maxBuffered: number;
  finalBuffered: number;
}

function run(chunks: Buffer[], options: RunOptions = {}): RunResult {
  const decoder = new CommandDecoder(options.limits ?? LIMITS);
  const events: Event[] = [];
  let stopped = false;
  const handler: CommandHandler = {
    onBodyCommandLine(cmd) {
      events.push({ kind: 'line', name: cmd.name, params: [...cmd.params], bodySize: cmd.bodySize, body: cmd.body });
      const go = options.onBodyCommandLine?.(cmd) ?? true;
      if (!go) stopped = true;
      return go;
    },
    onCommand(cmd) {
      events.push({
        kind: 'command',
        name: cmd.name,
        params: [...cmd.params],
        bodySize: cmd.bodySize,
        body: cmd.body === null ? null : Buffer.from(cmd.body),
        messages: located(cmd),
        error: cmd.error?.message ?? null,
      });
      const go = options.onCommand?.(cmd) ?? true;
      if (!go) stopped = true;
      return go;
    },
    onLineTooLong() {
      events.push({ kind: 'too-long' });
    },
  };
  let maxBuffered = 0;
  let i = 0;
  while (i < chunks.length && !stopped) {
    decoder.push(chunks[i], handler);
    i++;
    if (!stopped) maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
  }
  const remainder = stopped ? Buffer.concat([decoder.takeRemainder(), ...chunks.slice(i)]) : null;
  return { events, remainder, maxBuffered, finalBuffered: decoder.bufferedBytes };
}

/** The messages `cmd.messages` points at, read out of the body while it is valid. */
function located(cmd: Command): string[] | null {
  const m = cmd.messages;
  if (m === null || cmd.body === null) return null;
  const body = cmd.body;
  return Array.from({ length: m.count }, (_, i) =>
    body.toString('hex', m.starts[i] as number, (m.starts[i] as number) + (m.lengths[i] as number)),
  );
}

function cmdEvent(name: string, params: string[] = [], body: Buffer | string | null = null, bodySize?: number): Event {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return {
    kind: 'command',
    name,
    params,
    body: b,
    bodySize: bodySize ?? (b === null ? -1 : b.length),
    messages: name === 'MPUB' && b !== null ? mpubMessages(b) : null,
    error: null,
  };
}

/** An MPUB that failed with `error` (fatal): no body, nothing after it. */
function mpubError(params: string[], bodySize: number, error: string): Event {
  return { kind: 'command', name: 'MPUB', params, body: null, bodySize, messages: null, error };
}

function lineEvent(name: string, params: string[] = []): Event {
  return { kind: 'line', name, params, bodySize: -1, body: null };
}

/** A body command as events: its line, then the command with its body. */
function bodyEvents(name: string, params: string[], body: Buffer | string): Event[] {
  return [lineEvent(name, params), cmdEvent(name, params, body)];
}

/** Asserts that every chunking of `data` decodes to exactly `expected`. Returns the chunkings run. */
function expectAllChunkings(
  data: Buffer,
  expected: Event[],
  options: RunOptions & {
    pairs?: boolean;
    offsets?: Iterable<number>;
    remainder?: Buffer | null;
    finalBuffered?: number;
  } = {},
): number {
  const limits = options.limits ?? LIMITS;
  // An MPUB holds at most --max-body-size bytes of messages plus their count and lengths.
  const mpubFraming = 4 + 4 * Math.floor((limits.maxBodyBytes - 4) / 5);
  const bound = MAX_LINE_BYTES + Math.max(limits.maxMsgBytes, limits.maxBodyBytes + mpubFraming);
  let n = 0;
  for (const { label, chunks } of chunkings(data, { pairs: options.pairs, offsets: options.offsets })) {
    const result = run(chunks, options);
    // One assertion per chunking, labelled, so a failure names the chunking.
    if (!eventsEqual(result.events, expected)) {
      expect(summarize(result.events), label).toEqual(summarize(expected));
    }
    if (options.remainder !== undefined) {
      expect(result.remainder?.toString('hex') ?? null, label).toBe(options.remainder?.toString('hex') ?? null);
    }
    if (options.finalBuffered !== undefined) {
      expect(result.finalBuffered, label).toBe(options.finalBuffered);
    }
    if (result.maxBuffered > bound) {
      expect(result.maxBuffered, `${label}: bufferedBytes`).toBeLessThanOrEqual(bound);
    }
    n++;
  }
  return n;
}

/** A readable form of events for assertion messages: long strings and bodies are abbreviated. */
function summarize(events: Event[]): unknown[] {
  const short = (s: string) => (s.length <= 80 ? s : `${s.slice(0, 40)}... (${s.length} chars)`);
  const bodyText = (b: Buffer | null) =>
    b === null
      ? null
      : b.length <= 64
        ? `hex:${b.toString('hex')}`
        : `${b.length} bytes sha1:${createHash('sha1').update(b).digest('hex')}`;
  return events.map((e) =>
    e.kind === 'too-long'
      ? e
      : {
          kind: e.kind,
          name: short(e.name),
          params: e.params.map(short),
          bodySize: e.bodySize,
          body: bodyText(e.body),
          ...(e.kind === 'command' ? { messages: e.messages?.map(short) ?? null, error: e.error } : {}),
        },
  );
}

function eventsEqual(a: Event[], b: Event[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.kind !== y.kind) return false;
    if (x.kind === 'too-long' || y.kind === 'too-long') continue;
    if (x.name !== y.name || x.bodySize !== y.bodySize || x.params.join('\0') !== y.params.join('\0')) return false;
    if (x.params.length !== y.params.length) return false;
    if (x.kind === 'command' && y.kind === 'command') {
      if (x.error !== y.error || (x.messages ?? []).join() !== (y.messages ?? []).join()) return false;
      if ((x.messages === null) !== (y.messages === null)) return false;
    }
    if (x.body === null || y.body === null) {
      if (x.body !== y.body) return false;
    } else if (!x.body.equals(y.body)) {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Fixtures: every command
// ---------------------------------------------------------------------------------------------

const IDENTIFY_JSON = JSON.stringify({
  client_id: 'worker-1',
  hostname: 'worker-1.local',
  feature_negotiation: true,
  heartbeat_interval: 30000,
  user_agent: 'nsq-ts-test/1.0',
});
const MSG_ID = '0a1b2c3d4e5f6071';
const MPUB_MESSAGES = ['one', 'two two', 'three three three'];

interface Fixture {
  name: string;
  data: Buffer;
  events: Event[];
}

const FIXTURES: Fixture[] = [
  {
    name: 'IDENTIFY with a JSON body',
    data: withBody('IDENTIFY\n', IDENTIFY_JSON),
    events: bodyEvents('IDENTIFY', [], IDENTIFY_JSON),
  },
  { name: 'AUTH', data: withBody('AUTH\n', 's3cr3t-t0ken'), events: bodyEvents('AUTH', [], 's3cr3t-t0ken') },
  {
    name: 'SUB',
    data: line('SUB orders archive#ephemeral\n'),
    events: [cmdEvent('SUB', ['orders', 'archive#ephemeral'])],
  },
  { name: 'PUB', data: withBody('PUB orders\n', 'hello world'), events: bodyEvents('PUB', ['orders'], 'hello world') },
  {
    name: 'PUB with a binary body containing newlines, CRs and NULs',
    data: withBody('PUB bin\n', Buffer.from([0x0a, 0x0d, 0x00, 0xff, 0x0a, 0x20, 0x0a])),
    events: bodyEvents('PUB', ['bin'], Buffer.from([0x0a, 0x0d, 0x00, 0xff, 0x0a, 0x20, 0x0a])),
  },
  {
    name: 'MPUB',
    data: withBody('MPUB orders\n', mpubBody(MPUB_MESSAGES)),
    events: bodyEvents('MPUB', ['orders'], mpubBody(MPUB_MESSAGES)),
  },
  {
    name: 'DPUB',
    data: withBody('DPUB orders 1500\n', 'later'),
    events: bodyEvents('DPUB', ['orders', '1500'], 'later'),
  },
  { name: 'RDY', data: line('RDY 100\n'), events: [cmdEvent('RDY', ['100'])] },
  { name: 'RDY without a param', data: line('RDY\n'), events: [cmdEvent('RDY', [])] },
  { name: 'FIN', data: line(`FIN ${MSG_ID}\n`), events: [cmdEvent('FIN', [MSG_ID])] },
  { name: 'REQ', data: line(`REQ ${MSG_ID} 5000\n`), events: [cmdEvent('REQ', [MSG_ID, '5000'])] },
  { name: 'TOUCH', data: line(`TOUCH ${MSG_ID}\n`), events: [cmdEvent('TOUCH', [MSG_ID])] },
  { name: 'CLS', data: line('CLS\n'), events: [cmdEvent('CLS')] },
  { name: 'NOP', data: line('NOP\n'), events: [cmdEvent('NOP')] },
  {
    name: 'CRLF line endings',
    data: Buffer.concat([
      line('SUB t c\r\n'),
      line('RDY 5\r\n'),
      withBody('PUB t\r\n', 'x\r\n'),
      line('NOP\r\n'),
      line('RDY\r\n'),
    ]),
    events: [
      cmdEvent('SUB', ['t', 'c']),
      cmdEvent('RDY', ['5']),
      ...bodyEvents('PUB', ['t'], 'x\r\n'),
      cmdEvent('NOP'),
      cmdEvent('RDY'),
    ],
  },
  {
    name: 'only one trailing CR is stripped; a lone CR elsewhere is kept',
    data: line('NOP\r\r\nRDY 1\r2\n\r\n'),
    events: [cmdEvent('NOP\r'), cmdEvent('RDY', ['1\r2']), cmdEvent('')],
  },
  {
    name: 'double spaces produce empty params',
    data: line('SUB  t  c\nRDY \nREQ id  \n NOP\n'),
    events: [
      cmdEvent('SUB', ['', 't', '', 'c']),
      cmdEvent('RDY', ['']),
      cmdEvent('REQ', ['id', '', '']),
      cmdEvent('', ['NOP']),
    ],
  },
  {
    name: 'double spaces on a body command line',
    data: withBody('DPUB  t 10\n', 'b'),
    events: bodyEvents('DPUB', ['', 't', '10'], 'b'),
  },
  { name: 'an empty line', data: line('\n\r\n'), events: [cmdEvent(''), cmdEvent('')] },
  {
    name: 'command names are case-sensitive: lower-case pub has no body',
    data: line('pub t\nNOP\n'),
    events: [cmdEvent('pub', ['t']), cmdEvent('NOP')],
  },
  {
    name: 'non-ASCII bytes in a line map 1:1 to latin1 chars',
    data: Buffer.concat([line('SUB '), Buffer.from([0xc3, 0xa9, 0xff, 0x80]), line(' c\n')]),
    events: [cmdEvent('SUB', ['\u00c3\u00a9\u00ff\u0080', 'c'])],
  },
];

const BACK_TO_BACK: Fixture = {
  name: 'several commands back to back in one buffer',
  data: Buffer.concat(FIXTURES.slice(0, 14).map((f) => f.data)),
  events: FIXTURES.slice(0, 14).flatMap((f) => f.events),
};

describe('hasBody', () => {
  it('is true exactly for IDENTIFY, AUTH, PUB, DPUB and MPUB', () => {
    for (const name of ['IDENTIFY', 'AUTH', 'PUB', 'DPUB', 'MPUB']) expect(hasBody(name), name).toBe(true);
    for (const name of ['SUB', 'RDY', 'FIN', 'REQ', 'TOUCH', 'CLS', 'NOP', 'pub', 'Pub', '', 'PUBX']) {
      expect(hasBody(name), name).toBe(false);
    }
  });
});

describe('CommandDecoder: every command, every chunking', () => {
  for (const fixture of [...FIXTURES, BACK_TO_BACK]) {
    it(fixture.name, () => {
      const n = expectAllChunkings(fixture.data, fixture.events, {
        finalBuffered: 0,
        pairs: fixture.data.length <= 200,
      });
      expect(n).toBeGreaterThanOrEqual(fixture.data.length + 1);
    });
  }

  it('the back-to-back fixture is also decoded identically when split at every pair of offsets', () => {
    // Larger than the default pair threshold; still small enough to try every pair.
    expect(BACK_TO_BACK.data.length).toBeGreaterThan(200);
    expectAllChunkings(BACK_TO_BACK.data, BACK_TO_BACK.events, { pairs: true, finalBuffered: 0 });
  });

  it('a body command line sees the command before its size is read', () => {
    const seen: Array<{ bodySize: number; body: Buffer | null }> = [];
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(withBody('PUB t\n', 'abc'), {
      onBodyCommandLine: (cmd) => {
        seen.push({ bodySize: cmd.bodySize, body: cmd.body });
        return true;
      },
      onCommand: () => true,
      onLineTooLong: () => {},
    });
    expect(seen).toEqual([{ bodySize: -1, body: null }]);
  });

  it('non-body commands report bodySize -1 and body null', () => {
    const { events } = run([line('RDY 1\n')]);
    expect(events).toEqual([
      { kind: 'command', name: 'RDY', params: ['1'], bodySize: -1, body: null, messages: null, error: null },
    ]);
  });
});

/** A handler that keeps every body it is given. */
function bodyCollector(bodies: Buffer[]): CommandHandler {
  return {
    onBodyCommandLine: () => true,
    onCommand: (cmd) => {
      if (cmd.body) bodies.push(cmd.body);
      return true;
    },
    onLineTooLong: () => {},
  };
}

describe('CommandDecoder: bodies', () => {
  it('a body is a copy of its own, not a view of the socket chunk', () => {
    const chunk = withBody('PUB t\n', 'payload');
    const bodies: Buffer[] = [];
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(chunk, {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        if (cmd.body) bodies.push(cmd.body);
        return true;
      },
      onLineTooLong: () => {},
    });
    chunk.fill(0);
    expect(bodies.map((b) => b.toString())).toEqual(['payload']);
  });

  it('a body split over chunks is a copy too', () => {
    const data = withBody('PUB t\n', 'payload');
    const chunks = [copy(data, 0, 12), copy(data, 12, 14), copy(data, 14, data.length)];
    const bodies: Buffer[] = [];
    const decoder = new CommandDecoder(LIMITS);
    const handler = bodyCollector(bodies);
    for (const c of chunks) decoder.push(c, handler);
    for (const c of chunks) c.fill(0);
    expect(bodies.map((b) => b.toString())).toEqual(['payload']);
  });

  it('every body, whole or split, PUB or MPUB, is copied into the buffer allocBody gives for its command', () => {
    const stream = Buffer.concat([
      withBody('PUB t1\n', 'payload'),
      withBody('MPUB t2\n', mpubBody(['a', 'bc'])),
      withBody('IDENTIFY\n', '{}'),
    ]);
    for (const { chunks } of chunkings(stream)) {
      const given: Buffer[] = [];
      const asked: string[] = [];
      const bodies: Buffer[] = [];
      const decoder = new CommandDecoder({
        ...LIMITS,
        allocBody: (cmd, size) => {
          asked.push(`${cmd.name} ${cmd.params.join(' ')} ${size}`);
          const b = Buffer.alloc(size + 16).subarray(8, 8 + size);
          given.push(b);
          return b;
        },
      });
      const handler = bodyCollector(bodies);
      for (const c of chunks) decoder.push(c, handler);
      expect(asked).toEqual(['PUB t1 7', 'MPUB t2 15', 'IDENTIFY  2']);
      expect(bodies).toHaveLength(3);
      for (const [i, b] of bodies.entries()) expect(b).toBe(given[i]);
      expect(bodies[0]?.toString()).toBe('payload');
      expect(mpubMessages(bodies[1] as Buffer)).toEqual([
        Buffer.from('a').toString('hex'),
        Buffer.from('bc').toString('hex'),
      ]);
    }
  });

  it('a body of exactly the limit is accepted (PUB/DPUB: max-msg-size; IDENTIFY/AUTH/MPUB: max-body-size)', () => {
    const msg = pattern(LIMITS.maxMsgBytes);
    const big = pattern(LIMITS.maxBodyBytes, 3);
    const bigMpub = mpubBodyOfSize(LIMITS.maxBodyBytes, LIMITS.maxMsgBytes);
    const data = Buffer.concat([
      withBody('PUB t\n', msg),
      withBody('DPUB t 0\n', msg),
      withBody('MPUB t\n', bigMpub),
      withBody('IDENTIFY\n', big),
      withBody('AUTH\n', big),
      line('NOP\n'),
    ]);
    expectAllChunkings(
      data,
      [
        ...bodyEvents('PUB', ['t'], msg),
        ...bodyEvents('DPUB', ['t', '0'], msg),
        ...bodyEvents('MPUB', ['t'], bigMpub),
        ...bodyEvents('IDENTIFY', [], big),
        ...bodyEvents('AUTH', [], big),
        cmdEvent('NOP'),
      ],
      { pairs: false, finalBuffered: 0 },
    );
  });

  it('MPUB, IDENTIFY and AUTH bodies may exceed max-msg-size', () => {
    const body = pattern(LIMITS.maxMsgBytes + 1);
    const mpub = mpubBodyOfSize(LIMITS.maxMsgBytes + 1, LIMITS.maxMsgBytes);
    for (const [name, b] of [
      ['MPUB t', mpub],
      ['IDENTIFY', body],
      ['AUTH', body],
    ] as const) {
      const [cmd, ...params] = name.split(' ');
      const { events } = run([withBody(`${name}\n`, b)]);
      expect(events).toEqual(bodyEvents(cmd, params, b));
    }
  });

  it('bufferedBytes counts the body bytes received so far and drops to 0 once a command is complete', () => {
    const body = pattern(LIMITS.maxMsgBytes);
    const data = withBody('PUB t\n', body);
    const decoder = new CommandDecoder(LIMITS);
    const handler: CommandHandler = { onBodyCommandLine: () => true, onCommand: () => true, onLineTooLong: () => {} };
    const headerLength = 'PUB t\n'.length + 4;
    for (let i = 0; i < data.length; i++) {
      decoder.push(copy(data, i, i + 1), handler);
      const received = i + 1;
      let expected: number;
      if (received < 'PUB t\n'.length)
        expected = received; // part of the line
      else if (received < headerLength)
        expected = received - 'PUB t\n'.length; // part of the size
      else if (received < data.length)
        expected = received - headerLength; // part of the body
      else expected = 0;
      if (decoder.bufferedBytes !== expected) expect(decoder.bufferedBytes, `after ${received} bytes`).toBe(expected);
    }
  });

  it('decodes a 1 MiB PUB (nsqd default max-msg-size) whole, byte by byte and split around every header byte', () => {
    const body = pattern(NSQD_LIMITS.maxMsgBytes, 11);
    const data = Buffer.concat([line('NOP\n'), withBody('PUB big\n', body), line('RDY 1\n')]);
    const expected = [cmdEvent('NOP'), ...bodyEvents('PUB', ['big'], body), cmdEvent('RDY', ['1'])];
    const bodyStart = 'NOP\nPUB big\n'.length + 4;
    const bodyEnd = bodyStart + body.length;
    const offsets = new Set<number>();
    for (let i = 1; i <= bodyStart + 4; i++) offsets.add(i);
    for (let i = bodyEnd - 4; i < data.length; i++) offsets.add(i);
    for (let i = bodyStart; i < bodyEnd; i += 65_521) offsets.add(i); // prime stride through the body
    const n = expectAllChunkings(data, expected, {
      limits: NSQD_LIMITS,
      pairs: false,
      finalBuffered: 0,
      offsets: [...offsets].sort((a, b) => a - b),
    });
    expect(n).toBe(2 + offsets.size);
  });

  it('decodes a 1 MiB PUB delivered in 64 KiB socket-sized chunks with other commands in between', () => {
    const body = pattern(NSQD_LIMITS.maxMsgBytes, 5);
    const data = Buffer.concat([
      withBody('PUB a\n', body),
      line('NOP\n'),
      withBody('PUB b\n', body),
      withBody('MPUB c\n', mpubBody(['x', 'y'])),
    ]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 65_536) chunks.push(copy(data, i, i + 65_536));
    const result = run(chunks, { limits: NSQD_LIMITS });
    const expected = [
      ...bodyEvents('PUB', ['a'], body),
      cmdEvent('NOP'),
      ...bodyEvents('PUB', ['b'], body),
      ...bodyEvents('MPUB', ['c'], mpubBody(['x', 'y'])),
    ];
    expect(summarize(result.events)).toEqual(summarize(expected));
    expect(result.finalBuffered).toBe(0);
    expect(result.maxBuffered).toBeLessThanOrEqual(body.length);
  });
});

describe('CommandDecoder: rejected body sizes', () => {
  /** The handler sees the line, then the command with body null and the announced size; nothing after. */
  function rejected(name: string, params: string[], size: number): Event[] {
    return [lineEvent(name, params), cmdEvent(name, params, null, size)];
  }

  const cases: Array<{ name: string; text: string; cmd: string; params: string[]; size: number }> = [
    { name: 'PUB size 0', text: 'PUB t\n', cmd: 'PUB', params: ['t'], size: 0 },
    { name: 'PUB size -1', text: 'PUB t\n', cmd: 'PUB', params: ['t'], size: -1 },
    { name: 'PUB size -2^31', text: 'PUB t\n', cmd: 'PUB', params: ['t'], size: -0x8000_0000 },
    { name: 'PUB over max-msg-size', text: 'PUB t\n', cmd: 'PUB', params: ['t'], size: LIMITS.maxMsgBytes + 1 },
    { name: 'PUB 2^31-1', text: 'PUB t\n', cmd: 'PUB', params: ['t'], size: 0x7fff_ffff },
    { name: 'DPUB size 0', text: 'DPUB t 10\n', cmd: 'DPUB', params: ['t', '10'], size: 0 },
    {
      name: 'DPUB over max-msg-size',
      text: 'DPUB t 10\n',
      cmd: 'DPUB',
      params: ['t', '10'],
      size: LIMITS.maxMsgBytes + 1,
    },
    { name: 'MPUB size 0', text: 'MPUB t\n', cmd: 'MPUB', params: ['t'], size: 0 },
    { name: 'MPUB negative', text: 'MPUB t\n', cmd: 'MPUB', params: ['t'], size: -100 },
    { name: 'MPUB over max-body-size', text: 'MPUB t\n', cmd: 'MPUB', params: ['t'], size: LIMITS.maxBodyBytes + 1 },
    { name: 'IDENTIFY size 0', text: 'IDENTIFY\n', cmd: 'IDENTIFY', params: [], size: 0 },
    {
      name: 'IDENTIFY over max-body-size',
      text: 'IDENTIFY\n',
      cmd: 'IDENTIFY',
      params: [],
      size: LIMITS.maxBodyBytes + 1,
    },
    { name: 'AUTH negative', text: 'AUTH\n', cmd: 'AUTH', params: [], size: -1 },
    { name: 'AUTH over max-body-size', text: 'AUTH\n', cmd: 'AUTH', params: [], size: LIMITS.maxBodyBytes + 1 },
  ];

  for (const c of cases) {
    it(`${c.name}: body null, bodySize set, decoder halts, nothing buffered`, () => {
      // Bytes after the size (some body, then valid commands) must never be decoded or buffered.
      const data = Buffer.concat([line('NOP\n'), line(c.text), int32(c.size), Buffer.from('xyzNOP\nRDY 1\n')]);
      expectAllChunkings(data, [cmdEvent('NOP'), ...rejected(c.cmd, c.params, c.size)], { finalBuffered: 0 });
    });
  }

  it('after a rejected size, later pushes are ignored', () => {
    const decoder = new CommandDecoder(LIMITS);
    const events: string[] = [];
    const handler: CommandHandler = {
      onBodyCommandLine: (cmd) => {
        events.push(`line ${cmd.name}`);
        return true;
      },
      onCommand: (cmd) => {
        events.push(`cmd ${cmd.name} ${cmd.bodySize} ${cmd.body === null ? 'null' : cmd.body.length}`);
        return true;
      },
      onLineTooLong: () => events.push('too-long'),
    };
    decoder.push(Buffer.concat([line('PUB t\n'), int32(LIMITS.maxMsgBytes + 1)]), handler);
    expect(decoder.bufferedBytes).toBe(0);
    decoder.push(line('NOP\n'), handler);
    decoder.push(withBody('PUB t\n', 'ok'), handler);
    decoder.push(Buffer.alloc(0), handler);
    expect(events).toEqual(['line PUB', `cmd PUB ${LIMITS.maxMsgBytes + 1} null`]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.takeRemainder().length).toBe(0);
  });

  it('a huge announced size is refused without allocating it', () => {
    // 2^31-1 with both limits at their maximum would be a 2 GiB allocation if the check came late.
    const { events, finalBuffered } = run([Buffer.concat([line('IDENTIFY\n'), int32(0x7fff_ffff), pattern(64)])], {
      limits: NSQD_LIMITS,
    });
    expect(events).toEqual(rejected('IDENTIFY', [], 0x7fff_ffff));
    expect(finalBuffered).toBe(0);
  });
});

describe('CommandDecoder: MPUB is read as nsqd reads it', () => {
  const messages = ['one', 'two two', 'three three three'];
  const body = mpubBody(messages);
  /** nsqjs announces the sum of the message bodies only. */
  const nsqjsSize = messages.reduce((n, m) => n + m.length, 0);
  const mpubCommand = (size: number) => [lineEvent('MPUB', ['t']), cmdEvent('MPUB', ['t'], body, size)];

  it('the usual layout: the size field covers the count, the lengths and the bodies', () => {
    const data = Buffer.concat([withBody('MPUB t\n', body), line('NOP\n')]);
    expectAllChunkings(data, [...mpubCommand(body.length), cmdEvent('NOP')], { finalBuffered: 0 });
  });

  it("nsqjs's layout: a size field of the bodies' sum alone still yields every message", () => {
    const data = Buffer.concat([withBody('MPUB t\n', body, nsqjsSize), line('NOP\n')]);
    expect(nsqjsSize).toBeLessThan(body.length);
    expectAllChunkings(data, [...mpubCommand(nsqjsSize), cmdEvent('NOP')], { finalBuffered: 0 });
  });

  it('bytes past the last message are the next command, whatever the size field said', () => {
    const data = Buffer.concat([withBody('MPUB t\n', body, body.length + 4), line('NOP\nRDY 1\n')]);
    expectAllChunkings(data, [...mpubCommand(body.length + 4), cmdEvent('NOP'), cmdEvent('RDY', ['1'])], {
      finalBuffered: 0,
    });
  });

  it("nsqjs's layout at --max-body-size: messages and framing over the size field, within the bound", () => {
    const limits = { maxMsgBytes: 64, maxBodyBytes: 4096 };
    const bodies = Array.from({ length: 64 }, (_, i) => pattern(64, i));
    const big = mpubBody(bodies);
    const data = Buffer.concat([withBody('MPUB t\n', big, 64 * 64), line('NOP\n')]);
    expectAllChunkings(data, [lineEvent('MPUB', ['t']), cmdEvent('MPUB', ['t'], big, 64 * 64), cmdEvent('NOP')], {
      limits,
      pairs: false,
      finalBuffered: 0,
    });
  });

  /** [what, the stream up to and including the offending field, the error frame's text]. */
  const maxCount = Math.floor((LIMITS.maxBodyBytes - 4) / 5);
  const errors: Array<[string, Buffer, string]> = [
    ['count 0', int32(0), 'E_BAD_BODY MPUB invalid message count 0'],
    ['count -1', int32(-1), 'E_BAD_BODY MPUB invalid message count -1'],
    [
      'count over (max-body-size - 4) / 5',
      int32(maxCount + 1),
      `E_BAD_BODY MPUB invalid message count ${maxCount + 1}`,
    ],
    [
      'message(1) of size 0',
      Buffer.concat([int32(3), int32(1), line('a'), int32(0)]),
      'E_BAD_MESSAGE MPUB invalid message(1) body size 0',
    ],
    [
      'message(0) of size -5',
      Buffer.concat([int32(1), int32(-5)]),
      'E_BAD_MESSAGE MPUB invalid message(0) body size -5',
    ],
    [
      'message over max-msg-size',
      Buffer.concat([int32(2), int32(LIMITS.maxMsgBytes + 1)]),
      `E_BAD_MESSAGE MPUB message too big ${LIMITS.maxMsgBytes + 1} > ${LIMITS.maxMsgBytes}`,
    ],
    [
      'messages adding up past max-body-size (the nsq-ts bound)',
      Buffer.concat([
        int32(5),
        ...[0, 1, 2, 3].flatMap((i) => [int32(LIMITS.maxMsgBytes), pattern(LIMITS.maxMsgBytes, i)]),
        int32(1),
      ]),
      `E_BAD_BODY MPUB body too big ${4 * LIMITS.maxMsgBytes + 1} > ${LIMITS.maxBodyBytes}`,
    ],
  ];

  for (const [what, stream, text] of errors) {
    it(`${what}: ${text}, as soon as the field is in`, () => {
      const head = Buffer.concat([line('MPUB t\n'), int32(LIMITS.maxBodyBytes)]);
      const expected = [lineEvent('MPUB', ['t']), mpubError(['t'], LIMITS.maxBodyBytes, text)];
      // Nothing follows the field: the error must not wait for the bytes the size field promised.
      expectAllChunkings(Buffer.concat([head, stream]), expected, { pairs: false, finalBuffered: 0 });
      // Whatever follows is never decoded.
      expectAllChunkings(Buffer.concat([head, stream, line('xyzNOP\n')]), expected, { pairs: false, finalBuffered: 0 });
    });
  }

  it("nsqd's defaults: a first message of 1,048,577 bytes is refused at its length field", () => {
    const data = Buffer.concat([line('MPUB t\n'), int32(1_048_581 + 8), int32(1), int32(1_048_577)]);
    const { events, finalBuffered } = run([data], { limits: NSQD_LIMITS });
    expect(events).toEqual([
      lineEvent('MPUB', ['t']),
      mpubError(['t'], 1_048_589, 'E_BAD_MESSAGE MPUB message too big 1048577 > 1048576'),
    ]);
    expect(finalBuffered).toBe(0);
  });

  it('the size field is still checked first (nsqd: <= 0, then over --max-body-size)', () => {
    const { events } = run([Buffer.concat([line('MPUB t\n'), int32(0), body])]);
    expect(events).toEqual([lineEvent('MPUB', ['t']), cmdEvent('MPUB', ['t'], null, 0)]);
  });

  it('the messages object is reused: its positions belong to the MPUB being handled', () => {
    const seen: string[][] = [];
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(
      Buffer.concat([withBody('MPUB t\n', mpubBody(['a', 'bb'])), withBody('MPUB t\n', mpubBody(['ccc']))]),
      {
        onBodyCommandLine: () => true,
        onCommand: (cmd) => {
          seen.push(located(cmd) ?? []);
          return true;
        },
        onLineTooLong: () => undefined,
      },
    );
    expect(seen).toEqual([
      [Buffer.from('a').toString('hex'), Buffer.from('bb').toString('hex')],
      [Buffer.from('ccc').toString('hex')],
    ]);
  });
});

describe('CommandDecoder: stopping and takeRemainder', () => {
  it('onBodyCommandLine returning false stops before the size; takeRemainder() returns the rest', () => {
    const rest = Buffer.concat([int32(4), Buffer.from('body'), line('NOP\n'), line('RDY 1\n')]);
    const data = Buffer.concat([line('NOP\n'), line('PUB bad!topic\n'), rest]);
    expectAllChunkings(data, [cmdEvent('NOP'), lineEvent('PUB', ['bad!topic'])], {
      onBodyCommandLine: () => false,
      remainder: rest,
    });
  });

  it('onCommand returning false stops decoding; takeRemainder() returns the rest (e.g. a TLS ClientHello)', () => {
    const tls = Buffer.from('160301020001fc0303deadbeef0a0d0a4e4f500a', 'hex');
    const data = Buffer.concat([withBody('IDENTIFY\n', '{"tls_v1":true}'), tls]);
    expectAllChunkings(data, bodyEvents('IDENTIFY', [], '{"tls_v1":true}'), {
      onCommand: () => false,
      remainder: tls,
    });
  });

  it('onCommand returning false on a non-body command stops right after its line', () => {
    const data = line('NOP\nRDY 1\nCLS\n');
    expectAllChunkings(data, [cmdEvent('NOP')], { onCommand: () => false, remainder: line('RDY 1\nCLS\n') });
  });

  it('takeRemainder() is empty when everything was decoded', () => {
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(line('NOP\n'), { onBodyCommandLine: () => true, onCommand: () => true, onLineTooLong: () => {} });
    expect(decoder.takeRemainder()).toEqual(Buffer.alloc(0));
  });

  it('push() of an empty chunk resumes decoding after a stop', () => {
    const decoder = new CommandDecoder(LIMITS);
    const events: string[] = [];
    let allow = false;
    const handler: CommandHandler = {
      onBodyCommandLine: (cmd) => {
        events.push(`line ${cmd.name}`);
        return allow;
      },
      onCommand: (cmd) => {
        events.push(`cmd ${cmd.name}${cmd.body ? ` ${cmd.body.toString()}` : ''}`);
        return true;
      },
      onLineTooLong: () => events.push('too-long'),
    };
    decoder.push(Buffer.concat([withBody('PUB t\n', 'abc'), line('NOP\n')]), handler);
    expect(events).toEqual(['line PUB']);
    allow = true;
    decoder.push(Buffer.alloc(0), handler);
    expect(events).toEqual(['line PUB', 'cmd PUB abc', 'cmd NOP']);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('a stop in the middle of one chunk keeps the rest and continues with the next chunk', () => {
    const decoder = new CommandDecoder(LIMITS);
    const events: string[] = [];
    let stops = 1;
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        events.push(cmd.name);
        return stops-- <= 0;
      },
      onLineTooLong: () => events.push('too-long'),
    };
    decoder.push(line('NOP\nRDY 2\nCL'), handler);
    expect(events).toEqual(['NOP']);
    decoder.push(line('S\n'), handler);
    expect(events).toEqual(['NOP', 'RDY', 'CLS']);
  });

  it('halt() stops decoding for good and drops what is buffered', () => {
    const decoder = new CommandDecoder(LIMITS);
    const events: string[] = [];
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        events.push(cmd.name);
        return true;
      },
      onLineTooLong: () => events.push('too-long'),
    };
    decoder.push(line('NOP\nRD'), handler);
    expect(decoder.bufferedBytes).toBe(2);
    decoder.halt();
    expect(decoder.bufferedBytes).toBe(0);
    decoder.push(line('Y 1\nNOP\n'), handler);
    expect(events).toEqual(['NOP']);
  });
});

describe('CommandDecoder: line length limit', () => {
  it('MAX_LINE_BYTES is 16 KiB', () => {
    expect(MAX_LINE_BYTES).toBe(16 * 1024);
  });

  it('a line over 16 KiB without a newline -> onLineTooLong, halted, nothing buffered', () => {
    const data = Buffer.concat([line('NOP\n'), Buffer.alloc(MAX_LINE_BYTES + 64, 'A')]);
    expectAllChunkings(data, [cmdEvent('NOP'), { kind: 'too-long' }], { pairs: false, finalBuffered: 0 });
  });

  it('a line over 16 KiB that does end in a newline -> onLineTooLong', () => {
    const data = Buffer.concat([line('PUB '), Buffer.alloc(MAX_LINE_BYTES + 10, 'a'), line('\n'), line('NOP\n')]);
    expectAllChunkings(data, [{ kind: 'too-long' }], { pairs: false, finalBuffered: 0 });
  });

  it('bufferedBytes never exceeds the line limit while a long line arrives byte by byte', () => {
    const decoder = new CommandDecoder(LIMITS);
    let tooLong = 0;
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: () => true,
      onLineTooLong: () => {
        tooLong++;
      },
    };
    let max = 0;
    for (let i = 0; i < MAX_LINE_BYTES + 100; i++) {
      decoder.push(Buffer.from('x'), handler);
      max = Math.max(max, decoder.bufferedBytes);
    }
    expect(tooLong).toBe(1);
    expect(max).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('after onLineTooLong, later input is ignored', () => {
    const decoder = new CommandDecoder(LIMITS);
    const events: string[] = [];
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        events.push(cmd.name);
        return true;
      },
      onLineTooLong: () => events.push('too-long'),
    };
    decoder.push(Buffer.alloc(MAX_LINE_BYTES + 1, 'A'), handler);
    decoder.push(line('\nNOP\n'), handler);
    expect(events).toEqual(['too-long']);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('a long line that fits is decoded, in every chunking', () => {
    const param = 'p'.repeat(MAX_LINE_BYTES - 'SUB  c'.length - 1);
    const data = line(`SUB ${param} c\n`);
    expect(data.length).toBe(MAX_LINE_BYTES); // 16383 bytes of line + '\n'
    expectAllChunkings(data, [cmdEvent('SUB', [param, 'c'])], { pairs: false, finalBuffered: 0 });
  });

  // nsqd reads a line with bufio.Reader.ReadSlice('\n') on a 16 KiB buffer: the line INCLUDING
  // its '\n' must fit in 16384 bytes, else ErrBufferFull drops the connection.
  it('nsqd boundary: 16384 bytes before the newline is already too long', () => {
    const data = Buffer.concat([Buffer.alloc(MAX_LINE_BYTES, 'A'), line('\nNOP\n')]);
    expectAllChunkings(data, [{ kind: 'too-long' }], { pairs: false, finalBuffered: 0 });
  });

  it('nsqd boundary: 16384 buffered bytes without a newline are already too long', () => {
    const { events } = run([Buffer.alloc(MAX_LINE_BYTES, 'A')]);
    expect(summarize(events)).toEqual([{ kind: 'too-long' }]);
  });
});

describe('CommandDecoder: the FIN fast path', () => {
  /** Records onFin calls as their ID text, and every other command as the general handler sees it. */
  function finRecorder(): { handler: CommandHandler; fins: string[]; commands: Command[] } {
    const fins: string[] = [];
    const commands: Command[] = [];
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        commands.push(cmd);
        return true;
      },
      onLineTooLong: () => undefined,
      onFin: (buf, at) => {
        fins.push(buf.toString('latin1', at, at + 16));
        return true;
      },
    };
    return { handler, fins, commands };
  }

  it('hands `FIN <16 bytes>` (LF or CRLF) to onFin, in order with other commands, at any chunking', () => {
    const input = line('FIN 0123456789abcdef\nRDY 5\nFIN fedcba9876543210\r\nNOP\n');
    for (const { chunks } of chunkings(input)) {
      const { handler, fins, commands } = finRecorder();
      const decoder = new CommandDecoder(LIMITS);
      for (const c of chunks) decoder.push(c, handler);
      expect(fins).toEqual(['0123456789abcdef', 'fedcba9876543210']);
      expect(commands.map((c) => c.name)).toEqual(['RDY', 'NOP']);
    }
  });

  it('any other FIN line takes the general path, so its errors stay those of nsqd', () => {
    const { handler, fins, commands } = finRecorder();
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(line('FIN 0123456 89abcdef\nFIN 0123\nFIN 0123456789abcdef0\nFIN\n'), handler);
    expect(fins).toEqual([]);
    expect(commands.map((c) => c.params)).toEqual([['0123456', '89abcdef'], ['0123'], ['0123456789abcdef0'], []]);
  });

  it('without onFin, FIN is a general command; finCommand builds the same one', () => {
    const { handler, commands } = finRecorder();
    delete handler.onFin;
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(line('FIN 0123456789abcdef\n'), handler);
    const buf = line('xxFIN 0123456789abcdef');
    expect(commands).toEqual([finCommand(buf, 6)]);
  });

  it('onFin returning false stops decoding until the next push', () => {
    const seen: string[] = [];
    const handler: CommandHandler = {
      onBodyCommandLine: () => true,
      onCommand: (cmd) => {
        seen.push(cmd.name);
        return true;
      },
      onLineTooLong: () => undefined,
      onFin: () => {
        seen.push('fast FIN');
        return false;
      },
    };
    const decoder = new CommandDecoder(LIMITS);
    decoder.push(line('FIN 0123456789abcdef\nNOP\n'), handler);
    expect(seen).toEqual(['fast FIN']);
    decoder.push(Buffer.alloc(0), handler);
    expect(seen).toEqual(['fast FIN', 'NOP']);
  });
});

describe('CommandDecoder: memory held for a command cut short (issue 21)', () => {
  const KiB = 1024;
  const handler: CommandHandler = { onBodyCommandLine: () => true, onCommand: () => true, onLineTooLong: () => {} };
  const nops = (bytes: number): Buffer => Buffer.from('NOP\n'.repeat(bytes / 4), 'latin1');

  it('a stalled PUB or MPUB holds what arrived, not the size it announced', () => {
    const pub = new CommandDecoder(NSQD_LIMITS);
    pub.push(Buffer.concat([line('PUB t\n'), int32(NSQD_LIMITS.maxMsgBytes), pattern(10 * KiB)]), handler);
    expect(pub.bufferedBytes).toBe(10 * KiB);
    expect(pub.retainedBytes).toBeLessThanOrEqual(16 * KiB);
    const mpub = new CommandDecoder(NSQD_LIMITS);
    const head = Buffer.concat([line('MPUB t\n'), int32(NSQD_LIMITS.maxBodyBytes), int32(100), int32(1024 * KiB)]);
    mpub.push(Buffer.concat([head, pattern(10 * KiB)]), handler);
    expect(mpub.retainedBytes).toBeLessThanOrEqual(16 * KiB);
  });

  it('a line or a body started at the end of a 64 KiB chunk does not keep the chunk alive', () => {
    const lineDecoder = new CommandDecoder(NSQD_LIMITS);
    lineDecoder.push(Buffer.concat([nops(64 * KiB - 8), line('PUB t')]), handler);
    expect(lineDecoder.bufferedBytes).toBe(5);
    expect(lineDecoder.retainedBytes).toBeLessThan(KiB);
    const bodyDecoder = new CommandDecoder(NSQD_LIMITS);
    bodyDecoder.push(Buffer.concat([nops(60 * KiB), line('PUB t\n'), int32(1000), pattern(100)]), handler);
    expect(bodyDecoder.bufferedBytes).toBe(100);
    expect(bodyDecoder.retainedBytes).toBeLessThanOrEqual(4 * KiB);
  });

  it('a body dribbled byte by byte is gathered in blocks, and halt() lets it all go', () => {
    const decoder = new CommandDecoder(NSQD_LIMITS);
    decoder.push(Buffer.concat([line('PUB t\n'), int32(NSQD_LIMITS.maxMsgBytes)]), handler);
    const bytes = pattern(20_000);
    for (let i = 0; i < bytes.length; i++) decoder.push(copy(bytes, i, i + 1), handler);
    expect(decoder.bufferedBytes).toBe(20_000);
    expect(decoder.retainedBytes).toBeLessThanOrEqual(24 * KiB);
    decoder.halt();
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.retainedBytes).toBe(0);
  });
});
