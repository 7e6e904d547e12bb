/**
 * The cluster as users run it: 2 nsqlookupd and 3 nsqd as real child processes on 127.0.0.1,
 * nsqjs Readers that find nsqds only through the lookupds, and failures made with real signals
 * (SIGKILL, SIGSTOP, SIGTERM). Every test starts its own cluster on ports the daemons chose
 * (bound to :0), waits on observable state with deadlines (never on sleeps), and leaves nothing
 * running: readers and producers are closed and every process is SIGKILLed and reaped in
 * afterEach.
 *
 * Timers, and why they are what they are:
 * - nsqd PINGs every lookupd every 15 s (fixed, as in NSQ) and only IDENTIFY and PING refresh a
 *   producer's last-update time at nsqlookupd (REGISTER does not). A --inactive-producer-timeout
 *   shorter than 15 s would therefore hide *healthy* nsqds from /lookup between PINGs, as it
 *   would with NSQ. The clusters here use 17 s: the shortest that keeps live nodes listed.
 * - nsqlookupd removes a producer as soon as its TCP connection closes, so a SIGKILLed nsqd
 *   (whose sockets the kernel closes) vanishes from /lookup at once, long before the inactivity
 *   timeout; the timeout is what hides a node that is alive-but-hung with its connection open,
 *   which the SIGSTOP test shows.
 * - nsqd stores what it holds (segment logs + LevelDB, default sync policy): a SIGTERMed nsqd
 *   gives back its queued and in-flight messages after the restart, so the rolling restart
 *   stops each node with messages still in it; a SIGKILLed one loses at most what was
 *   acknowledged since its last flush (--sync-timeout, 2 s), which the SIGKILL test reports.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Producer } from '@nsq-ts/client';
import type { LookupNode, LookupPeer, TopicStats } from '@nsq-ts/protocol';
import type { Nsqjs, NsqjsMessage } from '@nsq-ts/test-utils';
import { describe, expect, it } from 'vitest';
import { http, httpJson } from './support/nsq-wire.js';
import { perTestProcesses } from './support/per-test.js';
import { type DaemonProcess, waitUntil } from './support/processes.js';

const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

// ---- timers ----

const PING_INTERVAL_MS = 15_000;
const INACTIVE_TIMEOUT_S = 17;
const TOMBSTONE_LIFETIME_S = 3;
/** Deadline for anything that should happen "soon" on a busy 2-core machine. */
const SOON_MS = 15_000;

// ---- per-test resources ----

// Clients are deferred cleanups (closed newest first), then every process is killed, whatever
// state it is in.
const resources = perTestProcesses();

// ---- the cluster ----

interface Cluster {
  lookupds: DaemonProcess[];
  nsqds: DaemonProcess[];
}

async function startCluster(): Promise<Cluster> {
  const lookupdArgs = [
    '--inactive-producer-timeout',
    `${INACTIVE_TIMEOUT_S}s`,
    '--tombstone-lifetime',
    `${TOMBSTONE_LIFETIME_S}s`,
  ];
  const lookupds = await Promise.all([0, 1].map((i) => resources.group.startLookupd(`lookupd${i}`, lookupdArgs)));
  const nsqds = await Promise.all(
    [0, 1, 2].map((i) =>
      resources.group.startNsqd({
        name: `nsqd${i}`,
        lookupdTcpAddresses: lookupds.map((l) => l.tcpAddress),
        args: ['--node-id', String(i + 1)],
      }),
    ),
  );
  return { lookupds, nsqds };
}

// ---- HTTP helpers ----

/** /lookup?topic=, or null on NSQ's 404 TOPIC_NOT_FOUND. */
async function lookup(
  l: DaemonProcess,
  topic: string,
): Promise<{ channels: string[]; producers: LookupPeer[] } | null> {
  const r = await http(l.httpAddress, `/lookup?topic=${topic}`);
  if (r.status === 404) {
    expect(JSON.parse(r.text)).toEqual({ message: 'TOPIC_NOT_FOUND' });
    return null;
  }
  if (r.status !== 200) throw new Error(`lookup ${topic} on ${l.name}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

async function nodes(l: DaemonProcess): Promise<LookupNode[]> {
  return (await httpJson<{ producers: LookupNode[] }>(l.httpAddress, '/nodes')).producers;
}

/** The TCP addresses (as consumers dial them) of a producer list, sorted. */
function addressesOf(peers: readonly LookupPeer[]): string[] {
  return peers.map((p) => `${p.broadcast_address}:${p.tcp_port}`).sort();
}

function tcpAddressesOf(ds: readonly DaemonProcess[]): string[] {
  return ds.map((d) => d.tcpAddress).sort();
}

/** Producers of `topic` on every lookupd in `ls` are exactly `expected` (by TCP address). */
async function lookupListsExactly(ls: readonly DaemonProcess[], topic: string, expected: readonly DaemonProcess[]) {
  const want = tcpAddressesOf(expected);
  for (const l of ls) {
    const r = await lookup(l, topic);
    const got = r === null ? [] : addressesOf(r.producers);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${l.name} /lookup?topic=${topic} lists ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }
  return true;
}

async function topicStats(d: DaemonProcess, topic: string): Promise<TopicStats | null> {
  const s = await httpJson<{ topics: TopicStats[] | null }>(
    d.httpAddress,
    `/stats?format=json&topic=${topic}&include_mem=false`,
  );
  return s.topics?.[0] ?? null;
}

async function clientCount(d: DaemonProcess, topic: string, channel: string): Promise<number> {
  const t = await topicStats(d, topic);
  return t?.channels.find((c) => c.channel_name === channel)?.client_count ?? 0;
}

/** Waits until `count` consumers are subscribed to topic/channel on every nsqd in `ds`. */
async function consumersOnEvery(ds: readonly DaemonProcess[], topic: string, channel: string, count: number) {
  await waitUntil(
    `${count} consumers of ${topic}/${channel} on ${ds.map((d) => d.name).join(', ')}`,
    async () => {
      for (const d of ds) if ((await clientCount(d, topic, channel)) < count) return false;
      return true;
    },
    { timeoutMs: SOON_MS },
  );
}

/** MPUB over HTTP; resolves once nsqd answered OK (the message is acknowledged). */
async function mpub(d: DaemonProcess, topic: string, bodies: readonly string[]): Promise<void> {
  const r = await http(d.httpAddress, `/mpub?topic=${topic}`, { method: 'POST', body: bodies.join('\n') });
  if (r.status !== 200 || r.text !== 'OK') throw new Error(`MPUB to ${d.name}: ${r.status} ${r.text}`);
}

// ---- consumers ----

/** What every Reader of a test received: body → times delivered, and when each delivery came. */
class Deliveries {
  readonly counts = new Map<string, number>();
  readonly arrivals: number[] = [];

  add(body: string): void {
    this.counts.set(body, (this.counts.get(body) ?? 0) + 1);
    this.arrivals.push(performance.now());
  }

  get total(): number {
    return this.arrivals.length;
  }

  duplicates(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c - 1;
    return n;
  }

  missing(bodies: Iterable<string>): string[] {
    const out: string[] = [];
    for (const b of bodies) if (!this.counts.has(b)) out.push(b);
    return out;
  }

  /** The longest gap between two consecutive deliveries that both happened before `untilMs`. */
  longestPauseMs(untilMs = Number.POSITIVE_INFINITY): number {
    let longest = 0;
    for (let i = 1; i < this.arrivals.length && (this.arrivals[i] as number) <= untilMs; i++) {
      longest = Math.max(longest, (this.arrivals[i] as number) - (this.arrivals[i - 1] as number));
    }
    return longest;
  }

  async waitForAll(bodies: readonly string[], what: string, timeoutMs = SOON_MS): Promise<void> {
    await waitUntil(
      what,
      () => {
        const missing = this.missing(bodies);
        if (missing.length === 0) return true;
        throw new Error(`${missing.length} of ${bodies.length} not delivered, e.g. ${missing.slice(0, 5).join(' ')}`);
      },
      { timeoutMs },
    );
  }
}

/** An nsqjs Reader that discovers nsqds only through `lookupds`, finishing every message. */
function openReader(topic: string, channel: string, lookupds: readonly DaemonProcess[], sink: Deliveries) {
  const reader = new nsq.Reader(topic, channel, {
    lookupdHTTPAddresses: lookupds.map((l) => `http://${l.httpAddress}`),
    lookupdPollInterval: 1,
    maxInFlight: 30,
  });
  const errors: Error[] = [];
  // Connection errors are expected while nodes die; nsqjs reconnects through the next lookupd poll.
  reader.on('error', (err: Error) => errors.push(err));
  reader.on('message', (msg: NsqjsMessage) => {
    sink.add(msg.body.toString());
    msg.finish();
  });
  reader.connect();
  resources.defer(() => reader.close());
  return { reader, errors };
}

function bodiesFor(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function report(title: string, numbers: Record<string, unknown>): void {
  const lines = Object.entries(numbers).map(([k, v]) => `  ${k}: ${v}`);
  console.log(`[cluster] ${title}\n${lines.join('\n')}`);
}

// ---- tests ----

describe('cluster of real processes: 2 nsqlookupd + 3 nsqd', () => {
  it('registrations show in /nodes and /lookup, and Readers on both lookupds consume from all three nsqds', async () => {
    const { lookupds, nsqds } = await startCluster();
    const topic = 'orders';

    // IDENTIFY on connect: every lookupd lists every nsqd, with no topics yet.
    for (const l of lookupds) {
      const listed = await waitUntil(
        `${l.name} /nodes lists the 3 nsqds`,
        async () => {
          const ns = await nodes(l);
          return JSON.stringify(addressesOf(ns)) === JSON.stringify(tcpAddressesOf(nsqds)) && ns;
        },
        { timeoutMs: PING_INTERVAL_MS },
      );
      for (const d of nsqds) {
        const n = listed.find((x) => x.tcp_port === d.tcpPort);
        expect(n).toMatchObject({ broadcast_address: '127.0.0.1', http_port: d.httpPort, version: '1.3.0' });
        expect(n?.topics).toEqual([]);
        expect(n?.tombstones).toEqual([]);
      }
      expect(await lookup(l, topic)).toBeNull();
    }

    // Publishing creates the topic on each nsqd, which REGISTERs it with both lookupds.
    const sent: string[] = [];
    for (const [i, d] of nsqds.entries()) {
      const bodies = bodiesFor(`before-${i}`, 50);
      await mpub(d, topic, bodies);
      sent.push(...bodies);
    }
    await waitUntil(`/lookup?topic=${topic} lists the 3 nsqds`, () => lookupListsExactly(lookupds, topic, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });
    for (const l of lookupds) {
      for (const n of await nodes(l)) {
        expect(n.topics).toEqual([topic]);
        expect(n.tombstones).toEqual([false]);
      }
    }

    // Two Readers share channel "c"; they know only the lookupds.
    const sink = new Deliveries();
    openReader(topic, 'c', lookupds, sink);
    openReader(topic, 'c', lookupds, sink);
    await consumersOnEvery(nsqds, topic, 'c', 2);
    // SUB created the channel on each nsqd, which REGISTERs it.
    for (const l of lookupds) {
      await waitUntil(`${l.name} lists channel c`, async () => (await lookup(l, topic))?.channels.includes('c'));
    }

    for (const [i, d] of nsqds.entries()) {
      const bodies = bodiesFor(`after-${i}`, 50);
      await mpub(d, topic, bodies);
      sent.push(...bodies);
    }
    await sink.waitForAll(sent, 'every message published to the 3 nsqds');
    report('discovery', { published: sent.length, delivered: sink.total, duplicates: sink.duplicates() });
  }, 60_000);

  it('SIGKILL an nsqd mid-stream: consumers go on with the other two, it leaves /lookup, and comes back after a restart', async () => {
    const { lookupds, nsqds } = await startCluster();
    const topic = 'stream';
    const sink = new Deliveries();
    openReader(topic, 'c', lookupds, sink);
    openReader(topic, 'c', lookupds, sink);

    // A stream of MPUBs to every nsqd in turn. Bodies carry node and incarnation: "node:gen:seq".
    const incarnation = [0, 0, 0];
    const acked: Array<{ body: string; node: number; gen: number }> = [];
    let failedPublishes = 0;
    let streaming = true;
    let seq = 0;
    const stream = (async () => {
      while (streaming) {
        for (let node = 0; node < 3; node++) {
          const gen = incarnation[node] as number;
          const bodies = Array.from({ length: 5 }, () => `${node}:${gen}:${seq++}`);
          try {
            await mpub(nsqds[node] as DaemonProcess, topic, bodies);
            for (const body of bodies) acked.push({ body, node, gen });
          } catch {
            failedPublishes++;
          }
        }
        await delay(5); // pacing, so the stream does not starve the daemons of CPU
      }
    })();
    resources.defer(async () => {
      streaming = false;
      await stream;
    });

    const fromNode = (node: number, gen?: number) =>
      acked.filter((a) => a.node === node && (gen === undefined || a.gen === gen)).map((a) => a.body);
    const deliveredFrom = (node: number, gen: number) =>
      [...sink.counts.keys()].filter((b) => b.startsWith(`${node}:${gen}:`)).length;

    await consumersOnEvery(nsqds, topic, 'c', 2);
    await waitUntil('deliveries from all 3 nsqds', () => [0, 1, 2].every((n) => deliveredFrom(n, 0) >= 50), {
      timeoutMs: SOON_MS,
    });

    // SIGKILL nsqd2 while messages flow.
    const victim = nsqds[2] as DaemonProcess;
    const deliveredAtKill = sink.total;
    const killedAt = performance.now();
    const exit = await victim.stop('SIGKILL');
    incarnation[2] = 1; // anything acknowledged from now on came from the restarted process
    expect(exit.signal).toBe('SIGKILL');

    // Its connections to the lookupds closed with it: NSQ's lookupd drops a producer on
    // disconnect, so it leaves /lookup and /nodes without waiting for the inactivity timeout.
    const survivors = nsqds.slice(0, 2);
    await waitUntil('the killed nsqd leaves /lookup', () => lookupListsExactly(lookupds, topic, survivors), {
      timeoutMs: SOON_MS,
    });
    const goneAfterMs = performance.now() - killedAt;
    expect(goneAfterMs).toBeLessThan(INACTIVE_TIMEOUT_S * 1000);
    for (const l of lookupds) expect(addressesOf(await nodes(l))).toEqual(tcpAddressesOf(survivors));

    // Consumers keep consuming from the other two.
    await waitUntil('deliveries after the kill', () => sink.total >= deliveredAtKill + 200, { timeoutMs: SOON_MS });

    // Restart it on the same ports: IDENTIFY puts it back in /nodes at once; the stream's next
    // MPUB re-creates the topic (and the channel "c" the lookupds know), which it REGISTERs.
    const restarted = await resources.group.restart(victim);
    nsqds[2] = restarted;
    await waitUntil('the restarted nsqd back in /lookup', () => lookupListsExactly(lookupds, topic, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });
    for (const l of lookupds) expect(addressesOf(await nodes(l))).toEqual(tcpAddressesOf(nsqds));
    // The Readers reconnect by themselves (next lookupd poll) and get what is published to it.
    await consumersOnEvery([restarted], topic, 'c', 2);
    await waitUntil('deliveries from the restarted nsqd', () => deliveredFrom(2, 1) >= 100, { timeoutMs: SOON_MS });

    streaming = false;
    await stream;
    // Everything acknowledged by a live process is delivered: nsqd0, nsqd1 throughout, and the
    // restarted nsqd2. Of what the killed process acknowledged, what it had not flushed (its
    // last --sync-timeout) is gone: reported, not asserted.
    const mustArrive = [...fromNode(0), ...fromNode(1), ...fromNode(2, 1)];
    await sink.waitForAll(mustArrive, 'every message acknowledged by a surviving or restarted nsqd');
    const lostWithKilled = sink.missing(fromNode(2, 0)).length;
    report('SIGKILL mid-stream', {
      acknowledged: acked.length,
      'acknowledged by survivors or the restarted node, all delivered': mustArrive.length,
      'acknowledged by the killed node': fromNode(2, 0).length,
      'lost with the killed node (not yet flushed)': lostWithKilled,
      'failed publishes while it was down': failedPublishes,
      duplicates: sink.duplicates(),
      'left /lookup after (ms)': Math.round(goneAfterMs),
    });
  }, 60_000);

  it('a hung nsqd (SIGSTOP) is hidden from /lookup once its last PING is older than --inactive-producer-timeout', async () => {
    const { lookupds, nsqds } = await startCluster();
    const topic = 'hung';
    for (const d of nsqds) await mpub(d, topic, ['x']);
    await waitUntil('3 producers in /lookup', () => lookupListsExactly(lookupds, topic, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });

    const victim = nsqds[1] as DaemonProcess;
    victim.signal('SIGSTOP'); // its TCP connections stay open; it just stops PINGing
    const lastPingMs = new Map<DaemonProcess, number>();
    for (const l of lookupds) {
      const debug = await httpJson<Record<string, Array<{ http_port: number; last_update: number }>>>(
        l.httpAddress,
        '/debug',
      );
      const peers = Object.values(debug)
        .flat()
        .filter((p) => p.http_port === victim.httpPort);
      expect(peers.length).toBeGreaterThan(0);
      lastPingMs.set(l, Math.max(...peers.map((p) => p.last_update)) / 1e6);
    }

    const alive = [nsqds[0], nsqds[2]] as DaemonProcess[];
    for (const l of lookupds) {
      await waitUntil(`${l.name} hides the hung nsqd`, () => lookupListsExactly([l], topic, alive), {
        timeoutMs: (INACTIVE_TIMEOUT_S + 5) * 1000,
        intervalMs: 100,
      });
      const hiddenAfterMs = Date.now() - (lastPingMs.get(l) as number);
      // Not before the timeout (a live node must not vanish early), not long after it.
      expect(hiddenAfterMs).toBeGreaterThanOrEqual(INACTIVE_TIMEOUT_S * 1000 - 100);
      expect(hiddenAfterMs).toBeLessThan((INACTIVE_TIMEOUT_S + 5) * 1000);
      // /nodes filters inactive producers too; /debug still has it (still connected, registered).
      expect(addressesOf(await nodes(l))).toEqual(tcpAddressesOf(alive));
      const debug = await http(l.httpAddress, '/debug');
      expect(debug.text).toContain(`"http_port":${victim.httpPort}`);
      report(`hung nsqd on ${l.name}`, { 'hidden after its last PING (ms)': Math.round(hiddenAfterMs) });
    }

    // SIGCONT: its overdue PING timer fires, and it is listed again.
    const resumedAt = performance.now();
    victim.signal('SIGCONT');
    await waitUntil('the resumed nsqd back in /lookup', () => lookupListsExactly(lookupds, topic, nsqds), {
      timeoutMs: PING_INTERVAL_MS + 5_000,
    });
    report('hung nsqd resumed', { 'back in /lookup after SIGCONT (ms)': Math.round(performance.now() - resumedAt) });
  }, 60_000);

  it('SIGKILL a lookupd: discovery goes on through the other one', async () => {
    const { lookupds, nsqds } = await startCluster();
    const before = 'before-kill';
    const sent: string[] = [];
    for (const [i, d] of nsqds.entries()) {
      const bodies = bodiesFor(`${before}-${i}`, 20);
      await mpub(d, before, bodies);
      sent.push(...bodies);
    }
    await waitUntil('3 producers in /lookup', () => lookupListsExactly(lookupds, before, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });

    const [dead, survivor] = lookupds as [DaemonProcess, DaemonProcess];
    expect((await dead.stop('SIGKILL')).signal).toBe('SIGKILL');

    // A Reader created after the kill, configured with both (the dead one first), finds all nsqds.
    const sink = new Deliveries();
    openReader(before, 'c', lookupds, sink);
    await consumersOnEvery(nsqds, before, 'c', 1);
    await sink.waitForAll(sent, `every message of ${before}`);

    // A topic that first exists after the kill: the nsqds register it with the survivor.
    const after = 'after-kill';
    const sentAfter: string[] = [];
    for (const [i, d] of nsqds.entries()) {
      const bodies = bodiesFor(`${after}-${i}`, 20);
      await mpub(d, after, bodies);
      sentAfter.push(...bodies);
    }
    await waitUntil(`${after} in the survivor's /lookup`, () => lookupListsExactly([survivor], after, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });
    const sinkAfter = new Deliveries();
    openReader(after, 'c', lookupds, sinkAfter);
    await consumersOnEvery(nsqds, after, 'c', 1);
    await sinkAfter.waitForAll(sentAfter, `every message of ${after}`);
    for (const d of nsqds) expect(d.running).toBe(true);
    report('lookupd killed', { [before]: sink.total, [after]: sinkAfter.total });
  }, 60_000);

  it('a tombstoned producer is hidden from /lookup for --tombstone-lifetime, flagged in /nodes, then back', async () => {
    const { lookupds, nsqds } = await startCluster();
    const topic = 'tomb';
    for (const d of nsqds) await mpub(d, topic, ['x']);
    await waitUntil('3 producers in /lookup', () => lookupListsExactly(lookupds, topic, nsqds), {
      timeoutMs: PING_INTERVAL_MS,
    });

    const [l0, l1] = lookupds as [DaemonProcess, DaemonProcess];
    const victim = nsqds[2] as DaemonProcess;
    const others = nsqds.slice(0, 2);
    const requestedAt = Date.now();
    const r = await http(l0.httpAddress, `/topic/tombstone?topic=${topic}&node=127.0.0.1:${victim.httpPort}`, {
      method: 'POST',
    });
    expect(r).toEqual({ status: 200, text: '' });

    // Hidden from /lookup on that lookupd; /nodes still lists it, with tombstones[i] = true.
    await lookupListsExactly([l0], topic, others);
    const listed = await nodes(l0);
    expect(addressesOf(listed)).toEqual(tcpAddressesOf(nsqds));
    for (const n of listed) {
      expect(n.topics).toEqual([topic]);
      expect(n.tombstones).toEqual([n.tcp_port === victim.tcpPort]);
    }
    // A tombstone is per lookupd (nsqadmin sends it to each one).
    await lookupListsExactly([l1], topic, nsqds);

    // Back once the lifetime is over, and not before.
    await waitUntil(
      'the tombstoned producer back in /lookup',
      async () => {
        const back = addressesOf((await lookup(l0, topic))?.producers ?? []).includes(victim.tcpAddress);
        if (back) return true;
        await lookupListsExactly([l0], topic, others); // meanwhile the other two stay listed
        return false;
      },
      { timeoutMs: (TOMBSTONE_LIFETIME_S + 5) * 1000, intervalMs: 50 },
    );
    const backAfterMs = Date.now() - requestedAt;
    expect(backAfterMs).toBeGreaterThanOrEqual(TOMBSTONE_LIFETIME_S * 1000 - 20);
    for (const n of await nodes(l0)) expect(n.tombstones).toEqual([false]);
    report('tombstone', { 'back in /lookup after (ms)': backAfterMs });
  }, 60_000);

  it('rolling restart: each nsqd SIGTERMed with messages in it and started again while producers publish; every acknowledged message is delivered', async () => {
    const { lookupds, nsqds } = await startCluster();
    const topic = 'rolling';
    const channel = 'c';
    const sink = new Deliveries();
    const readers = [openReader(topic, channel, lookupds, sink), openReader(topic, channel, lookupds, sink)];

    // The producer pool: one @nsq-ts/client Producer per nsqd (each reconnects by itself) and a
    // round-robin over the nodes not being restarted. Bodies: "node:incarnation:seq".
    const producers = nsqds.map(
      (d) =>
        new Producer({
          nsqdAddress: d.tcpAddress,
          reconnectMinDelayMs: 50,
          reconnectMaxDelayMs: 500,
          publishTimeoutMs: 20_000,
        }),
    );
    for (const p of producers) resources.defer(() => p.close());
    const enabled = [true, true, true];
    const pending = [0, 0, 0];
    const incarnation = [0, 0, 0];
    const acked: string[] = [];
    const publishErrors: string[] = [];
    let publishing = true;
    let seq = 0;
    let turn = 0;
    const worker = async () => {
      while (publishing) {
        const candidates = [0, 1, 2].filter((n) => enabled[n]);
        const node = candidates[turn++ % candidates.length] as number;
        const body = `${node}:${incarnation[node]}:${seq++}`;
        pending[node]++;
        try {
          await (producers[node] as Producer).publish(topic, body);
          acked.push(body);
        } catch (err) {
          publishErrors.push(`${body}: ${(err as Error).message}`);
        } finally {
          pending[node]--;
        }
        await delay(2); // pacing: ~a few hundred messages a second, leaving CPU to the daemons
      }
    };
    const workers = [worker(), worker()];
    resources.defer(async () => {
      publishing = false;
      await Promise.all(workers);
    });

    const restarts: Array<Record<string, number>> = [];
    const heldAtStop: number[] = [];
    for (let i = 0; i < 3; i++) {
      // Steady state first: messages flowing, both Readers connected to every nsqd (for the
      // nodes already restarted, this is the Readers having reconnected by themselves).
      const base = sink.total;
      await waitUntil('steady delivery', () => sink.total >= base + 300, { timeoutMs: SOON_MS });
      await consumersOnEvery(nsqds, topic, channel, readers.length);

      const d = nsqds[i] as DaemonProcess;
      const t0 = performance.now();
      // 1. Stop publishing to it and let its outstanding publishes be answered.
      enabled[i] = false;
      await waitUntil(`no publish outstanding to ${d.name}`, () => pending[i] === 0, { timeoutMs: SOON_MS });
      // 2. No drain: whatever it still holds (queued, in flight to the Readers) is stored at
      // the SIGTERM and delivered again by the restarted process.
      const held = await topicStats(d, topic);
      heldAtStop.push(
        (held?.depth ?? 0) +
          (held?.channels ?? []).reduce((n, c) => n + c.depth + c.in_flight_count + c.deferred_count, 0),
      );
      const t1 = performance.now();
      // 3. SIGTERM (clean shutdown, exit 0) and start it again on the same ports.
      const exit = await d.stop('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      const t2 = performance.now();
      nsqds[i] = await resources.group.restart(d);
      incarnation[i] = 1;
      enabled[i] = true;
      const t3 = performance.now();
      // 4. Messages published to the new process reach the Readers.
      await waitUntil(
        `deliveries from the restarted ${d.name}`,
        () => [...sink.counts.keys()].some((b) => b.startsWith(`${i}:1:`)),
        { timeoutMs: SOON_MS },
      );
      restarts.push({
        quiesceMs: Math.round(t1 - t0),
        stopMs: Math.round(t2 - t1),
        startMs: Math.round(t3 - t2),
        firstDeliveryAfterStartMs: Math.round(performance.now() - t3),
      });
    }

    // After the last restart: steady again, and the Readers are back on every node.
    const base = sink.total;
    await waitUntil('steady delivery after the last restart', () => sink.total >= base + 300, { timeoutMs: SOON_MS });
    await consumersOnEvery(nsqds, topic, channel, readers.length);
    publishing = false;
    await Promise.all(workers);
    const stoppedAt = performance.now();

    await sink.waitForAll(acked, 'every acknowledged message', 20_000);
    expect(publishErrors).toEqual([]);
    const perNode = [0, 1, 2].map(
      (n) =>
        `nsqd${n}: ${acked.filter((b) => b.startsWith(`${n}:0:`)).length}+${acked.filter((b) => b.startsWith(`${n}:1:`)).length}`,
    );
    report('rolling restart', {
      'messages acknowledged': acked.length,
      'messages delivered (unique)': sink.counts.size,
      deliveries: sink.total,
      duplicates: sink.duplicates(),
      'lost (acknowledged, never delivered)': sink.missing(acked).length,
      'longest pause in delivery (ms)': Math.round(sink.longestPauseMs(stoppedAt)),
      'acknowledged per node (before+after its restart)': perNode.join(', '),
      'reader connection errors (reconnected through lookupd)': readers.map((r) => r.errors.length).join(', '),
      'messages held by each node at its SIGTERM': heldAtStop.join(', '),
      'restarts (quiesce/stop/start/first delivery ms)': restarts
        .map((r, i) => `nsqd${i} ${r.quiesceMs}/${r.stopMs}/${r.startMs}/${r.firstDeliveryAfterStartMs}`)
        .join(', '),
    });
  }, 90_000);
});
