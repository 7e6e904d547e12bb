/**
 * Clients that attack nsqd rather than use it (issue 10, "Hostile clients"): a consumer that
 * never reads, slowloris on TCP, a flood of connections against --max-connections, RDY abuse
 * and FIN storms. Each test checks the attacker is contained and that normal clients keep
 * being served.
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeMessage, encodeCommand, encodeMpubBody, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, type RawFrame, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.test-util.js';
import type { NsqdOptions } from '../options.js';
import type { ClientV2 } from './client-v2.js';
import { MAX_PENDING_WRITE_BYTES } from './frame-writer.js';

let daemon: TestNsqd | null = null;
const clients: RawClient[] = [];

async function nsqd(options: Partial<NsqdOptions> = {}, clock?: ManualClock): Promise<TestNsqd> {
  daemon = await startNsqd({ logLevel: 'fatal', ...options }, clock);
  return daemon;
}

async function client(d: TestNsqd): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await daemon?.close();
  daemon = null;
});

function text(frame: RawFrame): string {
  return frame.data.toString('latin1');
}

async function subscribe(d: TestNsqd, topic: string, channel: string, identify?: object): Promise<RawClient> {
  const c = await client(d);
  if (identify !== undefined) {
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify(identify)));
    await c.readFrame();
  }
  c.write(`SUB ${topic} ${channel}\n`);
  expect(text(await c.readFrame())).toBe('OK');
  return c;
}

/** The broker's side of the newest connection. */
function newestServerClient(d: TestNsqd): ClientV2 {
  return [...d.nsqd.clients].at(-1) as ClientV2;
}

/** A forced full GC (the flag can be set at run time; `gc` is then reachable from a new context). */
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

const MiB = 1024 * 1024;

describe('a consumer that never reads', () => {
  it('is capped at MAX_PENDING_WRITE_BYTES, then disconnected by the write deadline; others keep getting messages', async () => {
    const d = await nsqd();
    const slow = await subscribe(d, 't', 'slow', { heartbeat_interval: 1000 });
    const slowServer = newestServerClient(d);
    slow.socket.pause(); // never reads again
    slow.write('RDY 2500\n');
    const fast = await subscribe(d, 't', 'fast');
    fast.write('RDY 2500\n');

    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, slowServer.socket.writableLength);
    }, 2);
    const body = randomBytes(32 * 1024);
    const total = 1500; // 48 MiB through a consumer that reads nothing
    const pub = await client(d);
    for (let sent = 0; sent < total; sent += 100) {
      pub.write(encodeCommand('MPUB', ['t'], encodeMpubBody(Array.from({ length: 100 }, () => body))));
    }
    let received = 0;
    while (received < total) {
      const frame = await fast.readFrame({ timeoutMs: 10_000 });
      if (frame.type !== FrameType.Message) continue;
      fast.write(`FIN ${decodeMessage(frame.data).id}\n`);
      received++;
    }
    expect(received).toBe(total);
    // Disconnected: gone from the broker's clients within ~ the heartbeat interval.
    await eventually(() => expect(d.nsqd.clients.has(slowServer)).toBe(false), { timeoutMs: 5_000 });
    clearInterval(sampler);
    console.log(
      `slow consumer: max unsent bytes held by nsqd ${(maxPending / MiB).toFixed(2)} MiB (cap ${MAX_PENDING_WRITE_BYTES / MiB} MiB) for ${(total * body.length) / MiB} MiB published`,
    );
    // One message (plus a heartbeat) may land past the cap before deliveries stop.
    expect(maxPending).toBeLessThanOrEqual(MAX_PENDING_WRITE_BYTES + 64 * 1024);
    slow.socket.resume();
    await slow.waitClosed(5_000);
  });

  it('a publisher pipelining while its MPUBs wait for the disk: input held by nsqd stays bounded', async () => {
    const d = await nsqd({ memQueueSize: 0, syncEvery: 1 });
    const pub = await client(d);
    const server = newestServerClient(d) as unknown as { parkedBytes: number };
    const batch = encodeCommand(
      'MPUB',
      ['durable'],
      encodeMpubBody(Array.from({ length: 200 }, () => randomBytes(200))),
    );
    const count = 1000; // ~41 MB sent at once, each MPUB answered only after its fsync
    let maxParked = 0;
    const sampler = setInterval(() => {
      maxParked = Math.max(maxParked, server.parkedBytes);
    }, 1);
    for (let i = 0; i < count; i++) pub.write(batch);
    await eventually(() => expect(pub.received.reduce((n, c) => n + c.length, 0)).toBe(count * 10), {
      timeoutMs: 60_000,
    });
    clearInterval(sampler);
    console.log(`durable pipelined MPUBs: max input parked by nsqd ${(maxParked / 1024).toFixed(0)} KiB`);
    // The cap plus the chunk that crossed it (a socket read is at most 64 KiB).
    expect(maxParked).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
    expect(maxParked).toBeGreaterThan(0);
  });

  it('a publisher that never reads its OKs has its input paused, not its output grown', async () => {
    const d = await nsqd();
    const pub = await client(d);
    const server = newestServerClient(d);
    pub.socket.pause();
    // 200,000 FINs for unknown IDs on an unsubscribed connection would each get a fatal error;
    // use NOPs with PUBs: each PUB produces an OK the client never reads.
    const pubs = Buffer.concat(Array.from({ length: 2000 }, () => encodeCommand('PUB', ['t'], 'x')));
    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, server.socket.writableLength);
    }, 2);
    for (let i = 0; i < 200; i++) pub.write(pubs); // 400,000 PUBs → 4 MiB of OK frames
    await eventually(() => expect(server.socket.writableLength).toBeGreaterThan(0), { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(sampler);
    expect(maxPending).toBeLessThanOrEqual(MAX_PENDING_WRITE_BYTES + 64 * 1024);
    // Reading again drains it and everything is answered.
    pub.socket.resume();
    await eventually(() => expect(pub.received.reduce((n, c) => n + c.length, 0)).toBe(400_000 * 10), {
      timeoutMs: 20_000,
    });
  });
});

describe('slowloris', () => {
  it('TCP: a command dribbled byte by byte is cut off by the read deadline (2 × heartbeat)', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000 })));
    expect(text(await c.readFrame())).toBe('OK');
    const line = `PUB ${'t'.repeat(60)}\n`;
    const start = Date.now();
    let sent = 0;
    // One byte every 250 ms: each byte is well within the deadline, the command is not.
    const dribble = setInterval(() => {
      if (c.closed || sent >= line.length) return;
      c.write(line[sent++] as string);
    }, 250);
    try {
      await c.waitClosed(6_000);
    } finally {
      clearInterval(dribble);
    }
    const elapsed = Date.now() - start;
    expect(sent).toBeLessThan(line.length);
    expect(elapsed).toBeGreaterThanOrEqual(1_900);
    expect(elapsed).toBeLessThan(4_000);
    // The daemon still serves others.
    const other = await client(d);
    other.write(encodeCommand('PUB', ['t'], 'hello'));
    expect(text(await other.readFrame())).toBe('OK');
  });

  it('TCP: a client that sends whole commands in time stays connected', async () => {
    const clock = new ManualClock();
    const d = await nsqd({}, clock);
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000 })));
    expect(text(await c.readFrame())).toBe('OK');
    // Six steps of 0.7 s: 4.2 s in all, past the 2 s read deadline unless each command renews it.
    for (let i = 0; i < 6; i++) {
      clock.advance(700);
      c.write(encodeCommand('PUB', ['t'], 'x'));
      expect(text(await c.readFrame())).toBe('OK');
    }
    expect(c.closed).toBe(false);
  });
});

describe('--max-connections', () => {
  it('closes connections over the limit at once and admits new ones when a slot frees', async () => {
    const d = await nsqd({ maxConnections: 50 });
    // A flood: 200 connections at once.
    const flood = await Promise.all(Array.from({ length: 200 }, () => client(d)));
    await eventually(() => expect(flood.filter((c) => c.closed).length).toBe(150), { timeoutMs: 5_000 });
    expect(d.nsqd.clients.size).toBe(50);
    expect(d.nsqd.refusedConnections).toBe(150);
    // The 50 admitted ones work.
    const admitted = flood.filter((c) => !c.closed);
    await Promise.all(
      admitted.map(async (c) => {
        c.write(encodeCommand('PUB', ['t'], 'x'));
        expect(text(await c.readFrame())).toBe('OK');
      }),
    );
    expect(admitted.every((c) => !c.closed)).toBe(true);
    // Full: a newcomer is closed.
    const late = await client(d);
    await late.waitClosed(2_000);
    // Free the slots: newcomers are served again.
    for (const c of admitted) c.close();
    await eventually(() => expect(d.nsqd.clients.size).toBe(0), { timeoutMs: 5_000 });
    const normal = await client(d);
    normal.write(encodeCommand('PUB', ['t'], 'hello'));
    expect(text(await normal.readFrame())).toBe('OK');
  });

  it('is unlimited by default', async () => {
    const d = await nsqd();
    const many = await Promise.all(Array.from({ length: 300 }, () => client(d)));
    await eventually(() => expect(d.nsqd.clients.size).toBe(300), { timeoutMs: 5_000 });
    expect(many.some((c) => c.closed)).toBe(false);
  });
});

describe('RDY abuse', () => {
  it('RDY over --max-rdy-count is a fatal E_INVALID', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 2501\n');
    const frame = await c.readFrame();
    expect(frame.type).toBe(FrameType.Error);
    expect(text(frame)).toBe('E_INVALID RDY count 2501 out of range 0-2500');
    await c.waitClosed();
  });

  it('rapid RDY toggling keeps delivery accounting exact: every message once, nothing left in flight', async () => {
    const d = await nsqd();
    const total = 500;
    const pub = await client(d);
    pub.write(
      encodeCommand('MPUB', ['t'], encodeMpubBody(Array.from({ length: total }, (_, i) => Buffer.from(`m${i}`)))),
    );
    const c = await subscribe(d, 't', 'c');
    const server = newestServerClient(d);
    expect(text(await pub.readFrame())).toBe('OK');
    const seen = new Map<string, number>();
    let toggles = 0;
    while (seen.size < total) {
      // A burst of RDY changes, including 0 and the maximum, then one real window.
      const burst: string[] = [];
      for (let i = 0; i < 20; i++) burst.push(`RDY ${[0, 2500, 1, 0, 3][(toggles + i) % 5]}\n`);
      toggles += 20;
      burst.push(`RDY ${1 + (toggles % 7)}\n`);
      c.write(burst.join(''));
      const frame = await c.readFrame({ timeoutMs: 5_000 });
      if (frame.type !== FrameType.Message) continue;
      const msg = decodeMessage(frame.data);
      seen.set(msg.body.toString(), (seen.get(msg.body.toString()) ?? 0) + 1);
      c.write(`FIN ${msg.id}\n`);
    }
    c.write('RDY 0\nNOP\n');
    await eventually(() => {
      expect(server.inFlight).toBe(0);
      expect(server.channel?.inFlightCount).toBe(0);
    });
    expect(seen.size).toBe(total);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(server.inFlight).toBeLessThanOrEqual(server.rdy);
    expect(server.finishCount).toBe(total);
    expect(c.closed).toBe(false);
  });
});

describe('FIN storm', () => {
  it('unknown IDs get non-fatal E_FIN_FAILED; the connection stays usable and memory flat', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    const n = 20_000;
    const storm = (): string => {
      const lines: string[] = [];
      for (let i = 0; i < n; i++) lines.push(`FIN ${randomBytes(8).toString('hex')}\n`);
      return lines.join('');
    };
    // Warm up once (JIT, buffers), then measure a second storm.
    c.write(storm());
    await c.readFrames(n, { timeoutMs: 20_000 });
    const before = memory();
    c.write(storm());
    const frames = await c.readFrames(n, { timeoutMs: 20_000 });
    const after = memory();
    expect(
      frames.every((f) => f.type === FrameType.Error && /^E_FIN_FAILED FIN [0-9a-f]{16} failed/.test(text(f))),
    ).toBe(true);
    expect(c.closed).toBe(false);
    console.log(
      `FIN storm of ${n}: heapUsed ${(before.heapUsed / MiB).toFixed(1)} → ${(after.heapUsed / MiB).toFixed(1)} MiB, arrayBuffers ${(before.arrayBuffers / MiB).toFixed(1)} → ${(after.arrayBuffers / MiB).toFixed(1)} MiB`,
    );
    expect(after.heapUsed - before.heapUsed).toBeLessThan(8 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * MiB);
    // Still a working consumer.
    const pub = await client(d);
    pub.write(encodeCommand('PUB', ['t'], 'after the storm'));
    expect(text(await pub.readFrame())).toBe('OK');
    c.write('RDY 1\n');
    const frame = await c.readFrame();
    expect(frame.type).toBe(FrameType.Message);
    const msg = decodeMessage(frame.data);
    expect(msg.body.toString()).toBe('after the storm');
    c.write(`FIN ${msg.id}\nNOP\n`);
    await eventually(() => expect(newestServerClientFor(d, 'c')?.finishCount).toBe(1));
  });
});

function newestServerClientFor(d: TestNsqd, channel: string): ClientV2 | undefined {
  return [...d.nsqd.clients].find((c) => c.channel?.name === channel);
}

describe('memory per connection (issue 21)', () => {
  it('connections announcing big bodies then stalling hold what they sent, and let it go when they close', async () => {
    const d = await nsqd();
    const sent = 8 * 1024;
    const head = Buffer.concat([Buffer.from('PUB t\n'), Buffer.from([0x00, 0x10, 0x00, 0x00])]); // 1 MiB announced
    const attackers = await Promise.all(Array.from({ length: 50 }, () => client(d)));
    for (const c of attackers) c.write(Buffer.concat([head, randomBytes(sent)]));
    const servers = [...d.nsqd.clients];
    await eventually(() => expect(servers.map((s) => s.decoder.bufferedBytes)).toEqual(servers.map(() => sent)));
    const retained = servers.reduce((n, s) => n + s.decoder.retainedBytes, 0);
    // What arrived plus at most a block per connection, not 50 × 1 MiB.
    expect(retained).toBeLessThanOrEqual(servers.length * (sent + 8 * 1024));
    for (const c of attackers) c.socket.end();
    const replies = await Promise.all(attackers.map((c) => c.readFrame()));
    expect(replies.map(text)).toEqual(attackers.map(() => 'E_BAD_MESSAGE PUB failed to read message body'));
    await eventually(() => expect(d.nsqd.clients.size).toBe(0));
    expect(servers.map((s) => s.decoder.retainedBytes + s.writer.slabBytes)).toEqual(servers.map(() => 0));
  });

  it('an idle consumer gives its output slab back at a heartbeat, and gets one again for the next message', async () => {
    const clock = new ManualClock();
    const d = await nsqd({}, clock);
    const c = await subscribe(d, 't', 'c', { heartbeat_interval: 1000 });
    const server = newestServerClient(d);
    const receive = async (): Promise<void> => {
      const pub = await client(d);
      pub.write(encodeCommand('PUB', ['t'], 'hello'));
      expect(text(await pub.readFrame())).toBe('OK');
      c.write('RDY 1\n');
      const frame = await c.readFrame();
      expect(frame.type).toBe(FrameType.Message);
      c.write(`FIN ${decodeMessage(frame.data).id}\n`);
    };
    await receive();
    expect(server.writer.slabBytes).toBeGreaterThan(0);
    // The first heartbeat follows a delivery: the slab stays; after an interval with none it goes.
    clock.advance(1000);
    expect(text(await c.readFrame({ heartbeats: true }))).toBe('_heartbeat_');
    expect(server.writer.slabBytes).toBeGreaterThan(0);
    // A command with a reply renews the read deadline (two silent intervals would close it).
    c.write('FIN 0000000000000000\n');
    expect(text(await c.readFrame())).toMatch(/^E_FIN_FAILED/);
    clock.advance(1000);
    expect(text(await c.readFrame({ heartbeats: true }))).toBe('_heartbeat_');
    expect(server.writer.slabBytes).toBe(0);
    await receive();
    expect(server.writer.slabBytes).toBeGreaterThan(0);
  });
});
