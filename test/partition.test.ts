/**
 * Network partitions between real processes, made with real packet drops (iptables DROP rules on
 * `lo`, see test/support/firewall.ts): nothing is closed, no FIN or RST crosses, both ends just
 * stop hearing from each other, and each side must notice by its own timers.
 *
 * - nsqd ↔ nsqlookupd: nsqd's lookupd link times out a reply (PING/REGISTER) that never comes
 *   and drops the link; lookupd, which never reads a close, stops listing the nsqd once it has
 *   been silent for --inactive-producer-timeout; after healing nsqd's next PING reconnects and
 *   re-registers everything, including what was created during the partition.
 * - consumer ↔ nsqd: the partitioned consumer's connection is cut (its ephemeral port) and new
 *   connections to nsqd are refused (SYNs dropped) so it cannot reconnect before healing; nsqd
 *   closes it after two missed heartbeats, its in-flight messages time out and go to a second
 *   consumer (nsqjs) whose connection predates the partition; the partitioned consumer notices
 *   by its own read deadline, reconnects once healed, and no message is lost. The same with
 *   autoTouch, whose TOUCHes keep writing into the dead connection.
 *
 * The lookupd test takes ~31 s (nsqd PINGs every 15 s, fixed, so the inactivity timeout must be
 * longer), the consumer tests ~5 s and ~16 s.
 *
 * The suite skips, with the reason in its title, when a probe shows that iptables cannot drop
 * loopback packets here (not root, no iptables, …). Rules carry `nsq-ts-test-<pid>` and are
 * removed after each test, and (after a crashed or killed run) by the next probe.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Consumer, type Message } from '@nsq-ts/client';
import type { ChannelStats, ClientStats, LookupPeer } from '@nsq-ts/protocol';
import type { Nsqjs, NsqjsMessage } from '@nsq-ts/test-utils';
import { describe, expect, it } from 'vitest';
import { Firewall, probeFirewall } from './support/firewall.js';
import { http } from './support/nsq-wire.js';
import { perTestProcesses } from './support/per-test.js';
import { type DaemonProcess, portOf, waitUntil } from './support/processes.js';

const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

// ---- timers ----

/** nsqd PINGs each lookupd every 15 s (fixed, as in NSQ). */
const PING_INTERVAL_MS = 15_000;
/** The shortest inactivity timeout that keeps a healthy nsqd listed between PINGs. */
const INACTIVE_TIMEOUT_S = 17;
/** Heartbeats asked for in IDENTIFY: nsqd's read deadline is twice this, the client's 2× + 1 s. */
const HEARTBEAT_MS = 1_000;
/** nsqd --msg-timeout: long enough for the set-up before the cut, short enough to wait for. */
const MSG_TIMEOUT_S = 4;
/** Slack for "should happen soon" on a busy 2-core machine. */
const SLACK_MS = 8_000;

// ---- per-test resources ----

const unusable = await probeFirewall();
if (unusable !== null) console.warn(`[partition] network partition tests SKIPPED: ${unusable}`);
const firewall = new Firewall();
// Heal first, so closing clients and daemons is not slowed down by dropped packets.
const resources = perTestProcesses({ beforeCleanups: () => firewall.healAll() });

// ---- HTTP helpers ----

async function post(d: DaemonProcess, path: string, body?: string): Promise<void> {
  const r = await http(d.httpAddress, path, { method: 'POST', body });
  if (r.status !== 200) throw new Error(`POST ${path} on ${d.name}: ${r.status} ${r.text}`);
}

/** /lookup?topic= on a lookupd: its channels and producers (none on NSQ's 404). */
async function lookup(l: DaemonProcess, topic: string): Promise<{ channels: string[]; producers: LookupPeer[] }> {
  const r = await http(l.httpAddress, `/lookup?topic=${topic}`);
  if (r.status === 404) return { channels: [], producers: [] };
  if (r.status !== 200) throw new Error(`lookup ${topic} on ${l.name}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
}

function lists(found: { producers: LookupPeer[] }, d: DaemonProcess): boolean {
  return found.producers.some((p) => `${p.broadcast_address}:${p.tcp_port}` === d.tcpAddress);
}

async function channelStats(d: DaemonProcess, topic: string, channel: string): Promise<ChannelStats | undefined> {
  const r = await http(d.httpAddress, `/stats?format=json&topic=${topic}&include_mem=false`);
  if (r.status !== 200) throw new Error(`/stats on ${d.name}: ${r.status} ${r.text}`);
  const s = JSON.parse(r.text) as { topics: Array<{ channels: ChannelStats[] }> | null };
  return s.topics?.[0]?.channels.find((c) => c.channel_name === channel);
}

async function clientsOf(d: DaemonProcess, topic: string, channel: string): Promise<ClientStats[]> {
  return (await channelStats(d, topic, channel))?.clients ?? [];
}

/** `0100007F:1F90` (/proc/net/tcp: the IPv4 address as a little-endian word, port in hex) → `127.0.0.1:8080`. */
function procAddress(hex: string): string {
  const [ip = '', port = ''] = hex.split(':');
  const bytes = [6, 4, 2, 0].map((i) => Number.parseInt(ip.slice(i, i + 2), 16));
  return `${bytes.join('.')}:${Number.parseInt(port, 16)}`;
}

/** Established TCP connections to `port` (their local `ip:port`), from /proc/net/tcp. */
async function establishedTo(port: number): Promise<string[]> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const out: string[] = [];
  // "sl local_address rem_address st …"; st 01 is ESTABLISHED.
  for (const line of table.split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || state !== '01') continue;
    if (procAddress(remote) === `127.0.0.1:${port}`) out.push(procAddress(local));
  }
  return out;
}

function bodiesFor(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function report(title: string, numbers: Record<string, unknown>): void {
  const lines = Object.entries(numbers).map(([k, v]) => `  ${k}: ${v}`);
  console.log(`[partition] ${title}\n${lines.join('\n')}`);
}

// ---- deliveries ----

interface Delivery {
  consumer: string;
  id: string;
  attempts: number;
  body: string;
  at: number;
}

/** Every delivery to every consumer of a test, and which ones were finished. */
class Ledger {
  readonly deliveries: Delivery[] = [];
  /** body → message id, checked to never change between deliveries. */
  readonly idOf = new Map<string, string>();
  readonly finished = new Map<string, Delivery>();

  delivered(d: Delivery): void {
    this.deliveries.push(d);
    const known = this.idOf.get(d.body);
    if (known !== undefined && known !== d.id) {
      throw new Error(`${d.body} came back with id ${d.id}, first delivered as ${known}`);
    }
    this.idOf.set(d.body, d.id);
  }

  finish(d: Delivery): void {
    if (!this.finished.has(d.id)) this.finished.set(d.id, d);
  }

  by(consumer: string): Delivery[] {
    return this.deliveries.filter((d) => d.consumer === consumer);
  }

  missing(bodies: readonly string[]): string[] {
    return bodies.filter((b) => {
      const id = this.idOf.get(b);
      return id === undefined || !this.finished.has(id);
    });
  }
}

// ---- tests ----

/**
 * A consumer with messages in flight is cut off from nsqd (see the file comment); `autoTouch`
 * makes it TOUCH the messages it holds, as a consumer with long-running handlers does.
 */
async function consumerPartition({ autoTouch }: { autoTouch: boolean }): Promise<void> {
  const topic = 'work';
  const channel = 'workers';
  const nsqd = await resources.group.startNsqd({
    name: 'nsqd',
    lookupdTcpAddresses: [],
    args: ['--msg-timeout', `${MSG_TIMEOUT_S}s`],
  });
  await post(nsqd, `/topic/create?topic=${topic}`);
  await post(nsqd, `/channel/create?topic=${topic}&channel=${channel}`);
  const ledger = new Ledger();

  // A: our Consumer, holding its messages (unanswered) until released.
  let holding = true;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const aEvents: Array<{ event: string; at: number; error?: string }> = [];
  const a = new Consumer({
    topic,
    channel,
    nsqdAddresses: [nsqd.tcpAddress],
    clientId: 'partitioned',
    maxInFlight: 5,
    heartbeatIntervalMs: HEARTBEAT_MS,
    dialTimeoutMs: 1_000,
    reconnectMinDelayMs: 200,
    reconnectMaxDelayMs: 1_000,
    closeTimeoutMs: 1_000,
    autoTouch,
  });
  a.on('message', async (m: Message<Buffer>) => {
    const d = { consumer: 'a', id: m.id, attempts: m.attempts, body: m.body.toString(), at: performance.now() };
    ledger.delivered(d);
    if (!holding) {
      ledger.finish(d);
      return;
    }
    // Released after healing: the FIN goes nowhere, as its connection is gone.
    await released;
  });
  a.on('connected', () => aEvents.push({ event: 'connected', at: performance.now() }));
  a.on('disconnected', (_address, err) =>
    aEvents.push({ event: 'disconnected', at: performance.now(), error: err?.message ?? 'clean' }),
  );
  a.on('error', (err) => aEvents.push({ event: 'error', at: performance.now(), error: err.message }));
  resources.defer(() => a.close());
  await a.connect();

  // B: an nsqjs Reader whose connection predates the partition and is never cut.
  const b = new nsq.Reader(topic, channel, {
    nsqdTCPAddresses: [nsqd.tcpAddress],
    maxInFlight: 10,
    heartbeatInterval: HEARTBEAT_MS / 1000,
    clientId: 'unpartitioned',
  });
  const bErrors: Error[] = [];
  b.on('error', (err: Error) => bErrors.push(err));
  b.on('message', (m: NsqjsMessage) => {
    const d = { consumer: 'b', id: m.id, attempts: m.attempts, body: m.body.toString(), at: performance.now() };
    ledger.delivered(d);
    m.finish();
    ledger.finish(d);
  });
  b.connect();
  resources.defer(() => b.close());
  await waitUntil('both consumers subscribed and ready', async () => {
    const clients = await clientsOf(nsqd, topic, channel);
    return clients.length === 2 && clients.every((c) => c.ready_count > 0);
  });

  // 10 messages: A takes 5 (its RDY) and holds them, B finishes the rest.
  const first = bodiesFor('first', 10);
  await post(nsqd, `/mpub?topic=${topic}`, first.join('\n'));
  await waitUntil('A holds 5 messages and B finished the other 5', () => {
    return ledger.by('a').length === 5 && ledger.by('b').length === 5;
  });
  const heldIds = new Set(ledger.by('a').map((d) => d.id));
  const aClient = (await clientsOf(nsqd, topic, channel)).find((c) => c.client_id === 'partitioned');
  expect(aClient).toMatchObject({ in_flight_count: 5 });
  const aPort = portOf((aClient as ClientStats).remote_address);

  // Cut A's connection (its ephemeral port, both directions) and refuse new connections to
  // nsqd, so A cannot come back before healing; B's established connection is untouched.
  await firewall.isolatePort(aPort);
  await firewall.refuseNewConnections(nsqd.tcpPort);
  const cutAt = performance.now();
  nsqd.note(`partitioned consumer A (127.0.0.1:${aPort}); SYNs to :${nsqd.tcpPort} dropped`);
  // Nothing timed out before the cut: what follows is caused by the partition.
  expect(await channelStats(nsqd, topic, channel)).toMatchObject({ timeout_count: 0, in_flight_count: 5 });

  // Published during the partition: only B can get these.
  const during = bodiesFor('during', 10);
  await post(nsqd, `/mpub?topic=${topic}`, during.join('\n'));

  // nsqd: no NOP from A for two heartbeat intervals → read deadline → A is closed.
  await waitUntil(
    'nsqd drops the silent consumer',
    async () => !(await clientsOf(nsqd, topic, channel)).some((c) => c.client_id === 'partitioned'),
    { timeoutMs: 2 * HEARTBEAT_MS + SLACK_MS },
  );
  const droppedByNsqdAfter = performance.now() - cutAt;
  expect(nsqd.logs()).toMatch(new RegExp(`client\\(127\\.0\\.0\\.1:${aPort}\\) read deadline exceeded`));

  // A's held messages time out on nsqd and are redelivered to B, same ids, next attempt.
  await waitUntil(
    "A's in-flight messages are redelivered to B",
    () => [...heldIds].every((id) => ledger.by('b').some((d) => d.id === id && d.attempts >= 2)),
    { timeoutMs: MSG_TIMEOUT_S * 1000 + SLACK_MS },
  );
  const redeliveredAfter = performance.now() - cutAt;

  // A: no heartbeat for 2 intervals + 1 s → its own read deadline drops the connection.
  await waitUntil(
    'A notices the dead connection',
    () => aEvents.find((e) => e.event === 'disconnected' && e.at > cutAt),
    { timeoutMs: 2 * HEARTBEAT_MS + 1_000 + SLACK_MS },
  );
  const aNoticedAfter = (aEvents.find((e) => e.event === 'disconnected' && e.at > cutAt)?.at ?? 0) - cutAt;
  expect(aEvents.find((e) => e.event === 'disconnected' && e.at > cutAt)?.error).toMatch(/heartbeat/);

  // While partitioned A cannot reconnect: its dials time out and it keeps retrying.
  await waitUntil(
    'a failed reconnect attempt by A',
    () => aEvents.some((e) => e.event === 'error' && e.at > cutAt + aNoticedAfter),
    { timeoutMs: SLACK_MS },
  );
  expect(a.stats().connections).toEqual([]);
  expect(aEvents.filter((e) => e.event === 'connected')).toHaveLength(1);

  await firewall.healAll();
  const healedAt = performance.now();
  nsqd.note('healed');
  holding = false;
  release();

  await waitUntil(
    'A reconnects after healing',
    async () => {
      const c = (await clientsOf(nsqd, topic, channel)).find((x) => x.client_id === 'partitioned');
      return c !== undefined && c.ready_count > 0 && portOf(c.remote_address) !== aPort;
    },
    { timeoutMs: SLACK_MS },
  );
  const reconnectedAfterHeal = performance.now() - healedAt;
  expect(aEvents.filter((e) => e.event === 'connected')).toHaveLength(2);

  // After healing both consume again.
  const after = bodiesFor('after', 40);
  await post(nsqd, `/mpub?topic=${topic}`, after.join('\n'));
  const all = [...first, ...during, ...after];
  await waitUntil(
    'every published message finished',
    () => {
      const missing = ledger.missing(all);
      if (missing.length > 0) throw new Error(`${missing.length} unfinished, e.g. ${missing.slice(0, 5).join(' ')}`);
      return true;
    },
    { timeoutMs: SLACK_MS },
  );
  expect(ledger.by('a').filter((d) => d.at > healedAt).length).toBeGreaterThan(0);
  // Every message id finished, each id one body.
  expect(new Set(ledger.idOf.values()).size).toBe(all.length);
  expect(ledger.finished.size).toBe(all.length);
  await waitUntil('the channel is drained', async () => {
    const c = await channelStats(nsqd, topic, channel);
    return c !== undefined && c.depth === 0 && c.in_flight_count === 0 && c.deferred_count === 0 && c;
  });
  expect((await channelStats(nsqd, topic, channel))?.timeout_count).toBeGreaterThanOrEqual(5);
  expect(bErrors).toEqual([]);

  report('consumer ↔ nsqd', {
    published: all.length,
    deliveries: ledger.deliveries.length,
    'nsqd dropped A after the cut': seconds(droppedByNsqdAfter),
    'A noticed after the cut': seconds(aNoticedAfter),
    "A's messages redelivered to B after the cut": seconds(redeliveredAfter),
    'A reconnected after healing': seconds(reconnectedAfterHeal),
  });
}

describe.skipIf(unusable !== null)(
  `network partitions with iptables DROP on lo${unusable === null ? '' : ` — SKIPPED: ${unusable}`}`,
  () => {
    it('nsqd ↔ nsqlookupd: lookupd stops listing the silent nsqd, which re-registers by itself after healing', async () => {
      const topic = 'partitioned_topic';
      const lookupd = await resources.group.startLookupd('lookupd', [
        '--inactive-producer-timeout',
        `${INACTIVE_TIMEOUT_S}s`,
      ]);
      const nsqd = await resources.group.startNsqd({ name: 'nsqd', lookupdTcpAddresses: [lookupd.tcpAddress] });
      const started = performance.now();

      await post(nsqd, `/topic/create?topic=${topic}`);
      await post(nsqd, `/channel/create?topic=${topic}&channel=before`);
      await waitUntil(
        'lookupd lists the nsqd with topic and channel',
        async () => {
          const found = await lookup(lookupd, topic);
          return lists(found, nsqd) && found.channels.includes('before');
        },
        { timeoutMs: SLACK_MS },
      );
      const links = await establishedTo(lookupd.tcpPort);
      expect(links).toHaveLength(1);
      // nsqd's end of the link: the client address lookupd knows it by.
      const oldLink = links[0] as string;

      // Cut the link: every packet to or from lookupd's TCP port is dropped (HTTP still works).
      await firewall.isolatePort(lookupd.tcpPort);
      const cutAt = performance.now();
      for (const p of [nsqd, lookupd]) p.note(`partitioned nsqd ↔ lookupd TCP :${lookupd.tcpPort}`);

      // nsqd notices by itself: its next PING (15 s after start) gets no reply and times out.
      await waitUntil("nsqd's PING to lookupd times out", () => /PING failed - reply timed out/.test(nsqd.logs()), {
        timeoutMs: PING_INTERVAL_MS + SLACK_MS,
      });
      const pingTimedOutAfter = performance.now() - cutAt;

      // Created during the partition: lookupd can only learn it from the re-registration.
      await post(nsqd, `/channel/create?topic=${topic}&channel=during`);

      // lookupd saw no close: it lists the nsqd until it has been silent for the inactivity timeout.
      await waitUntil('lookupd stops listing the silent nsqd', async () => !lists(await lookup(lookupd, topic), nsqd), {
        timeoutMs: INACTIVE_TIMEOUT_S * 1000 + SLACK_MS,
      });
      const unlistedAfterStart = performance.now() - started;
      // Not by a close (lookupd never saw one) but by the inactivity timeout: IDENTIFY at start
      // was the last update (REGISTER does not refresh it and the PING never arrived).
      expect(lookupd.logs()).not.toContain(`CLIENT(${oldLink}): closing`);
      expect(unlistedAfterStart).toBeGreaterThanOrEqual((INACTIVE_TIMEOUT_S - 3) * 1000);
      expect(await lookup(lookupd, topic)).toMatchObject({ producers: [] });

      await firewall.healAll();
      const healedAt = performance.now();
      for (const p of [nsqd, lookupd]) p.note('healed');

      // Nothing else touches nsqd: its next PING reconnects, IDENTIFYs and REGISTERs everything.
      const relisted = await waitUntil(
        'lookupd lists the nsqd again, with both channels',
        async () => {
          const found = await lookup(lookupd, topic);
          return lists(found, nsqd) && found.channels.includes('before') && found.channels.includes('during') && found;
        },
        { timeoutMs: PING_INTERVAL_MS + SLACK_MS },
      );
      const relistedAfterHeal = performance.now() - healedAt;
      expect(relisted.producers).toHaveLength(1);
      expect(relisted.producers[0]).toMatchObject({ broadcast_address: '127.0.0.1', http_port: nsqd.httpPort });

      // One link to lookupd, the new one: no connection left over from dials made while cut off
      // (a dial whose SYN is dropped must be abandoned, not left for the kernel to complete).
      await waitUntil('a single nsqd → lookupd connection', async () => {
        const conns = await establishedTo(lookupd.tcpPort);
        if (conns.length !== 1) throw new Error(`${conns.length} established, from ${conns.join(', ')}`);
        return true;
      });

      report('nsqd ↔ lookupd', {
        'PING timed out after the cut': seconds(pingTimedOutAfter),
        'unlisted after nsqd start': seconds(unlistedAfterStart),
        'relisted after healing': seconds(relistedAfterHeal),
      });
    }, 90_000);

    it(
      'consumer ↔ nsqd: nsqd drops the silent consumer, its in-flight messages go to another, it reconnects after healing, nothing is lost',
      () => consumerPartition({ autoTouch: false }),
      60_000,
    );

    // The client's read deadline counts received data only (socket.setTimeout also counted its
    // own writes, so a consumer sending TOUCHes never noticed a silently dead connection).
    it(
      'consumer ↔ nsqd with autoTouch: the partitioned consumer notices although it keeps writing TOUCH',
      () => consumerPartition({ autoTouch: true }),
      60_000,
    );
  },
);
