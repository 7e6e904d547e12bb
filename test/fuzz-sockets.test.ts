/**
 * Garbage over real sockets (issue 10, "Bad input"): random bytes, mutated commands, truncated
 * frames, huge announced sizes, invalid UTF-8, deeply nested JSON, 10,000 parameters on a line,
 * a deflate bomb — against a real nsqd and a real nsqlookupd. Every connection must get an NSQ
 * error or a close; the daemon keeps serving a normal client between batches; memory (heap and
 * array buffers after a forced GC) stays flat. The seed is logged; replay with FC_SEED=<seed>.
 */
import { connect as connect_ } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deflateRawSync } from 'node:zlib';
import { decodeMessage, encodeCommand, encodeMpubBody, FrameType, MAGIC_V1, MAGIC_V2 } from '@nsq-ts/protocol';
import {
  eventually,
  RawClient,
  RawV1Client,
  startLookupd,
  startNsqd,
  type TestLookupd,
  type TestNsqd,
} from '@nsq-ts/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;
console.log(`socket fuzz: fast-check seed ${SEED} (replay: FC_SEED=${SEED})`);
const MiB = 1024 * 1024;

function forceGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function memory(): { heapUsed: number; arrayBuffers: number } {
  forceGc();
  forceGc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function size(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}

const deepJson = (n: number) => Buffer.from(`{"client_id":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`);
const INVALID_UTF8 = Buffer.from([
  0x7b, 0x22, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x22, 0x3a, 0x22, 0xf0, 0x28, 0x8c, 0xbc, 0x22, 0x7d,
]);

/** Hand-written hostile V2 payloads (after the magic unless stated). */
const V2_CASES: Array<[string, Buffer]> = [
  ['no magic', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['PUB with 2 GiB announced', Buffer.concat([MAGIC_V2, Buffer.from('PUB t\n'), size(0x7fffffff), Buffer.from('abc')])],
  ['PUB with negative size', Buffer.concat([MAGIC_V2, Buffer.from('PUB t\n'), size(-1)])],
  ['MPUB with huge count', Buffer.concat([MAGIC_V2, Buffer.from('MPUB t\n'), size(8), size(0x7fffffff), size(1)])],
  // Incomplete, not invalid: the read deadline (2 × the 1 s heartbeat) closes it.
  [
    'MPUB truncated',
    Buffer.concat([
      MAGIC_V2,
      encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000 })),
      encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('abcdef')])).subarray(0, 20),
    ]),
  ],
  // Go's JSON decoder (and ours) reads invalid UTF-8 in strings as U+FFFD: this IDENTIFY is
  // accepted, and the idle connection is then closed by the read deadline.
  [
    'IDENTIFY invalid UTF-8',
    Buffer.concat([
      MAGIC_V2,
      encodeCommand(
        'IDENTIFY',
        [],
        Buffer.concat([Buffer.from('{"heartbeat_interval":1000,'), INVALID_UTF8.subarray(1)]),
      ),
    ]),
  ],
  ['IDENTIFY 100k-deep JSON', Buffer.concat([MAGIC_V2, encodeCommand('IDENTIFY', [], deepJson(100_000))])],
  [
    'IDENTIFY 1M-deep arrays',
    Buffer.concat([MAGIC_V2, encodeCommand('IDENTIFY', [], `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`)]),
  ],
  ['IDENTIFY body over --max-body-size', Buffer.concat([MAGIC_V2, Buffer.from('IDENTIFY\n'), size(6 * MiB)])],
  ['10,000 parameters', Buffer.concat([MAGIC_V2, Buffer.from(`SUB${' x'.repeat(10_000)}\n`)])],
  ['10,000 empty parameters', Buffer.concat([MAGIC_V2, Buffer.from(`FIN${' '.repeat(10_000)}\n`)])],
  ['line without end', Buffer.concat([MAGIC_V2, Buffer.alloc(64 * 1024, 0x41)])],
  [
    'invalid UTF-8 names',
    Buffer.concat([MAGIC_V2, Buffer.from('SUB '), Buffer.from([0xff, 0xfe, 0x20, 0xc0, 0x80]), Buffer.from('\n')]),
  ],
];

/** Cases the server ends by its read deadline (2 × a 1 s heartbeat), not at once. */
const SLOW_CASES = new Set(['MPUB truncated', 'IDENTIFY invalid UTF-8']);

/** Negotiates deflate, then sends 64 MiB of 'A' (no newline) deflated to ~64 KiB. */
function deflateBomb(): Buffer {
  return Buffer.concat([
    MAGIC_V2,
    encodeCommand('IDENTIFY', [], JSON.stringify({ feature_negotiation: true, deflate: true })),
    deflateRawSync(Buffer.alloc(64 * MiB, 0x41), { level: 9 }),
  ]);
}

const V1_CASES: Array<[string, Buffer]> = [
  ['no magic', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
  ['IDENTIFY with 2 GiB announced', Buffer.concat([MAGIC_V1, Buffer.from('IDENTIFY\n'), size(0x7fffffff)])],
  ['IDENTIFY negative size', Buffer.concat([MAGIC_V1, Buffer.from('IDENTIFY\n'), size(-5)])],
  ['IDENTIFY invalid UTF-8', Buffer.concat([MAGIC_V1, encodeCommand('IDENTIFY', [], INVALID_UTF8)])],
  ['IDENTIFY 100k-deep JSON', Buffer.concat([MAGIC_V1, encodeCommand('IDENTIFY', [], deepJson(100_000))])],
  ['10,000 parameters', Buffer.concat([MAGIC_V1, Buffer.from(`REGISTER${' x'.repeat(10_000)}\n`)])],
  ['10,000 empty parameters', Buffer.concat([MAGIC_V1, Buffer.from(`REGISTER${' '.repeat(10_000)}\n`)])],
  ['line without end', Buffer.concat([MAGIC_V1, Buffer.alloc(64 * 1024, 0x41)])],
  ['REGISTER before IDENTIFY', Buffer.concat([MAGIC_V1, Buffer.from('REGISTER t c\n')])],
];

/** Random payloads: raw bytes, or the magic followed by mutated commands. */
function randomPayloads(magic: Buffer, commands: Buffer[], count: number, seed: number): Buffer[] {
  const mutated = fc
    .tuple(
      fc.array(fc.constantFrom(...commands), { minLength: 1, maxLength: 5 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
    )
    .map(([parts, flips, cut]) => {
      const data = Buffer.concat(parts);
      for (const [at, value] of flips) data[at % data.length] = value;
      return Buffer.concat([magic, data.subarray(0, 1 + (cut % data.length))]);
    });
  const payload = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((a) => Buffer.from(a)),
    fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((a) => Buffer.concat([magic, a])),
    mutated,
  );
  return fc.sample(payload, { numRuns: count, seed });
}

type Outcome = 'error' | 'closed' | 'closed after our FIN';

/**
 * Sends `payload` on a fresh connection; waits for an error reply or a close. Input that is
 * merely incomplete gets neither, so after `quietMs` the client half-closes and the server
 * must then close.
 */
async function attack(
  connect: () => Promise<RawClient | RawV1Client>,
  payload: Buffer,
  isError: (c: RawClient | RawV1Client) => boolean,
  quietMs: number,
): Promise<Outcome> {
  const c = await connect();
  try {
    c.socket.write(payload);
    const deadline = Date.now() + quietMs;
    while (Date.now() < deadline) {
      if (isError(c)) return 'error';
      if (c.closed) return 'closed';
      await new Promise((r) => setTimeout(r, 10));
    }
    c.socket.end();
    await c.waitClosed(5_000);
    return isError(c) ? 'error' : 'closed after our FIN';
  } finally {
    c.close();
  }
}

function v2IsError(c: RawClient | RawV1Client): boolean {
  return (c as RawClient).pending().some((f) => f.type === FrameType.Error);
}

function v1IsError(c: RawClient | RawV1Client): boolean {
  return (c as RawV1Client).pending().some((r) => r.toString('latin1').startsWith('E_'));
}

async function runBatches<T>(items: T[], width: number, run: (item: T) => Promise<void>, between: () => Promise<void>) {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map(run));
    await between();
  }
}

describe('socket fuzz: nsqd', () => {
  let d: TestNsqd;
  beforeAll(async () => {
    d = await startNsqd({ logLevel: 'fatal' });
  });
  afterAll(async () => {
    await d.close();
  });

  /** A normal producer and consumer round trip. */
  async function normalClientWorks(): Promise<void> {
    const c = await RawClient.connect(d.tcpAddress);
    try {
      c.write('SUB normal ch\nRDY 1\n');
      expect((await c.readFrame()).data.toString()).toBe('OK');
      c.write(encodeCommand('PUB', ['normal'], 'still here'));
      let frame = await c.readFrame();
      if (frame.type === FrameType.Response) frame = await c.readFrame();
      expect(frame.type).toBe(FrameType.Message);
      c.write(`FIN ${decodeMessage(frame.data).id}\n`);
    } finally {
      c.close();
    }
  }

  it('answers every hostile connection with an error or a close, keeps serving, memory flat', async () => {
    const connect = () => RawClient.connect(d.tcpAddress, { magic: false });
    const commands = [
      encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000, client_id: 'x' })),
      encodeCommand('PUB', ['fuzz'], 'hello'),
      encodeCommand('MPUB', ['fuzz'], encodeMpubBody([Buffer.from('a'), Buffer.from('bc')])),
      encodeCommand('DPUB', ['fuzz', '100'], 'later'),
      encodeCommand('SUB', ['fuzz', 'ch']),
      encodeCommand('RDY', ['10']),
      encodeCommand('FIN', ['0123456789abcdef']),
      encodeCommand('NOP'),
    ];
    const outcomes = new Map<string, number>();
    const count = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    let bytes = 0;

    // Warm-up: one round of everything, so the measurement sees steady state.
    for (const [name, payload] of V2_CASES) {
      if (!SLOW_CASES.has(name)) await attack(connect, payload, v2IsError, 300);
    }
    await normalClientWorks();
    const before = memory();

    for (const [name, payload] of V2_CASES) {
      const outcome = await attack(connect, payload, v2IsError, SLOW_CASES.has(name) ? 3_000 : 1_000);
      bytes += payload.length;
      count(outcome);
      // Each of these is an NSQ error or a close of the server's own accord.
      expect(outcome, name).not.toBe('closed after our FIN');
    }
    // The replies after the upgrade are deflated: a bare socket, not a frame decoder, takes them.
    const bomb = deflateBomb();
    const [host, port] = d.tcpAddress.split(':') as [string, string];
    const bare = connect_({ host, port: Number(port) });
    bare.on('error', () => undefined);
    bare.on('data', () => undefined);
    const closed = new Promise<void>((resolve) => bare.on('close', () => resolve()));
    bare.write(bomb);
    await eventually(() => closed, { timeoutMs: 10_000 });
    count('closed');
    bytes += bomb.length;
    await normalClientWorks();

    const random = randomPayloads(MAGIC_V2, commands, 400, SEED);
    await runBatches(
      random,
      25,
      async (payload) => {
        bytes += payload.length;
        count(await attack(connect, payload, v2IsError, 200));
      },
      normalClientWorks,
    );
    const after = memory();
    console.log(
      `nsqd fuzz: ${V2_CASES.length + 1 + random.length} connections, ${(bytes / MiB).toFixed(1)} MiB of garbage, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; heapUsed ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, arrayBuffers ${(before.arrayBuffers / MiB).toFixed(1)} → ${(after.arrayBuffers / MiB).toFixed(1)} MiB`,
    );
    await normalClientWorks();
    await eventually(() => expect(d.nsqd.clients.size).toBe(0));
    expect(after.heapUsed - before.heapUsed).toBeLessThan(16 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * MiB);
  });
});

describe('socket fuzz: nsqlookupd', () => {
  let l: TestLookupd;
  beforeAll(async () => {
    l = await startLookupd();
  });
  afterAll(async () => {
    await l.close();
  });

  async function normalPeerWorks(): Promise<void> {
    const c = await RawV1Client.connect(l.tcpAddress);
    try {
      c.write('PING\n');
      expect(await c.readText()).toBe('OK');
    } finally {
      c.close();
    }
  }

  it('answers every hostile connection with an error or a close, keeps serving, memory flat', async () => {
    const connect = () => RawV1Client.connect(l.tcpAddress, { magic: false });
    const identify = encodeCommand(
      'IDENTIFY',
      [],
      JSON.stringify({ broadcast_address: 'h', hostname: 'h', tcp_port: 1, http_port: 2, version: '1.3.0' }),
    );
    const commands = [identify, Buffer.from('REGISTER t c\n'), Buffer.from('UNREGISTER t\n'), Buffer.from('PING\n')];
    const outcomes = new Map<string, number>();
    const count = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    let bytes = 0;

    for (const [, payload] of V1_CASES) await attack(connect, payload, v1IsError, 300);
    await normalPeerWorks();
    const before = memory();
    for (const [name, payload] of V1_CASES) {
      const outcome = await attack(connect, payload, v1IsError, 1_000);
      bytes += payload.length;
      count(outcome);
      expect(outcome, name).not.toBe('closed after our FIN');
    }
    const random = randomPayloads(MAGIC_V1, commands, 400, SEED + 1);
    await runBatches(
      random,
      25,
      async (payload) => {
        bytes += payload.length;
        count(await attack(connect, payload, v1IsError, 200));
      },
      normalPeerWorks,
    );
    const after = memory();
    console.log(
      `lookupd fuzz: ${V1_CASES.length + random.length} connections, ${(bytes / MiB).toFixed(1)} MiB of garbage, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; heapUsed ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, arrayBuffers ${(before.arrayBuffers / MiB).toFixed(1)} → ${(after.arrayBuffers / MiB).toFixed(1)} MiB`,
    );
    await normalPeerWorks();
    expect(after.heapUsed - before.heapUsed).toBeLessThan(16 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * MiB);
  });
});
