/**
 * Durable storage end to end (issue #4, "Done when"): real nsqd processes on a real data path,
 * stopped with real signals (SIGTERM for a clean stop, SIGKILL for a crash), restarted on the
 * same --data-path, and consumed with raw V2 connections (test/support/nsq-wire.ts).
 *
 * 1. A 1,000,000-message backlog (mostly spilled to disk with --mem-queue-size=100) survives a
 *    SIGTERM: after the restart /stats shows it all and every message arrives exactly once.
 * 2. SIGKILL under concurrent publish and consume with --mem-queue-size=0 --sync-every=1:
 *    nothing acknowledged is lost, what was received but not FINished comes back, and the
 *    FINished messages that came back (only possible for a FIN of the last sync window) are
 *    counted and printed.
 * 3. The same crash with the default settings: the acknowledged messages lost are counted,
 *    printed, and bounded by what was acknowledged in the last --sync-timeout plus a flush.
 * 4. A DPUB'd message and a REQ'd-with-delay message keep their due time (and attempts) across
 *    a SIGTERM and restart.
 * 5. A clean restart keeps topics, channels, paused flags of both, in-flight messages (back
 *    with attempts + 1), requeued and deferred ones.
 * 6. Damaged segment files: a flipped byte in a middle segment costs exactly that record and a
 *    torn last segment exactly its torn record; every other record is delivered, the damage is
 *    counted in /stats corrupt_records, and no file is renamed away.
 * 7. A full disk (a small tmpfs as --data-path): publishes fail with E_MPUB_FAILED/E_PUB_FAILED
 *    and HTTP 503 EXITING (NSQ's answer to a failed put), /ping says NOK; once space is freed
 *    the node heals itself without a restart and every acknowledged message is delivered intact.
 *
 * Consumers here FIN by hand, so the tests know exactly which FINs were sent and when. Waits
 * are polls with deadlines; the only timed pauses pace publishers (load, not synchronisation)
 * or are the thing under test (a 1 s wait before a SIGTERM, the quiet time that ends "consume
 * until quiet").
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { encodeCommand } from '@nsq-ts/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelStats, http, httpPost, topicStats, WireClient, type WireMessage } from './support/nsq-wire.js';
import { perTestProcesses } from './support/per-test.js';
import { type DaemonProcess, waitUntil } from './support/processes.js';

const run = promisify(execFile);

// ---- per-test resources ----

const resources = perTestProcesses();

// ---- helpers ----

function startNsqd(args: readonly string[], dataPath?: string): Promise<DaemonProcess> {
  return resources.group.startNsqd({ name: 'nsqd', lookupdTcpAddresses: [], args, dataPath });
}

function dataPathOf(node: DaemonProcess): string {
  const i = node.args.indexOf('--data-path');
  return node.args[i + 1] as string;
}

async function connect(node: DaemonProcess): Promise<WireClient> {
  const client = await WireClient.connect(node.tcpAddress);
  resources.defer(() => client.destroy());
  return client;
}

/** A connection subscribed to `topic/channel` with `onMessage` set before RDY is sent. */
async function subscribe(
  node: DaemonProcess,
  topic: string,
  channel: string,
  rdy: number,
  onMessage: (msg: WireMessage, client: WireClient) => void,
): Promise<WireClient> {
  const client = await connect(node);
  client.onMessage = (msg) => onMessage(msg, client);
  await client.sub(topic, channel);
  if (rdy > 0) client.rdy(rdy);
  return client;
}

/** SIGKILL now; resolves once the process is reaped. Returns `performance.now()` of the kill. */
async function crash(node: DaemonProcess): Promise<number> {
  const at = performance.now();
  node.note('SIGKILL');
  node.signal('SIGKILL');
  const exit = await node.exited;
  expect(exit.signal).toBe('SIGKILL');
  return at;
}

/** SIGTERM and wait for a clean exit (code 0). */
async function stopCleanly(node: DaemonProcess): Promise<void> {
  node.note('SIGTERM');
  const exit = await node.stop('SIGTERM', 30_000);
  expect(exit).toEqual({ code: 0, signal: null });
}

/** /topic/create then /channel/create (nsqd wants the topic first). */
async function createChannel(httpAddress: string, topic: string, channel: string): Promise<void> {
  await httpPost(httpAddress, `/topic/create?topic=${topic}`);
  await httpPost(httpAddress, `/channel/create?topic=${topic}&channel=${channel}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until no message has arrived for `quietMs` (`last()` is the time of the last one). */
async function quiet(last: () => number, quietMs: number, timeoutMs = 30_000): Promise<void> {
  await waitUntil(`${quietMs} ms without a message`, () => performance.now() - last() >= quietMs, {
    timeoutMs,
    intervalMs: 50,
  });
}

/** A channel with nothing left to deliver: every message it had is finished. */
function idle(s: { depth: number; in_flight_count: number; deferred_count: number }): boolean {
  return s.depth === 0 && s.in_flight_count === 0 && s.deferred_count === 0;
}

/** The ready_count of each client of a channel, from /stats with clients. */
async function readyCounts(httpAddress: string, topic: string, channel: string): Promise<number[]> {
  const r = await http(httpAddress, `/stats?format=json&topic=${topic}&channel=${channel}`);
  const body = JSON.parse(r.text) as { topics: { channels: { clients: { ready_count: number }[] }[] }[] };
  return body.topics[0]?.channels[0]?.clients.map((c) => c.ready_count) ?? [];
}

function count<T>(items: Iterable<T>, pred: (item: T) => boolean): number {
  let n = 0;
  for (const item of items) if (pred(item)) n++;
  return n;
}

// ---- 1. a million messages across a clean restart ----

describe('a 1,000,000-message backlog across SIGTERM', () => {
  const TOTAL = 1_000_000;
  const BATCH = 1_000;
  const IN_FLIGHT_BATCHES = 8;
  const BODY_BYTES = 10; // "m" + 9 digits

  /** An MPUB body of bodies `m<9-digit index>` for indexes [from, from + n). */
  function mpubBody(from: number, n: number): Buffer {
    const out = Buffer.allocUnsafe(4 + n * (4 + BODY_BYTES));
    out.writeInt32BE(n, 0);
    let at = 4;
    for (let i = from; i < from + n; i++) {
      out.writeInt32BE(BODY_BYTES, at);
      out.write(`m${String(i).padStart(9, '0')}`, at + 4, 'latin1');
      at += 4 + BODY_BYTES;
    }
    return out;
  }

  it('is all there after the restart and every message arrives exactly once', { timeout: 180_000 }, async () => {
    const topic = 'million';
    // 10 MB segments: the backlog spans several files (≈ 50 MB of records).
    const node = await startNsqd(['--mem-queue-size=100', '--max-bytes-per-file=10485760']);
    await createChannel(node.httpAddress, topic, 'c');

    const t0 = performance.now();
    const pub = await connect(node);
    let next = 0;
    const inFlight = new Set<Promise<unknown>>();
    while (next < TOTAL) {
      while (inFlight.size < IN_FLIGHT_BATCHES && next < TOTAL) {
        const p = pub.request('MPUB', encodeCommand('MPUB', [topic], mpubBody(next, BATCH)));
        next += BATCH;
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p)).catch(() => undefined);
      }
      await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const publishedIn = performance.now() - t0;
    pub.destroy();

    expect((await channelStats(node.httpAddress, topic, 'c')).depth).toBe(TOTAL);
    await stopCleanly(node);
    const files = await readdir(join(dataPathOf(node), 'topics', topic));
    expect(files.length).toBeGreaterThan(1);

    const t1 = performance.now();
    const again = await resources.group.restart(node);
    const restartedIn = performance.now() - t1;
    const before = await channelStats(again.httpAddress, topic, 'c');
    expect(before.depth).toBe(TOTAL);
    expect(before.in_flight_count).toBe(0);

    const seen = new Uint8Array(TOTAL);
    let received = 0;
    let duplicates = 0;
    let foreign = 0;
    let lastAt = performance.now();
    const t2 = performance.now();
    const depths: number[] = [before.depth];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          depths.push((await channelStats(again.httpAddress, topic, 'c')).depth);
        } catch {
          // a busy node may answer late; the next sample will do
        }
        await sleep(250);
      }
    })();
    await subscribe(again, topic, 'c', 2_500, (msg, client) => {
      client.fin(msg.id);
      lastAt = msg.receivedAt;
      const b = msg.body;
      const i = b.length === BODY_BYTES && b[0] === 0x6d ? Number(b.toString('latin1', 1)) : Number.NaN;
      if (!Number.isInteger(i) || i < 0 || i >= TOTAL) {
        foreign++;
        return;
      }
      if (seen[i] !== 0) duplicates++;
      else received++;
      seen[i] = 1;
    });
    await waitUntil('every message', () => received + foreign >= TOTAL, { timeoutMs: 120_000, intervalMs: 100 });
    const consumedIn = performance.now() - t2;
    // Anything delivered twice would follow close behind (nothing is left to time out).
    await quiet(() => lastAt, 500);
    const after = await waitUntil(
      'channel depth 0 and nothing in flight',
      async () => {
        const c = await channelStats(again.httpAddress, topic, 'c');
        return c.depth === 0 && c.in_flight_count === 0 ? c : false;
      },
      { timeoutMs: 10_000 },
    );
    sampling = false;
    await sampler;
    depths.push(after.depth);

    console.log(
      `[durability] 1M: published in ${Math.round(publishedIn)} ms (${files.length} segment file(s)), ` +
        `restarted in ${Math.round(restartedIn)} ms, consumed in ${Math.round(consumedIn)} ms; ` +
        `depth samples ${depths.slice(0, 6).join(', ')}${depths.length > 6 ? ', …' : ''} (${depths.length})`,
    );
    expect({ received, duplicates, foreign }).toEqual({ received: TOTAL, duplicates: 0, foreign: 0 });
    const missing = count(seen, (x) => x === 0);
    expect(missing).toBe(0);
    // The depth counts down, never up, and ends at 0.
    for (let i = 1; i < depths.length; i++) expect(depths[i]).toBeLessThanOrEqual(depths[i - 1] as number);
    expect(depths[depths.length - 1]).toBe(0);
    expect(depths.some((d) => d > 0 && d < TOTAL)).toBe(true);
    // Finished segments are deleted: only the one being written may stay.
    await waitUntil(
      'finished segments deleted',
      async () => (await readdir(join(dataPathOf(again), 'topics', topic))).length <= 1,
      {
        timeoutMs: 10_000,
      },
    );
  });
});

// ---- 2 and 3. SIGKILL under concurrent publish and consume ----

/** What the publishers and consumers of a crash test saw before the crash. */
interface CrashRun {
  /** Every body sent. */
  sent: Set<string>;
  /** Bodies whose PUB/MPUB got OK, with `performance.now()` of the OK. */
  acked: Map<string, number>;
  /** Bodies received before the crash, with their attempts and `performance.now()` of receipt. */
  received: Map<string, { attempts: number; at: number }>;
  /** Bodies FINished before the crash, with `performance.now()` of the FIN's write. */
  finished: Map<string, number>;
  /** Bodies received and deliberately kept in flight (never FINished) before the crash. */
  held: Set<string>;
  /** E_FIN_FAILED and the like. */
  errors: string[];
}

const PUBLISHERS = 2;
const CONSUMERS = 2;
const CONSUMER_RDY = 50;
/** Each consumer keeps every 10th message it gets in flight, up to this many. */
const HELD_PER_CONSUMER = 10;

/**
 * Publishers (one MPUBs 10 at a time, one PUBs one at a time, each paced) and consumers (FIN
 * everything but a few held messages) on `topic/c`, until `until()` is true; then SIGKILL.
 */
async function crashUnderLoad(
  node: DaemonProcess,
  topic: string,
  options: { paceMs: number; finEveryMs: number },
  until: (r: CrashRun) => boolean,
): Promise<{ run: CrashRun; killedAt: number }> {
  const r: CrashRun = {
    sent: new Set(),
    acked: new Map(),
    received: new Map(),
    finished: new Map(),
    held: new Set(),
    errors: [],
  };
  await createChannel(node.httpAddress, topic, 'c');
  const consumers: WireClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let k = 0; k < CONSUMERS; k++) {
    let seen = 0;
    let held = 0;
    // FINs wait for the next tick of `finEveryMs` (0: sent at once), which slows consumption.
    const due: [string, string][] = [];
    const finNow = (client: WireClient, id: string, body: string) => {
      client.fin(id);
      r.finished.set(body, performance.now());
    };
    const client = await subscribe(node, topic, 'c', CONSUMER_RDY, (msg, c) => {
      const body = msg.body.toString('latin1');
      r.received.set(body, { attempts: msg.attempts, at: msg.receivedAt });
      if (++seen % 10 === 0 && held < HELD_PER_CONSUMER) {
        held++;
        r.held.add(body);
        return;
      }
      if (options.finEveryMs === 0) finNow(c, msg.id, body);
      else due.push([msg.id, body]);
    });
    consumers.push(client);
    if (options.finEveryMs > 0) {
      timers.push(
        setInterval(() => {
          client.socket.cork();
          for (const [id, body] of due.splice(0)) finNow(client, id, body);
          client.socket.uncork();
        }, options.finEveryMs),
      );
    }
  }
  resources.defer(() => {
    for (const t of timers) clearInterval(t);
  });
  let stop = false;
  const publishers: Promise<void>[] = [];
  for (let p = 0; p < PUBLISHERS; p++) {
    const client = await connect(node);
    publishers.push(
      (async () => {
        let seq = 0;
        while (!stop) {
          const n = p === 0 ? 10 : 1;
          const bodies: string[] = [];
          for (let i = 0; i < n; i++) bodies.push(`${topic}-p${p}-${String(seq++).padStart(7, '0')}`);
          for (const b of bodies) r.sent.add(b);
          try {
            if (n === 1) await client.pub(topic, bodies[0] as string);
            else
              await client.mpub(
                topic,
                bodies.map((b) => Buffer.from(b, 'latin1')),
              );
          } catch {
            return; // the node died under us
          }
          const at = performance.now();
          for (const b of bodies) r.acked.set(b, at);
          await sleep(options.paceMs);
        }
      })(),
    );
  }
  await waitUntil('the load to build up', () => until(r), { timeoutMs: 30_000, intervalMs: 20 });
  const killedAt = await crash(node);
  for (const t of timers) clearInterval(t);
  stop = true;
  await Promise.all(publishers);
  for (const c of consumers) r.errors.push(...c.errors);
  return { run: r, killedAt };
}

/** Restarts the node and consumes `topic/c` (FIN everything) until `expected` all came and it is quiet. */
async function recoverAndDrain(
  node: DaemonProcess,
  topic: string,
  expected: Iterable<string>,
): Promise<{ node: DaemonProcess; after: Map<string, number[]> }> {
  const again = await resources.group.restart(node);
  const after = new Map<string, number[]>();
  let lastAt = performance.now();
  for (let k = 0; k < CONSUMERS; k++) {
    await subscribe(again, topic, 'c', CONSUMER_RDY, (msg, client) => {
      client.fin(msg.id);
      lastAt = msg.receivedAt;
      const body = msg.body.toString('latin1');
      const list = after.get(body);
      if (list === undefined) after.set(body, [msg.attempts]);
      else list.push(msg.attempts);
    });
  }
  const want = [...expected];
  await waitUntil(
    'every expected message after the restart',
    () => {
      const missing = want.filter((b) => !after.has(b));
      if (missing.length === 0) return true;
      throw new Error(`${missing.length} missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  // "Until quiet": anything else the node still holds arrives right behind.
  await quiet(() => lastAt, 1_500);
  return { node: again, after };
}

describe('SIGKILL under concurrent publish and consume', () => {
  it('with --mem-queue-size=0 --sync-every=1 loses nothing acknowledged and redelivers what was not FINished', {
    timeout: 90_000,
  }, async () => {
    const topic = 'crash-strict';
    const node = await startNsqd(['--mem-queue-size=0', '--sync-every=1']);
    const { run: r, killedAt } = await crashUnderLoad(
      node,
      topic,
      { paceMs: 2, finEveryMs: 0 },
      (x) => x.acked.size >= 1_500 && x.finished.size >= 500 && x.held.size >= CONSUMERS * HELD_PER_CONSUMER,
    );
    // Received but not FINished (the held ones): every one that was acknowledged is on disk
    // (fsynced before the OK) and must come back. One received but not acknowledged was handed
    // out of memory before its write completed: the publisher was not told OK, it may be gone.
    const notFinished = [...r.received.keys()].filter((b) => !r.finished.has(b));
    const notFinishedAcked = notFinished.filter((b) => r.acked.has(b));
    // Acknowledged and never FINished must come back too.
    const ackedNotFinished = [...r.acked.keys()].filter((b) => !r.finished.has(b));
    const { after } = await recoverAndDrain(node, topic, [...notFinishedAcked, ...ackedNotFinished]);

    const lost = [...r.acked.keys()].filter((b) => !r.finished.has(b) && !after.has(b));
    const foreign = [...after.keys()].filter((b) => !r.sent.has(b));
    const duplicatesAfter = [...after.values()].filter((l) => l.length > 1).length;
    const finishedBack = [...r.finished].filter(([b]) => after.has(b));
    const finAge = finishedBack.map(([, at]) => killedAt - at);
    const notFinishedUnacked = notFinished.length - notFinishedAcked.length;
    const notFinishedUnackedBack = count(notFinished, (b) => !r.acked.has(b) && after.has(b));
    const unackedBack = count(after.keys(), (b) => r.sent.has(b) && !r.acked.has(b));
    // Received well before the kill: its in-flight state (attempts 1) was stored by a later flush.
    const oldInFlight = notFinishedAcked.filter((b) => killedAt - (r.received.get(b)?.at ?? killedAt) > 1_000);
    const redeliveredAttempts = notFinished.map((b) => after.get(b)?.[0] ?? 0);
    console.log(
      `[durability] SIGKILL, --mem-queue-size=0 --sync-every=1: sent ${r.sent.size}, acknowledged ${r.acked.size}, ` +
        `received ${r.received.size} (FINished ${r.finished.size}, held ${r.held.size}) before the kill; ` +
        `after the restart ${after.size} delivered: acknowledged lost ${lost.length}, ` +
        `FINished messages redelivered ${finishedBack.length}` +
        (finishedBack.length > 0
          ? ` (their FINs sent ${Math.round(Math.min(...finAge))}–${Math.round(Math.max(...finAge))} ms before the kill)`
          : '') +
        `, received-not-FINished redelivered ${count(notFinished, (b) => after.has(b))}/${notFinished.length} ` +
        `(attempts ${JSON.stringify(redeliveredAttempts)}; not acknowledged ${notFinishedUnacked}, of those back ${notFinishedUnackedBack}), ` +
        `unacknowledged publishes delivered ${unackedBack}, duplicates after the restart ${duplicatesAfter}, FIN errors ${r.errors.length}`,
    );

    expect(lost).toEqual([]);
    expect(foreign).toEqual([]);
    expect(duplicatesAfter).toBe(0);
    for (const b of notFinishedAcked) expect(after.has(b), `received-not-FINished ${b} came back`).toBe(true);
    for (const b of oldInFlight) expect(after.get(b)?.[0], `attempts of ${b}`).toBe(2);
    // With --sync-every=1 every FIN is followed at once by a synced flush: only a FIN written
    // in the last moments before the kill (its flush not yet done) may come back.
    for (const age of finAge) expect(age).toBeLessThan(1_000);
    expect(r.errors).toEqual([]);
  });

  it('with the default settings loses only what was acknowledged in the last --sync-timeout', {
    timeout: 90_000,
  }, async () => {
    const topic = 'crash-default';
    const SYNC_TIMEOUT_MS = 2_000; // nsqd's default --sync-timeout
    const node = await startNsqd([]);
    const t0 = performance.now();
    // Long enough for at least one --sync-timeout flush to have written what came before it.
    // Consumers slower than the publishers (FINs every 50 ms): a backlog builds in memory
    // (under --mem-queue-size, so it is written by the --sync-timeout flushes only).
    const { run: r, killedAt } = await crashUnderLoad(
      node,
      topic,
      { paceMs: 2, finEveryMs: 50 },
      (x) => performance.now() - t0 > 3_300 && x.held.size >= CONSUMERS * HELD_PER_CONSUMER,
    );
    const { after } = await recoverAndDrain(node, topic, []);

    const lost = [...r.acked].filter(([b]) => !r.finished.has(b) && !after.has(b));
    const foreign = [...after.keys()].filter((b) => !r.sent.has(b));
    const finishedBack = count(r.finished.keys(), (b) => after.has(b));
    const heldLost = count(r.held, (b) => r.acked.has(b) && !after.has(b));
    const lostAge = lost.map(([, at]) => killedAt - at);
    /*
     * The bound. With the defaults a PUB is answered once its message is in memory; the storage
     * writes every record still needed (unread by the channel, or in flight) at least every
     * --sync-timeout (its timer flushes whenever anything changed), and a write() that returned
     * survives a SIGKILL (the page cache belongs to the kernel, not to the process; fsync only
     * matters for power loss). So what a SIGKILL can lose is what was acknowledged after the
     * snapshot of the last flush that completed: at most --sync-timeout plus one flush's
     * duration before the kill. 1 s covers a flush on this busy machine many times over.
     */
    const bound = SYNC_TIMEOUT_MS + 1_000;
    const ackedInWindow = count(r.acked.values(), (at) => killedAt - at <= bound);
    console.log(
      `[durability] SIGKILL, default settings: sent ${r.sent.size}, acknowledged ${r.acked.size}, ` +
        `FINished ${r.finished.size}, held ${r.held.size} before the kill; acknowledged messages lost ${lost.length} ` +
        `(of ${ackedInWindow} acknowledged in the last ${bound} ms; oldest lost acknowledged ` +
        `${lost.length > 0 ? Math.round(Math.max(...lostAge)) : '-'} ms before the kill), held lost ${heldLost}, ` +
        `FINished messages redelivered ${finishedBack}, delivered after the restart ${after.size}`,
    );
    expect(foreign).toEqual([]);
    for (const age of lostAge) expect(age).toBeLessThanOrEqual(bound);
    expect(lost.length).toBeLessThanOrEqual(ackedInWindow);
    // Held (in flight at the kill) and acknowledged before the window: written with their state.
    const heldOld = [...r.held].filter((b) => {
      const at = r.acked.get(b);
      return at !== undefined && killedAt - at > bound;
    });
    for (const b of heldOld) expect(after.has(b), `held ${b} came back`).toBe(true);
  });
});

// ---- 4. deferred messages keep their due time ----

describe('deferred messages across SIGTERM', () => {
  it('DPUB and REQ with a delay are delivered at their due time after a restart, attempts kept', {
    timeout: 60_000,
  }, async () => {
    const DEFER_MS = 5_000;
    const node = await startNsqd([]);
    const topic = 'deferred';
    const lonely = 'deferred-nochannel'; // no channel yet: the DPUB waits in the log
    await createChannel(node.httpAddress, topic, 'c');

    const first: WireMessage[] = [];
    const c1 = await subscribe(node, topic, 'c', 10, (msg) => {
      first.push({ ...msg, body: Buffer.from(msg.body) });
    });
    const pub = await connect(node);
    await pub.pub(topic, 'to-be-requeued');
    const got = await waitUntil('the message to requeue', () => first[0]);
    expect(got.attempts).toBe(1);
    c1.req(got.id, DEFER_MS);
    const reqAt = performance.now();
    await pub.dpub(topic, DEFER_MS, 'dpub-with-channel');
    const dpubAt = performance.now();
    await pub.dpub(lonely, DEFER_MS, 'dpub-without-channel');
    const lonelyAt = performance.now();
    await waitUntil(
      'both deferred',
      async () => (await channelStats(node.httpAddress, topic, 'c')).deferred_count === 2,
    );

    // A second of the deferral passes before the stop: the due times must count it.
    await sleep(1_000);
    await stopCleanly(node);
    expect(first.length).toBe(1);
    const again = await resources.group.restart(node);
    const s = await channelStats(again.httpAddress, topic, 'c');
    expect({ deferred: s.deferred_count, depth: s.depth, inFlight: s.in_flight_count }).toEqual({
      deferred: 2,
      depth: 0,
      inFlight: 0,
    });

    const arrivals = new Map<string, { at: number; attempts: number; n: number }>();
    const onMessage = (msg: WireMessage, client: WireClient) => {
      const body = msg.body.toString();
      const prior = arrivals.get(body);
      arrivals.set(body, { at: prior?.at ?? msg.receivedAt, attempts: msg.attempts, n: (prior?.n ?? 0) + 1 });
      client.fin(msg.id);
    };
    await subscribe(again, topic, 'c', 10, onMessage);
    await subscribe(again, lonely, 'c', 10, onMessage);
    await waitUntil('the three deferred messages', () => arrivals.size === 3, { timeoutMs: 15_000 });
    // Once every message is finished, none can be delivered a second time.
    await waitUntil('nothing outstanding', async () => {
      const all = [
        await channelStats(again.httpAddress, topic, 'c'),
        await channelStats(again.httpAddress, lonely, 'c'),
      ];
      return all.every(idle);
    });

    const req = arrivals.get('to-be-requeued');
    const dpub = arrivals.get('dpub-with-channel');
    const lone = arrivals.get('dpub-without-channel');
    const lateness = {
      req: Math.round((req?.at ?? 0) - reqAt),
      dpub: Math.round((dpub?.at ?? 0) - dpubAt),
      lone: Math.round((lone?.at ?? 0) - lonelyAt),
    };
    console.log(`[durability] deferred ${DEFER_MS} ms, SIGTERM at 1 s: delivered after ${JSON.stringify(lateness)} ms`);
    for (const ms of Object.values(lateness)) {
      expect(ms).toBeGreaterThanOrEqual(DEFER_MS - 500);
      expect(ms).toBeLessThanOrEqual(DEFER_MS + 3_000);
    }
    expect(req).toMatchObject({ attempts: 2, n: 1 });
    expect(dpub).toMatchObject({ attempts: 1, n: 1 });
    expect(lone).toMatchObject({ attempts: 1, n: 1 });
  });
});

// ---- 5. clean restart keeps the whole state ----

describe('clean restart', () => {
  it('keeps topics, channels, paused flags, in-flight, requeued and deferred messages', {
    timeout: 60_000,
  }, async () => {
    const DEFER_MS = 3_000;
    const node = await startNsqd([]);
    const H = node.httpAddress;
    // A paused topic: 3 messages released to its channel before the pause, 2 held back.
    await createChannel(H, 'held', 'c');
    await httpPost(H, '/mpub?topic=held', 'h0\nh1\nh2');
    await httpPost(H, '/topic/pause?topic=held');
    await httpPost(H, '/mpub?topic=held', 'h3\nh4');
    // A topic with a paused channel and a working one.
    await createChannel(H, 'main', 'paused');
    await createChannel(H, 'main', 'work');
    await httpPost(H, '/channel/pause?topic=main&channel=paused');
    await httpPost(H, '/mpub?topic=main', Array.from({ length: 10 }, (_, i) => `m${i}`).join('\n'));
    // A topic and channel with nothing in them.
    await createChannel(H, 'bare', 'empty');

    const got = new Map<string, WireMessage>();
    const c = await subscribe(node, 'main', 'work', 4, (msg) => {
      got.set(msg.body.toString(), { ...msg, body: Buffer.from(msg.body) });
    });
    await waitUntil('4 messages in flight', () => got.size === 4);
    expect([...got.keys()]).toEqual(['m0', 'm1', 'm2', 'm3']);
    c.rdy(0);
    c.req((got.get('m0') as WireMessage).id, 0); // requeued (RDY 0: it stays requeued)
    c.req((got.get('m1') as WireMessage).id, DEFER_MS); // deferred
    c.fin((got.get('m2') as WireMessage).id); // done
    // m3 stays in flight.
    const pub = await connect(node);
    await pub.dpub('main', DEFER_MS, 'm10');
    const deferredAt = performance.now();
    const work = await waitUntil('the work channel state', async () => {
      const s = await channelStats(H, 'main', 'work');
      return s.in_flight_count === 1 && s.deferred_count === 2 ? s : false;
    });
    expect(work.depth).toBe(7); // m4…m9 and the requeued m0
    // The paused channel: m0…m9 unread, and m10 (DPUB) in its deferred set.
    expect(await channelStats(H, 'main', 'paused')).toMatchObject({ paused: true, depth: 10, deferred_count: 1 });
    await stopCleanly(node);

    const again = await resources.group.restart(node);
    const A = again.httpAddress;
    const held = await topicStats(A, 'held');
    expect({ paused: held.paused, depth: held.depth, channels: held.channels.map((x) => x.channel_name) }).toEqual({
      paused: true,
      depth: 2,
      channels: ['c'],
    });
    const main = await topicStats(A, 'main');
    expect(main.paused).toBe(false);
    const byName = Object.fromEntries(main.channels.map((x) => [x.channel_name, x]));
    // Soft: a mismatch here is reported and the rest of the scenario still runs.
    expect.soft(byName.paused, 'paused channel as before the stop').toMatchObject({
      paused: true,
      depth: 10,
      deferred_count: 1,
      in_flight_count: 0,
    });
    // m3 (in flight at the stop) and m0 (requeued) are ready again, with m4…m9.
    expect(byName.work).toMatchObject({ paused: false, depth: 8, deferred_count: 2, in_flight_count: 0 });
    const bare = await topicStats(A, 'bare');
    expect(bare.channels.map((x) => x.channel_name)).toEqual(['empty']);

    const after = new Map<string, { attempts: number; at: number; n: number }>();
    await subscribe(again, 'main', 'work', 20, (msg, client) => {
      const body = msg.body.toString();
      const prior = after.get(body);
      after.set(body, { attempts: msg.attempts, at: msg.receivedAt, n: (prior?.n ?? 0) + 1 });
      client.fin(msg.id);
    });
    await waitUntil('the 8 ready messages', () => after.size >= 8);
    await waitUntil('the 2 deferred messages', () => after.has('m1') && after.has('m10'), { timeoutMs: 10_000 });
    await waitUntil('nothing outstanding', async () => idle(await channelStats(A, 'main', 'work')));
    expect(new Set(after.keys())).toEqual(new Set(['m0', 'm1', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10']));
    expect(after.get('m3')).toMatchObject({ attempts: 2, n: 1 }); // in flight before: attempts + 1
    expect(after.get('m0')).toMatchObject({ attempts: 2, n: 1 }); // requeued
    expect(after.get('m1')).toMatchObject({ attempts: 2, n: 1 }); // REQ'd with a delay
    expect(after.get('m10')).toMatchObject({ attempts: 1, n: 1 }); // DPUB'd
    for (const i of [4, 5, 6, 7, 8, 9]) expect(after.get(`m${i}`)).toMatchObject({ attempts: 1, n: 1 });
    expect((after.get('m10')?.at ?? 0) - deferredAt).toBeGreaterThanOrEqual(DEFER_MS - 500);

    // The paused channel delivers nothing until it is unpaused, then all 11.
    const pausedGot = new Set<string>();
    await subscribe(again, 'main', 'paused', 20, (msg, client) => {
      pausedGot.add(msg.body.toString());
      client.fin(msg.id);
    });
    // Its RDY is processed (and so a delivery would be under way) once /stats shows it.
    await waitUntil('the RDY 20', async () => (await readyCounts(A, 'main', 'paused'))[0] === 20);
    const paused = await channelStats(A, 'main', 'paused');
    expect({ held: paused.depth + paused.deferred_count, inFlight: paused.in_flight_count }).toEqual({
      held: 11,
      inFlight: 0,
    });
    expect(pausedGot.size).toBe(0);
    await httpPost(A, '/channel/unpause?topic=main&channel=paused');
    await waitUntil('the paused channel backlog', () => pausedGot.size === 11, { timeoutMs: 10_000 });

    // The paused topic releases only what came before its pause, then the rest on unpause.
    const heldGot: string[] = [];
    await subscribe(again, 'held', 'c', 20, (msg, client) => {
      heldGot.push(msg.body.toString());
      client.fin(msg.id);
    });
    await waitUntil('the released messages', () => heldGot.length === 3);
    await waitUntil('nothing outstanding', async () => idle(await channelStats(A, 'held', 'c')));
    expect((await topicStats(A, 'held')).depth).toBe(2);
    expect(heldGot.sort()).toEqual(['h0', 'h1', 'h2']);
    await httpPost(A, '/topic/unpause?topic=held');
    await waitUntil('the held-back messages', () => heldGot.length === 5);
    expect(heldGot.sort()).toEqual(['h0', 'h1', 'h2', 'h3', 'h4']);
  });
});

// ---- 6. corrupt and torn segment files ----

interface SegmentRecord {
  pos: number;
  size: number;
  offset: number;
  body: Buffer;
}

/** The records of a segment file (format in packages/nsqd/src/log/record-codec.ts). */
async function segmentRecords(path: string): Promise<SegmentRecord[]> {
  const buf = await readFile(path);
  const out: SegmentRecord[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const n = buf.readUInt32BE(pos);
    if (pos + 8 + n > buf.length) break;
    const offset = buf.readUInt32BE(pos + 8) * 2 ** 32 + buf.readUInt32BE(pos + 12);
    out.push({ pos, size: 8 + n, offset, body: Buffer.from(buf.subarray(pos + 40, pos + 8 + n)) });
    pos += 8 + n;
  }
  return out;
}

describe('corrupt segment files', () => {
  const TOTAL = 300;
  const topic = 'damaged';
  const bodies = Array.from({ length: TOTAL }, (_, i) => `rec-${String(i).padStart(4, '0')}-`.padEnd(100, 'x'));

  /** 300 records in ~11 segments of 4 KiB, all on disk (--mem-queue-size=0); `before` runs ahead of the SIGTERM. */
  async function backlogOnDisk(before: (node: DaemonProcess) => Promise<void>): Promise<DaemonProcess> {
    const node = await startNsqd(['--mem-queue-size=0', '--max-bytes-per-file=4096']);
    await createChannel(node.httpAddress, topic, 'c');
    const pub = await connect(node);
    for (let i = 0; i < TOTAL; i += 30) {
      await pub.mpub(
        topic,
        bodies.slice(i, i + 30).map((b) => Buffer.from(b)),
      );
    }
    await before(node);
    await stopCleanly(node);
    return node;
  }

  /**
   * (a) flips one byte of the body of one record in a middle segment, (b) cuts the last segment
   * in the middle of its last record. Returns the segment names and the two bodies lost.
   */
  async function damage(
    dir: string,
  ): Promise<{ names: string[]; lost: Set<string>; lastPath: string; tornAt: number }> {
    const names = (await readdir(dir)).sort();
    expect(names.length).toBeGreaterThanOrEqual(5);
    expect(names.every((n) => /^\d{20}\.seg$/.test(n))).toBe(true);
    const middle = join(dir, names[Math.floor(names.length / 2)] as string);
    const middleRecords = await segmentRecords(middle);
    const victim = middleRecords[Math.floor(middleRecords.length / 2)] as SegmentRecord;
    const bytes = await readFile(middle);
    bytes[victim.pos + 40 + 3] = (bytes[victim.pos + 40 + 3] as number) ^ 0xff;
    await writeFile(middle, bytes);
    const lastPath = join(dir, names[names.length - 1] as string);
    const lastRecords = await segmentRecords(lastPath);
    const torn = lastRecords[lastRecords.length - 1] as SegmentRecord;
    await truncate(lastPath, torn.pos + Math.floor(torn.size / 2));
    const lost = new Set([victim.body.toString(), torn.body.toString()]);
    expect(lost.size).toBe(2);
    expect(bodies.filter((b) => lost.has(b)).length).toBe(2);
    return { names, lost, lastPath, tornAt: torn.pos };
  }

  /**
   * Restarts on the damaged files, checks nothing was renamed, takes every record (RDY 2500,
   * nothing FINished until /stats was read, so no segment is deleted before), then FINs them.
   */
  async function restartAndConsume(node: DaemonProcess, what: string) {
    const dir = join(dataPathOf(node), 'topics', topic);
    const { names, lost, lastPath, tornAt } = await damage(dir);
    const again = await resources.group.restart(node);
    // Nothing renamed or set aside: the same files (the torn one cut back to its last good record).
    expect((await readdir(dir)).sort()).toEqual(names);
    expect((await stat(lastPath)).size).toBe(tornAt);

    const got = new Map<string, number[]>();
    const ids: string[] = [];
    let lastAt = performance.now();
    const c = await subscribe(again, topic, 'c', 2_500, (msg) => {
      const body = msg.body.toString();
      got.set(body, [...(got.get(body) ?? []), msg.attempts]);
      ids.push(msg.id);
      lastAt = msg.receivedAt;
    });
    await waitUntil('every good record', () => got.size >= TOTAL - 2, { timeoutMs: 15_000 });
    await quiet(() => lastAt, 500);
    const s = await topicStats(again.httpAddress, topic);
    for (const id of ids) c.fin(id);
    console.log(
      `[durability] corruption (${what}): ${names.length} segments, delivered ${got.size}/${TOTAL}, corrupt_records ${s.corrupt_records}`,
    );
    expect([...got.keys()].filter((b) => !bodies.includes(b))).toEqual([]);
    expect(new Set(got.keys())).toEqual(new Set(bodies.filter((b) => !lost.has(b))));
    expect([...got.values()].every((a) => a.length === 1)).toBe(true);
    return { again, got, corrupt: s.corrupt_records };
  }

  /**
   * Everything was FINished, so the channel must drain: the offsets lost to the damage (not on
   * disk) may not hold its cursor back, whether they are in the middle or at the end of the log.
   */
  async function drained(node: DaemonProcess): Promise<void> {
    await waitUntil('channel drained', async () => {
      const x = await channelStats(node.httpAddress, topic, 'c');
      if (x.depth === 0 && x.in_flight_count === 0) return true;
      throw new Error(`channel depth ${x.depth}, in flight ${x.in_flight_count}`);
    });
  }

  it('a backlog: skips a flipped record and a torn tail, delivers every good record, renames nothing', {
    timeout: 60_000,
  }, async () => {
    const node = await backlogOnDisk(async () => undefined);
    const { again, corrupt } = await restartAndConsume(node, 'backlog');
    expect(corrupt).toBeGreaterThanOrEqual(1);
    await drained(again);
  });

  it('records in flight at the stop: the restart comes up and redelivers every good one', {
    timeout: 60_000,
  }, async () => {
    // Every record is in flight when nsqd stops, so the restart restores them from the state
    // store and reads each one back from the (damaged) segments.
    const node = await backlogOnDisk(async (n) => {
      let received = 0;
      await subscribe(n, topic, 'c', 2_500, () => {
        received++;
      });
      await waitUntil('all in flight', () => received === TOTAL);
      await waitUntil(
        'all in flight',
        async () => (await channelStats(n.httpAddress, topic, 'c')).in_flight_count === TOTAL,
      );
    });
    const { again, got } = await restartAndConsume(node, 'in flight');
    for (const attempts of got.values()) expect(attempts).toEqual([2]);
    await drained(again);
  });
});

// ---- 7. a full disk ----

/** Why a tmpfs cannot be mounted here (not root, no mount, a container without the right), or null. */
async function probeTmpfs(): Promise<string | null> {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`;
  const dir = await mkdtemp(join(tmpdir(), 'nsq-ts-tmpfs-probe-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    return `cannot mount a tmpfs (${(e.stderr ?? e.message).trim().split('\n')[0]})`;
  }
  await run('umount', [dir]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  return null;
}

const tmpfsUnusable = await probeTmpfs();

describe.skipIf(tmpfsUnusable !== null)(
  `a full disk${tmpfsUnusable === null ? '' : ` — skipped: ${tmpfsUnusable}`}`,
  () => {
    const TMPFS_BYTES = 8 * 1024 * 1024;
    const FILLER_BYTES = 2 * 1024 * 1024;
    let mountPoint = '';

    beforeAll(async () => {
      mountPoint = await mkdtemp(join(tmpdir(), 'nsq-ts-full-disk-'));
      await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', mountPoint]);
    });

    afterAll(async () => {
      if (mountPoint === '') return;
      await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint]));
      await rm(mountPoint, { recursive: true, force: true });
    });

    /** A 1 KiB body that names its index and repeats a pattern derived from it (checkable). */
    function body(tag: string, i: number): Buffer {
      const head = `${tag}-${String(i).padStart(6, '0')}:`;
      const out = Buffer.alloc(1_024);
      out.write(head, 'latin1');
      for (let k = head.length; k < out.length; k++) out[k] = 0x41 + ((i * 7 + k) % 26);
      return out;
    }

    it('fails publishes and /ping while full, heals once space is freed, delivers everything acknowledged', {
      timeout: 90_000,
    }, async () => {
      const dataPath = join(mountPoint, 'data');
      await mkdir(dataPath);
      const filler = join(mountPoint, 'filler');
      await writeFile(filler, Buffer.alloc(FILLER_BYTES, 0x5a));
      const node = await startNsqd(['--mem-queue-size=0'], dataPath);
      const topic = 'full';
      await createChannel(node.httpAddress, topic, 'c');

      const sent = new Map<string, Buffer>();
      const acked = new Set<string>();
      let failure = '';
      const pub = await connect(node);
      for (let seq = 0; failure === ''; ) {
        const batch: Buffer[] = [];
        for (let k = 0; k < 50; k++) {
          const b = body('a', seq++);
          sent.set(b.toString('latin1'), b);
          batch.push(b);
        }
        try {
          await pub.mpub(topic, batch);
          for (const b of batch) acked.add(b.toString('latin1'));
        } catch (err) {
          failure = (err as Error).message;
        }
        expect(sent.size, 'published far more than the disk holds without a failure').toBeLessThan(20_000);
      }
      console.log(`[durability] full disk: ${acked.size} messages acknowledged, then: ${failure}`);
      expect(failure).toMatch(/E_MPUB_FAILED/);
      await pub.closed;

      const ping = await http(node.httpAddress, '/ping');
      expect(ping.status).toBe(500);
      expect(ping.text).toMatch(/^NOK - /);
      // While it is failing, every publish fails: TCP PUB (fatal) and HTTP.
      const pub2 = await connect(node);
      const single = body('x', 0);
      sent.set(single.toString('latin1'), single);
      await expect(pub2.pub(topic, single)).rejects.toThrow(/E_PUB_FAILED/);
      const viaHttp = body('x', 1);
      sent.set(viaHttp.toString('latin1'), viaHttp);
      expect((await http(node.httpAddress, `/pub?topic=${topic}`, { method: 'POST', body: viaHttp })).status).toBe(503);

      // Free space: the node retries on its own (every second) and becomes healthy again.
      await rm(filler);
      await waitUntil(
        '/ping OK again',
        async () => {
          const p = await http(node.httpAddress, '/ping');
          return p.status === 200 && p.text === 'OK';
        },
        { timeoutMs: 15_000, intervalMs: 100 },
      );
      const pub3 = await connect(node);
      const after: Buffer[] = [];
      for (let i = 0; i < 200; i++) after.push(body('b', i));
      for (let i = 0; i < after.length; i += 50) {
        const batch = after.slice(i, i + 50);
        for (const b of batch) sent.set(b.toString('latin1'), b);
        await pub3.mpub(topic, batch);
        for (const b of batch) acked.add(b.toString('latin1'));
      }
      const viaHttpAfter = body('b', 1_000);
      sent.set(viaHttpAfter.toString('latin1'), viaHttpAfter);
      expect((await http(node.httpAddress, `/pub?topic=${topic}`, { method: 'POST', body: viaHttpAfter })).status).toBe(
        200,
      );
      acked.add(viaHttpAfter.toString('latin1'));

      const got = new Map<string, number>();
      let lastAt = performance.now();
      await subscribe(node, topic, 'c', 500, (msg, client) => {
        const b = msg.body.toString('latin1');
        got.set(b, (got.get(b) ?? 0) + 1);
        lastAt = msg.receivedAt;
        client.fin(msg.id);
      });
      await waitUntil(
        'every acknowledged message',
        () => {
          const missing = count(acked, (b) => !got.has(b));
          if (missing > 0) throw new Error(`${missing} of ${acked.size} missing`);
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      await quiet(() => lastAt, 500);
      const foreign = [...got.keys()].filter((b) => !sent.has(b));
      const unackedDelivered = count(got.keys(), (b) => !acked.has(b));
      const duplicates = count(got.values(), (n) => n > 1);
      const s = await topicStats(node.httpAddress, topic);
      console.log(
        `[durability] full disk: delivered ${got.size} (acknowledged ${acked.size}, refused-but-delivered ${unackedDelivered}, ` +
          `duplicates ${duplicates}), corrupt_records ${s.corrupt_records}`,
      );
      expect(foreign.length).toBe(0);
      expect(duplicates).toBe(0);
      expect(s.corrupt_records).toBe(0);
      // And the data path is consistent: a clean stop works.
      await stopCleanly(node);
    });
  },
);
