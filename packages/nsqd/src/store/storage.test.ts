import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeMessage, encodeCommand, encodeMpubBody, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, type RawFrame } from '@nsq-ts/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Clock, systemClock } from '../clock.js';
import { ManualClock } from '../clock.test-util.js';
import type { FileSystem } from '../log/file-system.js';
import { FaultyFileSystem } from '../log/file-system.test-util.js';
import { Decoded, decodeAt, recordSizeAt } from '../log/record-codec.js';
import { Nsqd } from '../nsqd.js';
import type { NsqdOptions } from '../options.js';
import { diskQueue, msg, nsqdDat } from './nsq-fixtures.test-util.js';
import { StateStore } from './state-store.js';

/** An in-process nsqd on the test's data path, with the test's clock and file system. */
interface Broker {
  nsqd: Nsqd;
  tcpAddress: string;
  httpAddress: string;
}

let dataPath = '';
let daemon: Broker | null = null;
const clients: RawClient[] = [];

beforeEach(async () => {
  dataPath = await mkdtemp(join(tmpdir(), 'nsqd-storage-'));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await daemon?.nsqd.close();
  daemon = null;
  await rm(dataPath, { recursive: true, force: true });
});

function broker(options: Partial<NsqdOptions>, clock: Clock, fs?: FileSystem): Nsqd {
  const base: Partial<NsqdOptions> = { tcpAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logLevel: 'warn' };
  return new Nsqd({ ...base, dataPath, ...options }, clock, fs);
}

/** (Re)starts the nsqd on the test's data path. */
async function restart(
  options: Partial<NsqdOptions> = {},
  clock: Clock = systemClock,
  fs?: FileSystem,
): Promise<Broker> {
  for (const c of clients.splice(0)) c.close();
  await daemon?.nsqd.close();
  daemon = null;
  const nsqd = broker(options, clock, fs);
  await nsqd.start();
  daemon = { nsqd, tcpAddress: nsqd.tcpAddress, httpAddress: nsqd.httpAddress };
  return daemon;
}

async function connect(d: Broker): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  clients.push(c);
  return c;
}

function text(frame: RawFrame): string {
  return frame.data.toString('latin1');
}

async function mpub(d: Broker, topic: string, bodies: string[]): Promise<void> {
  const c = await connect(d);
  for (let i = 0; i < bodies.length; i += 500) {
    c.write(encodeCommand('MPUB', [topic], encodeMpubBody(bodies.slice(i, i + 500).map((b) => Buffer.from(b)))));
    expect(text(await c.readFrame())).toBe('OK');
  }
}

async function subscribe(d: Broker, topic: string, channel: string, rdy: number): Promise<RawClient> {
  const c = await connect(d);
  c.write(`SUB ${topic} ${channel}\n`);
  expect(text(await c.readFrame())).toBe('OK');
  c.write(`RDY ${rdy}\n`);
  return c;
}

interface Got {
  id: string;
  body: string;
  attempts: number;
}

async function receive(c: RawClient, count: number, fin: boolean): Promise<Got[]> {
  const got: Got[] = [];
  while (got.length < count) {
    const frame = await c.readFrame();
    if (frame.type !== FrameType.Message) continue;
    const m = decodeMessage(frame.data);
    got.push({ id: m.id, body: m.body.toString(), attempts: m.attempts });
    if (fin) c.write(`FIN ${m.id}\n`);
  }
  return got;
}

async function nextMessage(c: RawClient): Promise<ReturnType<typeof decodeMessage>> {
  let frame = await c.readFrame();
  while (frame.type !== FrameType.Message) frame = await c.readFrame();
  return decodeMessage(frame.data);
}

async function stats(d: Broker): Promise<{ topics: Record<string, unknown>[] }> {
  return (await (await fetch(`http://${d.httpAddress}/stats?format=json`)).json()) as {
    topics: Record<string, unknown>[];
  };
}

/** A channel's [depth, in_flight_count, deferred_count] (it has one channel). */
async function channelCounts(d: Broker, topic: string): Promise<number[]> {
  const t = (await stats(d)).topics.find((x) => x.topic_name === topic);
  const c = (t?.channels as Record<string, number>[] | undefined)?.[0];
  return [c?.depth ?? -1, c?.in_flight_count ?? -1, c?.deferred_count ?? -1];
}

const bodies = (n: number, prefix = 'm'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('restart after a clean shutdown', () => {
  it('brings back a backlog spilled past --mem-queue-size, in order, exactly once', async () => {
    let d = await restart({ memQueueSize: 100, maxBytesPerFile: 64 * 1024 });
    await subscribe(d, 't', 'c', 0); // the channel exists, reads nothing
    await mpub(d, 't', bodies(5000));
    d = await restart({ memQueueSize: 100, maxBytesPerFile: 64 * 1024 });
    const s = await stats(d);
    const channels = s.topics[0]?.channels as Record<string, unknown>[];
    expect(channels[0]).toMatchObject({ channel_name: 'c', depth: 5000 });
    const c = await subscribe(d, 't', 'c', 1000);
    const got = await receive(c, 5000, true);
    expect(got.map((g) => g.body)).toEqual(bodies(5000));
    await eventually(async () => {
      const after = (await stats(d)).topics[0]?.channels as Record<string, unknown>[];
      expect(after[0]).toMatchObject({ depth: 0, in_flight_count: 0 });
    });
  });

  it('never reuses offsets of messages that were finished before they were ever written', async () => {
    let d = await restart();
    const c = await subscribe(d, 'fast', 'ch', 100);
    await mpub(d, 'fast', bodies(100));
    await receive(c, 100, true);
    await eventually(async () => {
      const s = (await stats(d)).topics[0]?.channels as Record<string, unknown>[];
      expect(s[0]).toMatchObject({ depth: 0, in_flight_count: 0 });
    });
    d = await restart();
    await mpub(d, 'fast', ['after-restart']);
    const c2 = await subscribe(d, 'fast', 'ch', 10);
    expect((await receive(c2, 1, true))[0]?.body).toBe('after-restart');
  });

  it('a topic without channels keeps its backlog for the first channel', async () => {
    let d = await restart({ memQueueSize: 10 });
    await mpub(d, 'solo', bodies(300));
    d = await restart({ memQueueSize: 10 });
    expect((await stats(d)).topics[0]).toMatchObject({ topic_name: 'solo', depth: 300 });
    const c = await subscribe(d, 'solo', 'first', 500);
    expect((await receive(c, 300, true)).map((g) => g.body)).toEqual(bodies(300));
  });

  it('redelivers in-flight messages with their attempts, keeps requeued and deferred ones', async () => {
    const clock = new ManualClock();
    let d = await restart({}, clock);
    await mpub(d, 't', ['a', 'b', 'c']);
    const c = await subscribe(d, 't', 'ch', 3);
    const first = await receive(c, 3, false);
    // a stays in flight, b is requeued now, c is deferred by 2.5 s.
    c.write(`REQ ${first[1]?.id} 0\n`);
    c.write(`REQ ${first[2]?.id} 2500\n`);
    // b comes straight back; leave it in flight too.
    const again = await receive(c, 1, false);
    expect(again[0]).toMatchObject({ body: 'b', attempts: 2 });
    await eventually(() => expect(d.nsqd.topics.get('t')?.channels.get('ch')?.deferredCount).toBe(1));
    clock.advance(1_000);
    d = await restart({}, clock);
    const s = (await stats(d)).topics[0]?.channels as Record<string, unknown>[];
    expect(s[0]).toMatchObject({ depth: 2, deferred_count: 1, in_flight_count: 0 });
    const c2 = await subscribe(d, 't', 'ch', 10);
    const now = await receive(c2, 2, true);
    expect(now.map((g) => [g.body, g.attempts]).sort()).toEqual([
      ['a', 2],
      ['b', 3],
    ]);
    // Due 2.5 s after the REQ, not after the restart: 1 s passed before it.
    const channel = d.nsqd.topics.get('t')?.channels.get('ch');
    clock.advance(1_499);
    expect(channel?.deferredCount).toBe(1);
    clock.advance(1);
    expect(channel?.deferredCount).toBe(0);
    const late = await receive(c2, 1, true);
    expect(late[0]).toMatchObject({ body: 'c', attempts: 2 });
  });

  it('keeps DPUB due times and paused flags, and what a paused topic held', async () => {
    const clock = new ManualClock();
    let d = await restart({}, clock);
    await subscribe(d, 'p', 'ch', 0);
    const http = `http://${d.httpAddress}`;
    await fetch(`${http}/topic/pause?topic=p`, { method: 'POST' });
    await fetch(`${http}/channel/pause?topic=p&channel=ch`, { method: 'POST' });
    await mpub(d, 'p', ['held1', 'held2']);
    const c = await connect(d);
    c.write(encodeCommand('DPUB', ['p', '2000'], 'later'));
    expect(text(await c.readFrame())).toBe('OK');
    clock.advance(500);
    d = await restart({}, clock);
    const topic = (await stats(d)).topics[0] as Record<string, unknown>;
    expect(topic).toMatchObject({ paused: true, depth: 3 });
    expect((topic.channels as Record<string, unknown>[])[0]).toMatchObject({ paused: true });
    const http2 = `http://${d.httpAddress}`;
    await fetch(`${http2}/topic/unpause?topic=p`, { method: 'POST' });
    await fetch(`${http2}/channel/unpause?topic=p&channel=ch`, { method: 'POST' });
    const sub = await subscribe(d, 'p', 'ch', 10);
    expect((await receive(sub, 2, true)).map((g) => g.body)).toEqual(['held1', 'held2']);
    // The cursor reached the DPUB: it waits for its due time, 2 s after the publish.
    const channel = d.nsqd.topics.get('p')?.channels.get('ch');
    await eventually(() => expect(channel?.deferredCount).toBe(1));
    clock.advance(1_499);
    expect(channel?.deferredCount).toBe(1);
    clock.advance(1);
    expect((await receive(sub, 1, true)).map((g) => g.body)).toEqual(['later']);
  });

  it('topic/empty while paused drops only what was not released', async () => {
    const d = await restart();
    const c = await subscribe(d, 'e', 'ch', 0);
    await mpub(d, 'e', ['kept']);
    await fetch(`http://${d.httpAddress}/topic/pause?topic=e`, { method: 'POST' });
    await mpub(d, 'e', ['dropped1', 'dropped2']);
    await fetch(`http://${d.httpAddress}/topic/empty?topic=e`, { method: 'POST' });
    await fetch(`http://${d.httpAddress}/topic/unpause?topic=e`, { method: 'POST' });
    await mpub(d, 'e', ['after']);
    c.write('RDY 10\n');
    expect((await receive(c, 2, true)).map((g) => g.body)).toEqual(['kept', 'after']);
  });
});

describe('review cases', () => {
  it('a deleted channel stays deleted after a restart, deferred messages and all', async () => {
    let d = await restart();
    const c = await subscribe(d, 'del', 'gone', 5);
    await subscribe(d, 'del', 'keep', 0);
    await mpub(d, 'del', ['x']);
    const [m] = await receive(c, 1, false);
    c.write(`REQ ${m?.id} 60000\n`);
    await eventually(() => expect(d.nsqd.topics.get('del')?.channels.get('gone')?.deferredCount).toBe(1));
    await fetch(`http://${d.httpAddress}/channel/delete?topic=del&channel=gone`, { method: 'POST' });
    d = await restart();
    const channels = (await stats(d)).topics[0]?.channels as Record<string, unknown>[];
    expect(channels.map((ch) => ch.channel_name)).toEqual(['keep']);
  });

  it('a DPUB finished while the cursor was behind it is not delivered again after a restart', async () => {
    const clock = new ManualClock();
    let d = await restart({}, clock);
    const c = await subscribe(d, 'dp', 'ch', 0);
    await mpub(d, 'dp', ['m0', 'm1', 'm2']);
    const p = await connect(d);
    p.write(encodeCommand('DPUB', ['dp', '100'], 'dpub'));
    expect(text(await p.readFrame())).toBe('OK');
    const channel = d.nsqd.topics.get('dp')?.channels.get('ch');
    expect(channel?.deferredCount).toBe(1);
    clock.advance(100);
    expect(channel?.deferredCount).toBe(0);
    // The due DPUB is requeued ahead of the backlog: take it and m0, FIN both.
    c.write('RDY 2\n');
    const got = await receive(c, 2, true);
    expect(got.map((g) => g.body).sort()).toEqual(['dpub', 'm0']);
    // Both FINs processed (whatever else is in flight now comes back after the restart).
    await eventually(() => {
      for (const g of got) expect(channel?.inFlight.get(g.id)).toBeUndefined();
    });
    d = await restart({}, clock);
    const c2 = await subscribe(d, 'dp', 'ch', 10);
    const rest = await receive(c2, 2, true);
    expect(rest.map((g) => g.body)).toEqual(['m1', 'm2']);
    // Neither the DPUB nor m0 comes back: nothing is left once m1 and m2 are finished.
    await eventually(async () => expect(await channelCounts(d, 'dp')).toEqual([0, 0, 0]));
  });

  it('a second /topic/empty while paused counts nothing twice', async () => {
    const d = await restart();
    await subscribe(d, 'sk', 'ch', 0);
    const http = `http://${d.httpAddress}`;
    await fetch(`${http}/topic/pause?topic=sk`, { method: 'POST' });
    await mpub(d, 'sk', ['a', 'b', 'c']);
    await fetch(`${http}/topic/empty?topic=sk`, { method: 'POST' });
    await mpub(d, 'sk', ['d', 'e']);
    await fetch(`${http}/topic/empty?topic=sk`, { method: 'POST' });
    expect(d.nsqd.topics.get('sk')?.depth).toBe(0);
    await mpub(d, 'sk', ['f', 'g', 'h', 'i']);
    expect(d.nsqd.topics.get('sk')?.depth).toBe(4);
  });

  it('durable mode: a publish refused by a failing disk is never delivered, with or without channels', async () => {
    const clock = new ManualClock();
    const disk = new FaultyFileSystem();
    const d = await restart({ memQueueSize: 0, syncEvery: 1 }, clock, disk);
    await subscribe(d, 'fail', 'ch', 0);
    await mpub(d, 'nochannel', ['stored']);
    for (const topic of ['fail', 'nochannel']) {
      // One failed write; publishes are then refused at once until the retry (1 s) heals it.
      disk.failWrites = 1;
      const p = await connect(d);
      p.write(encodeCommand('PUB', [topic], 'refused'));
      expect(text(await p.readFrame())).toMatch(/^E_PUB_FAILED PUB failed/);
      expect(disk.refused).toBeGreaterThan(0);
      expect((await fetch(`http://${d.httpAddress}/ping`)).status).toBe(500);
      const q = await connect(d);
      q.write(encodeCommand('PUB', [topic], 'refused-at-once'));
      expect(text(await q.readFrame())).toMatch(/^E_PUB_FAILED PUB failed/);
      clock.advance(1_000);
      await eventually(async () => expect((await fetch(`http://${d.httpAddress}/ping`)).status).toBe(200));
    }
    await mpub(d, 'fail', ['ok']);
    await mpub(d, 'nochannel', ['ok']);
    expect(d.nsqd.topics.get('nochannel')?.depth).toBe(2);
    for (const [topic, bodies] of [
      ['fail', ['ok']],
      ['nochannel', ['stored', 'ok']],
    ] as const) {
      const c = await subscribe(d, topic, 'ch', 10);
      expect((await receive(c, bodies.length, true)).map((g) => g.body)).toEqual(bodies);
      await eventually(async () => expect(await channelCounts(d, topic)).toEqual([0, 0, 0]));
    }
  });
});

describe('disk', () => {
  it('--mem-queue-size=0: the message is in a segment file when PUB is answered', async () => {
    const d = await restart({ memQueueSize: 0, syncEvery: 1 });
    const c = await connect(d);
    c.write(encodeCommand('PUB', ['disk'], 'on-disk-before-ok'));
    expect(text(await c.readFrame())).toBe('OK');
    const dir = join(dataPath, 'topics', 'disk');
    const [name] = await readdir(dir);
    const buf = await readFile(join(dir, name as string));
    const record = decodeAt(buf, 0, buf.length, 1 << 20, systemClock);
    expect(typeof record).toBe('object');
    if (typeof record === 'object') expect(record.body.toString()).toBe('on-disk-before-ok');
  });

  it('deletes segments every channel has finished, and reclaims files on empty and delete', async () => {
    const clock = new ManualClock();
    const d = await restart({ memQueueSize: 0, maxBytesPerFile: 4096 }, clock);
    const c = await subscribe(d, 'gc', 'ch', 0);
    await mpub(d, 'gc', bodies(1000, 'payload-'));
    const dir = join(dataPath, 'topics', 'gc');
    expect((await readdir(dir)).length).toBeGreaterThan(5);
    c.write('RDY 1000\n');
    await receive(c, 1000, true);
    // Finished segments are looked for every --sync-timeout; the one being written goes too
    // once every record in it is finished.
    await eventually(async () => {
      clock.advance(d.nsqd.options.syncTimeoutMs);
      expect(await readdir(dir)).toEqual([]);
    });
    await mpub(d, 'solo', bodies(500));
    await fetch(`http://${d.httpAddress}/topic/empty?topic=solo`, { method: 'POST' });
    await eventually(async () => expect(await readdir(join(dataPath, 'topics', 'solo'))).toEqual([]));
    await fetch(`http://${d.httpAddress}/topic/delete?topic=gc`, { method: 'POST' });
    await eventually(async () => expect(await readdir(join(dataPath, 'topics'))).not.toContain('gc'));
  });

  it('deletes the segments of a channel that drained between two sync timeouts, with nothing else to write', async () => {
    const clock = new ManualClock();
    const d = await restart({ memQueueSize: 0, maxBytesPerFile: 4096, syncEvery: 1 }, clock);
    const c = await subscribe(d, 'drained', 'ch', 0);
    await mpub(d, 'drained', bodies(1000, 'payload-'));
    const dir = join(dataPath, 'topics', 'drained');
    c.write('RDY 1000\n');
    await receive(c, 1000, true);
    const channel = d.nsqd.topics.get('drained')?.channels.get('ch');
    await eventually(() => expect(channel?.inFlightCount).toBe(0));
    // Its last acknowledgements are stored by another topic's group commit (fsynced: nothing
    // left to sync), which does not look for finished segments.
    await mpub(d, 'other', ['x']);
    expect(channel?.dirty).toBe(false);
    expect((await readdir(dir)).length).toBeGreaterThan(5);
    clock.advance(d.nsqd.options.syncTimeoutMs);
    await eventually(async () => expect(await readdir(dir)).toEqual([]));
  });

  it('ephemeral topics and channels never touch the disk', async () => {
    const d = await restart({ memQueueSize: 0 });
    await subscribe(d, 'x#ephemeral', 'c', 0);
    await mpub(d, 'x#ephemeral', bodies(50));
    await subscribe(d, 'durable', 'tail#ephemeral', 0);
    await mpub(d, 'durable', bodies(50));
    await d.nsqd.close();
    const topics = await readdir(join(dataPath, 'topics')).catch(() => [] as string[]);
    expect(topics).not.toContain('x#ephemeral');
    const d2 = await restart({ memQueueSize: 0 });
    const s = await stats(d2);
    expect(s.topics.map((t) => t.topic_name)).toEqual(['durable']);
    expect(s.topics[0]?.channels).toEqual([]);
  });

  it('two nsqd cannot share a data path', async () => {
    await restart();
    const second = broker({}, systemClock);
    try {
      await expect(second.start()).rejects.toThrow(/failed to lock data-path/);
    } finally {
      await second.close();
    }
  });
});

describe("a real nsqd's data path", () => {
  it('is taken over on first start: topics, channels, paused flags, queued messages with their IDs and attempts', async () => {
    await nsqdDat(dataPath, {
      topics: [
        {
          name: 'orders',
          paused: false,
          channels: [
            { name: 'billing', paused: false },
            { name: 'audit', paused: true },
          ],
        },
        { name: 'solo', paused: true, channels: null },
      ],
      version: '1.3.0',
    });
    const topicQueue = [msg('t1'), msg('t2')];
    const billingQueue = [msg('b1', 3)];
    const soloQueue = [msg('s1'), msg('s2'), msg('s3')];
    await diskQueue(dataPath, 'orders', topicQueue);
    await diskQueue(dataPath, 'orders:billing', billingQueue);
    await diskQueue(dataPath, 'orders:audit', [msg('a1'), msg('a2')], { consumed: 1 });
    await diskQueue(dataPath, 'solo', soloQueue);
    let d = await restart();
    const s = await stats(d);
    expect(s.topics.map((t) => [t.topic_name, t.paused, t.depth])).toEqual([
      ['orders', false, 0],
      ['solo', true, 3],
    ]);
    const channels = s.topics[0]?.channels as Record<string, unknown>[];
    expect(channels.map((c) => [c.channel_name, c.paused, c.depth])).toEqual([
      ['audit', true, 3],
      ['billing', false, 3],
    ]);
    const c = await subscribe(d, 'orders', 'billing', 10);
    const got = await receive(c, 3, true);
    expect(got.map((g) => [g.body, g.attempts])).toEqual([
      ['b1', 4],
      ['t1', 1],
      ['t2', 1],
    ]);
    expect(got[0]?.id).toBe(billingQueue[0]?.id);
    // NSQ's files are renamed, so a restart does not take them twice.
    expect((await readdir(dataPath)).filter((n) => n.endsWith('.dat'))).toEqual([]);
    d = await restart();
    const again = await stats(d);
    expect(again.topics.map((t) => [t.topic_name, t.depth])).toEqual([
      ['orders', 0],
      ['solo', 3],
    ]);
  });
});

describe('segment records', () => {
  it('a flipped bit is detected, and decoding resumes at the next record', async () => {
    const d = await restart({ memQueueSize: 0 });
    await mpub(d, 'crc', ['one', 'two', 'three']);
    const dir = join(dataPath, 'topics', 'crc');
    const [name] = await readdir(dir);
    const buf = await readFile(join(dir, name as string));
    const second = recordSizeAt(buf, 0);
    buf[second + 41] ^= 0x10; // inside "two"
    expect(decodeAt(buf, second, buf.length, 1 << 20, systemClock)).toBe(Decoded.Bad);
    const third = second + recordSizeAt(buf, second);
    const r = decodeAt(buf, third, buf.length, 1 << 20, systemClock);
    expect(typeof r === 'object' && r.body.toString()).toBe('three');
    expect(decodeAt(buf, 0, 10, 1 << 20, systemClock)).toBe(Decoded.Short);
  });
});

/**
 * message_count as NSQ means it (nsq-spec §3.3): a topic counts what was published to it since
 * the process started, a channel what the topic handed it since then — not what a paused topic
 * holds, not the backlog a restart or an import brought back — and neither ever goes down
 * within a process (so /metrics counters and statsd deltas never go backwards).
 */

/** `n` message bodies. */
function numbered(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `m${i}`);
}

async function post(d: Broker, path: string): Promise<void> {
  const res = await fetch(`http://${d.httpAddress}${path}`, { method: 'POST' });
  expect(res.status, path).toBe(200);
}

interface Counts {
  topic: number;
  channels: Record<string, { message_count: number; depth: number }>;
}

async function counts(d: Broker, topic: string): Promise<Counts> {
  const res = await fetch(`http://${d.httpAddress}/stats?format=json&topic=${topic}`);
  const body = (await res.json()) as {
    topics: { message_count: number; channels: { channel_name: string; message_count: number; depth: number }[] }[];
  };
  const t = body.topics[0];
  if (t === undefined) throw new Error(`no topic ${topic}`);
  const channels: Counts['channels'] = {};
  for (const c of t.channels) channels[c.channel_name] = { message_count: c.message_count, depth: c.depth };
  return { topic: t.message_count, channels };
}

/** nsq_*_messages_total samples of one scrape, by their label text. */
async function promCounters(d: Broker): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${d.httpAddress}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(nsq_(?:topic|channel)_messages_total\{[^}]*\}) (\d+)$/.exec(line);
    if (m !== null) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

describe('message_count', () => {
  it("a paused topic's channel counts nothing until the topic hands the messages over", async () => {
    const d = await restart();
    await post(d, '/topic/create?topic=p');
    await post(d, '/channel/create?topic=p&channel=c');
    await post(d, '/topic/pause?topic=p');
    await mpub(d, 'p', numbered(1));
    expect(await counts(d, 'p')).toEqual({ topic: 1, channels: { c: { message_count: 0, depth: 0 } } });
    await post(d, '/topic/unpause?topic=p');
    expect(await counts(d, 'p')).toEqual({ topic: 1, channels: { c: { message_count: 1, depth: 1 } } });
  });

  it('a channel made while its topic is paused gets what the topic held, on unpause', async () => {
    const d = await restart();
    await post(d, '/topic/create?topic=p');
    await post(d, '/channel/create?topic=p&channel=a');
    await post(d, '/topic/pause?topic=p');
    await mpub(d, 'p', numbered(3));
    await post(d, '/channel/create?topic=p&channel=b');
    await post(d, '/topic/unpause?topic=p');
    const c = await counts(d, 'p');
    expect(c.channels).toEqual({ a: { message_count: 3, depth: 3 }, b: { message_count: 3, depth: 3 } });
  });

  it('what /topic/empty drops while paused is never counted, before or after the range is forgotten', async () => {
    const clock = new ManualClock();
    const d = await restart({}, clock);
    await post(d, '/topic/create?topic=e');
    await post(d, '/channel/create?topic=e&channel=c');
    await mpub(d, 'e', numbered(2));
    await post(d, '/topic/pause?topic=e');
    await mpub(d, 'e', numbered(5));
    await post(d, '/topic/empty?topic=e');
    await post(d, '/topic/unpause?topic=e');
    await mpub(d, 'e', numbered(1));
    expect((await counts(d, 'e')).channels.c).toEqual({ message_count: 3, depth: 3 });
    // Consuming past the dropped range lets the topic forget it (at its next state flush).
    const sub = await subscribe(d, 'e', 'c', 10);
    await sub.readFrames(3);
    expect(d.nsqd.topics.get('e')?.skips.length).toBe(1);
    await eventually(() => {
      clock.advance(d.nsqd.options.syncTimeoutMs);
      expect(d.nsqd.topics.get('e')?.skips).toEqual([]);
    });
    expect((await counts(d, 'e')).channels.c?.message_count).toBe(3);
  });

  it('starts again at 0 after a restart: the backlog the restart brings back is not counted again', async () => {
    let d = await restart();
    await post(d, '/topic/create?topic=r');
    await post(d, '/channel/create?topic=r&channel=c');
    await mpub(d, 'r', numbered(7));
    await post(d, '/topic/create?topic=idle');
    await mpub(d, 'idle', numbered(4));
    expect(await counts(d, 'r')).toEqual({ topic: 7, channels: { c: { message_count: 7, depth: 7 } } });
    d = await restart();
    expect(await counts(d, 'r')).toEqual({ topic: 0, channels: { c: { message_count: 0, depth: 7 } } });
    await mpub(d, 'r', numbered(2));
    expect(await counts(d, 'r')).toEqual({ topic: 2, channels: { c: { message_count: 2, depth: 9 } } });
    // A topic without channels still holds its backlog: its first channel counts it as nsqd's
    // topic pump would, moving it over.
    await post(d, '/channel/create?topic=idle&channel=first');
    expect(await counts(d, 'idle')).toEqual({ topic: 0, channels: { first: { message_count: 4, depth: 4 } } });
  });

  it("starts at 0 after taking over a real nsqd's data path; the topic's own queue counts as it reaches the channels", async () => {
    await nsqdDat(dataPath, {
      topics: [{ name: 'orders', paused: false, channels: [{ name: 'billing', paused: false }] }],
      version: '1.3.0',
    });
    await diskQueue(dataPath, 'orders', [msg('t1'), msg('t2')]);
    await diskQueue(dataPath, 'orders:billing', [msg('b1'), msg('b2'), msg('b3')]);
    const d = await restart();
    expect(await counts(d, 'orders')).toEqual({ topic: 0, channels: { billing: { message_count: 2, depth: 5 } } });
  });

  it('/channel/empty while the topic is paused drops only what the channel had, not what the topic holds', async () => {
    const d = await restart();
    await post(d, '/topic/create?topic=ce');
    await post(d, '/channel/create?topic=ce&channel=c');
    await mpub(d, 'ce', numbered(2));
    await post(d, '/topic/pause?topic=ce');
    await mpub(d, 'ce', numbered(3));
    await post(d, '/channel/empty?topic=ce&channel=c');
    expect((await counts(d, 'ce')).channels.c).toEqual({ message_count: 2, depth: 0 });
    await post(d, '/topic/unpause?topic=ce');
    expect((await counts(d, 'ce')).channels.c).toEqual({ message_count: 5, depth: 3 });
  });

  it('/metrics counters never go backwards within a process (pause, empty, unpause, consume)', async () => {
    const d = await restart();
    await post(d, '/topic/create?topic=m');
    await post(d, '/channel/create?topic=m&channel=c');
    let last = await promCounters(d);
    const check = async () => {
      const now = await promCounters(d);
      for (const [series, value] of last) expect(now.get(series), series).toBeGreaterThanOrEqual(value);
      last = now;
    };
    await mpub(d, 'm', numbered(3));
    await check();
    await post(d, '/topic/pause?topic=m');
    await mpub(d, 'm', numbered(3));
    await check();
    await post(d, '/topic/empty?topic=m');
    await check();
    await post(d, '/channel/empty?topic=m&channel=c');
    await check();
    await post(d, '/topic/unpause?topic=m');
    await mpub(d, 'm', numbered(1));
    await check();
    expect(last.get('nsq_channel_messages_total{topic="m",channel="c"}')).toBe(4);
  });
});

describe('dead letters', () => {
  it('settings survive a restart; the dead letter keeps body and publish time, with a new ID', async () => {
    let d = await restart();
    await mpub(d, 't', ['a']);
    // IDs come from one generator per topic (as in NSQ), so the first IDs of two topics made in the
    // same 1.05 ms tick are equal. A message put into D first makes the dead letter D's second ID,
    // which cannot equal t's first whatever the timing.
    await mpub(d, 'dead', ['first']);
    const c = await subscribe(d, 't', 'ch', 1);
    d.nsqd.topics.get('t')?.channels.get('ch')?.configure({ maxAttempts: 1, deadLetterTopic: 'dead' });
    const got = await nextMessage(c);
    c.write(`REQ ${got.id} 0\n`);
    await eventually(() => expect(d.nsqd.topics.get('dead')?.depth).toBe(2));
    d = await restart();
    expect(d.nsqd.topics.get('t')?.channels.get('ch')?.settings).toEqual({ maxAttempts: 1, deadLetterTopic: 'dead' });
    const deadConsumer = await subscribe(d, 'dead', 'x', 10);
    expect((await nextMessage(deadConsumer)).body.toString()).toBe('first');
    const dead = await nextMessage(deadConsumer);
    expect([dead.body.toString(), dead.attempts, dead.timestamp]).toEqual(['a', 1, got.timestamp]);
    expect(dead.id).not.toBe(got.id);
  });

  it('a crash after the dead letter was appended but before the state write stores it in the dead-letter topic once', async () => {
    let d = await restart({ maxAttempts: 2, deadLetterTopic: 'dead' });
    await mpub(d, 't', ['a', 'b']);
    const c = await subscribe(d, 't', 'ch', 2);
    const first = await receive(c, 2, false);
    for (const g of first) c.write(`REQ ${g.id} 0\n`);
    const second = await receive(c, 2, false);
    expect(second.map((g) => g.attempts)).toEqual([2, 2]);
    await eventually(() => expect(d.nsqd.topics.get('t')?.channels.get('ch')?.dirty).toBe(false));
    // Every state write that would commit the move fails from here on, as if the process died
    // between the appends and the state write: the intent and the records are on disk.
    const write = StateStore.prototype.write;
    const spy = vi.spyOn(StateStore.prototype, 'write').mockImplementation(function (this: StateStore, ops, sync) {
      if (ops.some((op) => op.type === 'del' && op.key === 'x:dead')) return Promise.reject(new Error('crash'));
      return write.call(this, ops, sync);
    });
    c.write(`REQ ${second[0]?.id} 0\n`);
    await eventually(() => expect(d.nsqd.healthError()).not.toBeNull());
    expect((await readdir(join(dataPath, 'topics', 'dead'))).length).toBe(1);
    await d.nsqd.close();
    daemon = null;
    spy.mockRestore();
    d = await restart({ maxAttempts: 2, deadLetterTopic: 'dead' });
    // Both are back in their channel on their last attempt (in flight at the crash counts as a
    // timeout): given up again as soon as the channel delivers, never delivered.
    const c2 = await subscribe(d, 't', 'ch', 10);
    await eventually(() => expect(d.nsqd.topics.get('t')?.channels.get('ch')?.deadLetteredCount).toBe(2));
    expect(d.nsqd.topics.get('dead')?.depth).toBe(2);
    c2.close();
    d = await restart({ maxAttempts: 2, deadLetterTopic: 'dead' });
    expect(d.nsqd.topics.get('dead')?.depth).toBe(2);
    const dc = await subscribe(d, 'dead', 'x', 10);
    const dead = await receive(dc, 2, false);
    expect(dead.map((g) => g.body).sort()).toEqual(['a', 'b']);
    expect(await channelCounts(d, 'dead')).toEqual([0, 2, 0]);
  });
});
