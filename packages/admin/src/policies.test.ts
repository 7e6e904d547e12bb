/**
 * nsqadmin's delivery-policy API (nsq-ts nsqd): settings and counters in the snapshot, summed
 * over two real nsqds; setting them on every node (JSON body or query, CSRF as the other
 * actions, NSQ-style 400s); the dead-letter topic list; redrive and replay on both nodes (max
 * bounding the total). A refusal with REPLAY_UNAVAILABLE, which a real nsqd gives only once a
 * segment has aged out, comes from a local HTTP stand-in.
 */
import { createServer, type Server } from 'node:http';
import { startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Admin, createAdmin } from './admin.js';
import type { ClusterSnapshot } from './cluster.js';

interface TopicStats {
  topic_name: string;
  depth: number;
  channels: { channel_name: string; depth: number }[];
}

let nsqds: TestNsqd[] = [];
const admins: Admin[] = [];
const servers: Server[] = [];

async function nsqdPost(n: TestNsqd, path: string): Promise<void> {
  const res = await fetch(`http://${n.httpAddress}${path}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
}

async function admin(options: Parameters<typeof createAdmin>[0]): Promise<Admin> {
  const a = createAdmin({ httpAddress: '127.0.0.1:0', logLevel: 'fatal', ...options });
  admins.push(a);
  await a.start();
  return a;
}

/** A POST to nsqadmin's API as a script sends it (X-Requested-With); `body` goes as JSON. */
async function act<T>(a: Admin, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${a.url}api/${path}`, {
    method: 'POST',
    headers: {
      'X-Requested-With': 'test',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T & { message: string; errors: unknown[] } };
}

async function snapshot(a: Admin): Promise<ClusterSnapshot> {
  return (await fetch(`${a.url}api/snapshot`)).json() as Promise<ClusterSnapshot>;
}

beforeAll(async () => {
  nsqds = [await startNsqd({ broadcastAddress: '127.0.0.1' }), await startNsqd({ broadcastAddress: '127.0.0.1' })];
  for (const n of nsqds) {
    await nsqdPost(n, '/topic/create?topic=orders');
    await nsqdPost(n, '/channel/create?topic=orders&channel=billing');
  }
});

afterEach(async () => {
  for (const a of admins.splice(0)) await a.close();
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const n of nsqds) await n.close();
});

describe('delivery-policy settings', () => {
  it('sets a channel policy on every node and shows it, with the dead-letter topic listed', async () => {
    const a = await admin({ nsqdHttpAddresses: nsqds.map((n) => n.httpAddress) });
    const set = await act(a, 'channel/config', {
      topic: 'orders',
      channel: 'billing',
      max_attempts: 4,
      dead_letter_topic: 'orders.billing.dead',
    });
    expect(set).toMatchObject({ status: 200, body: { action: 'config_channel', message: '', errors: [] } });
    for (const n of nsqds) {
      const res = await fetch(`http://${n.httpAddress}/channel/config?topic=orders&channel=billing`);
      expect(await res.json()).toEqual({ max_attempts: 4, dead_letter_topic: 'orders.billing.dead' });
    }
    const snap = await snapshot(a);
    const billing = snap.topics.find((t) => t.name === 'orders')?.channels.find((c) => c.name === 'billing');
    expect(billing).toMatchObject({
      policy: { maxAttempts: 4, deadLetterTopic: 'orders.billing.dead' },
      policyDiffers: false,
      deadLetteredCount: 0,
    });
    expect(billing?.nodes.map((n) => n.policy?.maxAttempts)).toEqual([4, 4]);
    expect(snap.deadLetterTopics).toEqual([
      {
        name: 'orders.billing.dead',
        exists: false,
        depth: 0,
        messageCount: 0,
        sources: [{ topic: 'orders', channel: 'billing' }],
      },
    ]);

    // One node changed behind nsqadmin's back: the summary says the nodes differ.
    await nsqdPost(nsqds[0], '/channel/config?topic=orders&channel=billing&max_attempts=9');
    const differs = (await snapshot(a)).topics[0]?.channels.find((c) => c.name === 'billing');
    expect(differs?.policyDiffers).toBe(true);
  });

  it('sets a topic policy from the query string, and refuses bad values and forged requests', async () => {
    const a = await admin({ nsqdHttpAddresses: nsqds.map((n) => n.httpAddress) });
    const set = await act(a, 'topic/config?topic=orders&max_depth=50&overflow=drop_oldest');
    expect(set.status).toBe(200);
    const orders = (await snapshot(a)).topics.find((t) => t.name === 'orders');
    expect(orders).toMatchObject({
      policy: { maxDepth: 50, maxBytes: 0, overflow: 'drop_oldest' },
      rejectedCount: 0,
      droppedCount: 0,
    });
    const refusals = await Promise.all([
      act(a, 'channel/config', { topic: 'orders', channel: 'billing', max_attempts: 65536 }),
      act(a, 'channel/config', { topic: 'orders', channel: 'billing', dead_letter_topic: 'no*good' }),
      act(a, 'channel/config', { topic: 'orders', channel: 'billing' }),
      act(a, 'topic/config', { topic: 'orders', overflow: 'block' }),
      act(a, 'topic/config', { topic: 'orders', message_ttl: '-1s' }),
      act(a, 'topic/config', { topic: 'orders', max_depth: -1 }),
    ]);
    expect(refusals.map((r) => [r.status, r.body.message])).toEqual([
      [400, 'INVALID_MAX_ATTEMPTS'],
      [400, 'INVALID_TOPIC'],
      [400, 'MISSING_ARG_CONFIG'],
      [400, 'INVALID_OVERFLOW'],
      [400, 'INVALID_MESSAGE_TTL'],
      [400, 'INVALID_MAX_DEPTH'],
    ]);
    const forged = await fetch(`${a.url}api/topic/config?topic=orders&max_depth=1`, { method: 'POST' });
    expect(forged.status).toBe(403);
    const crossSite = await act(
      a,
      'topic/config',
      { topic: 'orders', max_depth: 1 },
      { 'Sec-Fetch-Site': 'cross-site' },
    );
    expect([crossSite.status, crossSite.body.message]).toEqual([403, 'CROSS_ORIGIN_REQUEST_REFUSED']);
    expect((await snapshot(a)).topics.find((t) => t.name === 'orders')?.policy?.maxDepth).toBe(50);
  });
});

interface Fake {
  address: string;
  requests: string[];
}

/** An nsq-ts nsqd stand-in with topic `orders` (channel billing); replays before `earliestMs` are refused. */
async function fakeNsqd(earliestMs = 0): Promise<Fake> {
  const fake: Fake = { address: '', requests: [] };
  const channel = { channel_name: 'billing', depth: 0, backend_depth: 0, clients: [], paused: false };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'x-nsq-content-type': 'nsq; version=1.0' }).end(JSON.stringify(body));
    const port = (server.address() as { port: number }).port;
    if (url.pathname === '/info') {
      return json(200, {
        version: '1.3.0',
        broadcast_address: '127.0.0.1',
        hostname: 'fake',
        http_port: port,
        tcp_port: 1,
      });
    }
    if (url.pathname === '/stats') {
      const topic = (name: string, depth: number, channels: unknown[]) => ({
        topic_name: name,
        depth,
        backend_depth: 0,
        message_count: depth,
        paused: false,
        channels,
      });
      return json(200, {
        version: '1.3.0',
        health: 'OK',
        start_time: 0,
        topics: [topic('orders', 0, [channel])],
      });
    }
    fake.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (url.pathname === '/channel/replay') {
      if (Number(url.searchParams.get('since')) < earliestMs) {
        return json(400, { message: `REPLAY_UNAVAILABLE: earliest available ${new Date(earliestMs).toISOString()}` });
      }
      return res.writeHead(200).end('OK');
    }
    json(404, { message: 'NOT_FOUND' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  fake.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return fake;
}

describe('redrive and replay (real nsqds)', () => {
  it('redrives on every node that has the dead-letter topic, max bounding the total', async () => {
    // Nodes are asked in address order.
    const sorted = [...nsqds].sort((x, y) => (x.httpAddress < y.httpAddress ? -1 : 1));
    for (const n of sorted) {
      for (const body of ['a', 'b', 'c']) {
        const res = await fetch(`http://${n.httpAddress}/pub?topic=orders.dead`, { method: 'POST', body });
        expect(res.status).toBe(200);
      }
    }
    const a = await admin({ nsqdHttpAddresses: sorted.map((n) => n.httpAddress) });
    const r = await act<{ moved: number }>(a, 'topic/redrive', { topic: 'orders.dead', to: 'orders', max: '4' });
    expect(r).toMatchObject({
      status: 200,
      body: { action: 'redrive_topic', topic: 'orders.dead', moved: 4, errors: [] },
    });
    const depths = async (topic: string, channel?: string) =>
      Promise.all(
        sorted.map(async (n) => {
          const res = await fetch(`http://${n.httpAddress}/stats?format=json&topic=${topic}`);
          const t = ((await res.json()) as { topics: TopicStats[] }).topics.find((x) => x.topic_name === topic);
          return channel === undefined ? t?.depth : t?.channels.find((c) => c.channel_name === channel)?.depth;
        }),
      );
    expect(await depths('orders.dead')).toEqual([0, 2]);
    expect(await depths('orders', 'billing')).toEqual([3, 1]);
    const rest = await act<{ moved: number }>(a, 'topic/redrive?topic=orders.dead&to=orders');
    expect(rest.body.moved).toBe(2);
    expect(await depths('orders', 'billing')).toEqual([3, 3]);
    expect((await act(a, 'topic/redrive', { topic: 'orders.dead' })).body.message).toBe('MISSING_ARG_TO');
  });

  it('replays on every node, and passes on what nsqd refuses', async () => {
    for (const n of nsqds) await nsqdPost(n, '/topic/config?topic=orders&retention=1h');
    const a = await admin({ nsqdHttpAddresses: nsqds.map((n) => n.httpAddress) });
    const ok = await act(a, 'channel/replay', { topic: 'orders', channel: 'billing', offset: '0' });
    expect(ok).toMatchObject({ status: 200, body: { action: 'replay_channel', errors: [] } });
    const past = await act(a, 'channel/replay?topic=orders&channel=billing&offset=1000000');
    expect(past.body.errors).toHaveLength(2);
    expect(past.body.message).toMatch(/^WARNING: .*HTTP 400 INVALID_ARG_OFFSET/);
  });
});

describe('replay refused (nsqd stand-in)', () => {
  it('replays on every node, and passes on a refusal with the earliest time still there', async () => {
    const earliest = Date.parse('2024-06-01T00:00:00Z');
    const [ok, old] = [await fakeNsqd(), await fakeNsqd(earliest)];
    const a = await admin({ nsqdHttpAddresses: [ok.address, old.address] });
    const since = earliest - 1;
    const r = await act(a, 'channel/replay', { topic: 'orders', channel: 'billing', since: String(since) });
    expect(r.status).toBe(200);
    expect(r.body.errors).toEqual([
      {
        source: 'nsqd',
        address: old.address,
        message: `POST http://${old.address}/channel/replay?topic=orders&channel=billing&since=${since}: HTTP 400 REPLAY_UNAVAILABLE: earliest available 2024-06-01T00:00:00.000Z`,
      },
    ]);
    expect(r.body.message).toMatch(/^WARNING: nsqd .*REPLAY_UNAVAILABLE: earliest available 2024-06-01T00:00:00.000Z$/);
    expect(ok.requests).toEqual([`POST /channel/replay?topic=orders&channel=billing&since=${since}`]);
    const rfc = await act(a, 'channel/replay?topic=orders&channel=billing&since=2024-07-01T00:00:00Z');
    expect(rfc.body.errors).toEqual([]);
    expect(ok.requests[1]).toBe('POST /channel/replay?topic=orders&channel=billing&since=2024-07-01T00%3A00%3A00Z');
    const bad = await Promise.all([
      act(a, 'channel/replay', { topic: 'orders', channel: 'billing' }),
      act(a, 'channel/replay', { topic: 'orders', channel: 'billing', since: 'yesterday' }),
    ]);
    expect(bad.map((b) => [b.status, b.body.message])).toEqual([
      [400, 'MISSING_ARG_SINCE'],
      [400, 'INVALID_ARG_SINCE'],
    ]);
  });
});
