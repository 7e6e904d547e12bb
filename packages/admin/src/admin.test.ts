import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, RawClient, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Admin } from './admin.js';
import { createAdmin, redactUrl } from './admin.js';
import type { ClusterError, ClusterSnapshot, LookupdSummary, NodeSummary, TopicSummary } from './cluster.js';
import { compareVersions } from './cluster.js';
import { CounterDeltas } from './counter-deltas.js';
import { csrfRefusal } from './csrf.js';
import { parseAdminArgs } from './flags.js';
import { RateHistory, type RateSeries } from './rate-history.js';

// Two lookupds and two nsqds registered with both, read by nsqadmin only through their HTTP APIs.
let lookupds: TestLookupd[] = [];
let nsqds: TestNsqd[] = [];
let dead = '';
const admins: Admin[] = [];

/** A 127.0.0.1 port nothing listens on. */
async function deadAddress(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `127.0.0.1:${address.port}`;
}

async function post(address: string, path: string): Promise<void> {
  const res = await fetch(`http://${address}${path}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

async function getJson<T>(address: string, path: string): Promise<T> {
  return (await fetch(`http://${address}${path}`)).json() as Promise<T>;
}

interface NsqdTopics {
  topics: null | Array<{
    topic_name: string;
    paused: boolean;
    channels: Array<{ channel_name: string; depth: number; paused: boolean }>;
  }>;
}

async function nsqdTopic(n: TestNsqd, topic: string) {
  const stats = await getJson<NsqdTopics>(n.httpAddress, `/stats?format=json&topic=${topic}`);
  return (stats.topics ?? []).find((t) => t.topic_name === topic);
}

async function lookupTopics(l: TestLookupd): Promise<string[]> {
  return (await getJson<{ topics: string[] }>(l.httpAddress, '/topics')).topics;
}

async function admin(options: Parameters<typeof createAdmin>[0] = {}): Promise<Admin> {
  const a = createAdmin({
    httpAddress: '127.0.0.1:0',
    lookupdHttpAddresses: lookupds.map((l) => l.httpAddress),
    logLevel: 'fatal',
    ...options,
  });
  admins.push(a);
  await a.start();
  return a;
}

/** A call of nsqadmin's API; state-changing ones carry X-Requested-With, as scripts must (csrf.ts). */
async function api<T>(a: Admin, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const headers = { ...(init.method === undefined ? {} : { 'X-Requested-With': 'test' }), ...init.headers };
  const res = await fetch(`${a.url}api/${path}`, { ...init, headers });
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  lookupds = [await startLookupd(), await startLookupd()];
  const lookupdTcpAddresses = lookupds.map((l) => l.tcpAddress);
  nsqds = [
    await startNsqd({ lookupdTcpAddresses, broadcastAddress: '127.0.0.1' }),
    await startNsqd({ lookupdTcpAddresses, broadcastAddress: '127.0.0.1' }),
  ];
  dead = await deadAddress();
  await eventually(async () => {
    for (const l of lookupds) {
      const nodes = await getJson<{ producers: unknown[] }>(l.httpAddress, '/nodes');
      expect(nodes.producers).toHaveLength(2);
    }
  });
});

afterAll(async () => {
  for (const n of nsqds) await n.close();
  for (const l of lookupds) await l.close();
});

afterEach(async () => {
  for (const a of admins.splice(0)) await a.close();
});

describe('aggregation', () => {
  it('sums topics and channels over the nodes, with a per-node breakdown', async () => {
    const [n1, n2] = nsqds;
    for (const n of nsqds) await post(n.httpAddress, '/topic/create?topic=agg');
    await post(n1.httpAddress, '/channel/create?topic=agg&channel=c1');
    await post(n2.httpAddress, '/channel/create?topic=agg&channel=c1');
    await post(n2.httpAddress, '/channel/create?topic=agg&channel=c2');
    await fetch(`http://${n1.httpAddress}/mpub?topic=agg`, { method: 'POST', body: 'a\nb\nc' });
    await fetch(`http://${n2.httpAddress}/mpub?topic=agg`, { method: 'POST', body: 'd\ne' });
    const a = await admin();

    const { body } = await api<{ topics: TopicSummary[]; errors: ClusterError[] }>(a, 'topics');
    const agg = body.topics.find((t) => t.name === 'agg');
    expect(body.errors).toEqual([]);
    expect(agg).toMatchObject({ messageCount: 5, channelCount: 2, paused: false });
    // The backlog is in the channels (the topic's own depth is 0 once they exist).
    expect(agg).toMatchObject({ depth: 0, totalDepth: 7, deepestChannel: { name: 'c1', depth: 5, paused: false } });
    expect(agg?.nodes.map((n) => [n.node, n.totalDepth]).sort()).toEqual(
      [
        [n1.httpAddress, 3],
        [n2.httpAddress, 4],
      ].sort(),
    );
    expect(agg?.nodes.map((n) => [n.node, n.messageCount, n.channelCount]).sort()).toEqual(
      [
        [n1.httpAddress, 3, 1],
        [n2.httpAddress, 2, 2],
      ].sort(),
    );

    const topic = await api<{ topic: TopicSummary }>(a, 'topics/agg');
    const c1 = topic.body.topic.channels.find((c) => c.name === 'c1');
    expect(c1).toMatchObject({ depth: 5, messageCount: 5 });
    expect(c1?.nodes.map((n) => n.depth).sort()).toEqual([2, 3]);
    expect(topic.body.topic.channels.find((c) => c.name === 'c2')).toMatchObject({ depth: 2 });

    const channel = await api<{ channel: { name: string; depth: number; clients: unknown[] } }>(a, 'topics/agg/c2');
    expect(channel.body.channel).toMatchObject({ name: 'c2', depth: 2, clients: [] });
    expect((await api(a, 'topics/agg/nope')).status).toBe(404);
    expect((await api(a, 'topics/nope')).status).toBe(404);

    const nodes = await api<{ nodes: NodeSummary[]; lookupds: LookupdSummary[] }>(a, 'nodes');
    expect(nodes.body.lookupds).toEqual(
      lookupds.map((l) => ({ address: l.httpAddress, reachable: true, error: null, version: '1.3.0', nodeCount: 2 })),
    );
    expect(nodes.body.nodes.map((n) => n.id).sort()).toEqual(nsqds.map((n) => n.httpAddress).sort());
    for (const node of nodes.body.nodes) {
      expect(node).toMatchObject({ version: '1.3.0', outOfDate: false, reachable: true, error: null, health: 'OK' });
      expect(node.startTime).toBeGreaterThan(1_600_000_000);
      expect(node.startTime).toBeLessThanOrEqual(Date.now() / 1000);
      expect(node.topics).toContainEqual({ name: 'agg', tombstoned: false });
    }

    const lookup = await api<{ topics: Array<{ name: string; channels: string[] }> }>(a, 'lookup');
    expect(lookup.body.topics).toContainEqual({
      name: 'agg',
      channels: ['c1', 'c2'],
      producers: nsqds.map((n) => n.httpAddress).sort(),
    });
  });

  it('reports unreachable lookupds and nsqds and shows the rest', async () => {
    const a = await admin({
      lookupdHttpAddresses: [lookupds[0].httpAddress, dead],
      nsqdHttpAddresses: [dead],
    });
    const snap = (await api<ClusterSnapshot>(a, 'snapshot')).body;
    expect(snap.nodes).toHaveLength(2);
    expect(snap.errors.map((e) => [e.source, e.address]).sort()).toEqual([
      ['lookupd', dead],
      ['nsqd', dead],
    ]);
    expect(snap.errors[0].message).toMatch(/ECONNREFUSED/);
    expect(snap.lookupds.find((l) => l.address === dead)).toMatchObject({ reachable: false, nodeCount: 0 });
    expect(snap.lookupds.find((l) => l.address === dead)?.error).toMatch(/ECONNREFUSED/);
    // /metrics counts the failed upstream calls per address.
    const metrics = await (await fetch(`${a.url}metrics`)).text();
    for (const source of ['lookupd', 'nsqd']) {
      const line = new RegExp(`^nsqadmin_upstream_errors_total\\{source="${source}",address="${dead}"\\} (\\d+)$`, 'm');
      expect(Number(line.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    }
    expect(metrics).toMatch(/^process_cpu_user_seconds_total /m);
    await eventually(async () =>
      expect(await (await fetch(`${a.url}metrics`)).text()).toMatch(
        /^nsqadmin_samples_total\{result="partial"\} \d+$/m,
      ),
    );

    const direct = await admin({ lookupdHttpAddresses: [], nsqdHttpAddresses: [nsqds[0].httpAddress, dead] });
    const nodes = await api<{ nodes: NodeSummary[]; errors: ClusterError[] }>(direct, 'nodes');
    expect(nodes.body.nodes.map((n) => n.id)).toEqual([nsqds[0].httpAddress]);
    expect(nodes.body.errors).toEqual([expect.objectContaining({ source: 'nsqd', address: dead })]);
  });

  it('flags nodes with a lower version as out of date', () => {
    expect(compareVersions('1.2.1', '1.3.0')).toBeLessThan(0);
    expect(compareVersions('1.10.0', '1.9.9')).toBeGreaterThan(0);
    expect(compareVersions('1.3.0-alpha', '1.3.0')).toBe(0);
  });
});

describe('actions', () => {
  it('pause, unpause, empty and delete topics and channels on every producer', async () => {
    for (const n of nsqds) await post(n.httpAddress, '/topic/create?topic=act');
    for (const n of nsqds) await post(n.httpAddress, '/channel/create?topic=act&channel=ch');
    await fetch(`http://${nsqds[0].httpAddress}/pub?topic=act`, { method: 'POST', body: 'x' });
    await eventually(async () => expect(await lookupTopics(lookupds[0])).toContain('act'));
    const a = await admin();
    const act = (path: string) => api<{ errors: ClusterError[] }>(a, path, { method: 'POST' });

    expect((await act('topic/pause?topic=act')).body.errors).toEqual([]);
    for (const n of nsqds) expect((await nsqdTopic(n, 'act'))?.paused).toBe(true);
    await act('topic/unpause?topic=act');
    for (const n of nsqds) expect((await nsqdTopic(n, 'act'))?.paused).toBe(false);

    await act('channel/pause?topic=act&channel=ch');
    for (const n of nsqds) expect((await nsqdTopic(n, 'act'))?.channels[0].paused).toBe(true);
    expect((await nsqdTopic(nsqds[0], 'act'))?.channels[0].depth).toBe(1);
    await act('channel/empty?topic=act&channel=ch');
    expect((await nsqdTopic(nsqds[0], 'act'))?.channels[0].depth).toBe(0);
    await act('channel/delete?topic=act&channel=ch');
    for (const n of nsqds) expect((await nsqdTopic(n, 'act'))?.channels).toEqual([]);

    await act('topic/delete?topic=act');
    for (const n of nsqds) expect(await nsqdTopic(n, 'act')).toBeUndefined();
    await eventually(async () => expect(await lookupTopics(lookupds[1])).not.toContain('act'));
    expect((await api(a, 'topic/pause', { method: 'POST' })).status).toBe(400);
    expect((await api(a, 'topic/explode?topic=x', { method: 'POST' })).status).toBe(404);
  });

  it('creates topics and channels through the lookupds and tombstones a producer', async () => {
    const a = await admin();
    await api(a, 'topic/create?topic=made', { method: 'POST' });
    for (const l of lookupds) expect(await lookupTopics(l)).toContain('made');
    await api(a, 'channel/create?topic=made&channel=mc', { method: 'POST' });
    const lookup = await api<{ topics: Array<{ name: string; channels: string[] }> }>(a, 'lookup');
    // Created through the lookupds only: no nsqd produces it yet (an inactive topic).
    expect(lookup.body.topics).toContainEqual({ name: 'made', channels: ['mc'], producers: [] });

    await fetch(`http://${nsqds[1].httpAddress}/pub?topic=tomb`, { method: 'POST', body: 'x' });
    await eventually(async () => expect(await lookupTopics(lookupds[0])).toContain('tomb'));
    const node = nsqds[1].httpAddress;
    const res = await api<{ errors: ClusterError[] }>(a, `topic/tombstone?topic=tomb&node=${node}`, { method: 'POST' });
    expect(res.body.errors).toEqual([]);
    expect(await nsqdTopic(nsqds[1], 'tomb')).toBeUndefined();
    const lookup2 = await getJson<{ producers: unknown[] }>(lookupds[0].httpAddress, '/lookup?topic=tomb');
    expect(lookup2.producers ?? []).toEqual([]);
  });

  it('lets only admin users act, named by the ACL header', async () => {
    const a = await admin({ adminUsers: ['alice'], aclHttpHeader: 'X-Forwarded-User' });
    const pause = (headers: Record<string, string>) =>
      api<{ message?: string }>(a, 'topic/create?topic=acl', { method: 'POST', headers });
    expect(await pause({})).toEqual({ status: 403, body: { message: 'FORBIDDEN' } });
    expect((await pause({ 'X-Forwarded-User': 'bob' })).status).toBe(403);
    expect(await lookupTopics(lookupds[0])).not.toContain('acl');
    expect((await pause({ 'X-Forwarded-User': 'alice' })).status).toBe(200);
    expect(await lookupTopics(lookupds[0])).toContain('acl');
    expect((await api<{ admin: boolean }>(a, 'me', { headers: { 'X-Forwarded-User': 'bob' } })).body.admin).toBe(false);
  });

  it('--admin-password-file: actions need the password (Bearer) or a login session cookie', async () => {
    const a = await admin({ adminPassword: 'hunter2 pw' });
    const create = (headers: Record<string, string> = {}) =>
      api<{ message?: string }>(a, 'topic/create?topic=logged', { method: 'POST', headers });
    expect(await create()).toEqual({ status: 401, body: { message: 'UNAUTHORIZED' } });
    expect((await create({ Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await api(a, 'channel/create?topic=logged&channel=c', { method: 'POST' })).status).toBe(401);
    expect(await lookupTopics(lookupds[0])).not.toContain('logged');
    expect((await api<{ loginRequired: boolean; loggedIn: boolean }>(a, 'me')).body).toMatchObject({
      loginRequired: true,
      loggedIn: false,
    });
    // Reads stay open.
    expect((await api(a, 'topics')).status).toBe(200);

    const login = (password: unknown) =>
      fetch(`${a.url}api/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ password }),
      });
    expect((await login('nope')).status).toBe(401);
    expect((await login(1)).status).toBe(401);
    const ok = await login('hunter2 pw');
    expect(ok.status).toBe(200);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^nsqadmin_session=[\w-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    const session = { Cookie: setCookie.split(';')[0] as string };
    expect((await api<{ loggedIn: boolean }>(a, 'me', { headers: session })).body.loggedIn).toBe(true);
    expect((await create(session)).status).toBe(200);
    expect(await lookupTopics(lookupds[0])).toContain('logged');
    expect((await create({ Authorization: 'Bearer hunter2 pw' })).status).toBe(401); // no spaces in a token
    const logout = await fetch(`${a.url}api/logout`, {
      method: 'POST',
      headers: { ...session, 'X-Requested-With': 'test' },
    });
    expect(logout.status).toBe(200);
    expect((await create(session)).status).toBe(401);
    expect((await create({ Cookie: 'nsqadmin_session=forged' })).status).toBe(401);

    const b = await admin({ adminPassword: 'tok3n' });
    expect(
      (await api(b, 'topic/create?topic=bearer', { method: 'POST', headers: { Authorization: 'Bearer tok3n' } }))
        .status,
    ).toBe(200);
    // Without a password there is no login endpoint.
    const c = await admin();
    const login404 = await fetch(`${c.url}api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(login404.status).toBe(404);
  });

  it('--http-auth-token: reads and acts on nsqd/nsqlookupd that require a token', async () => {
    const l = await startLookupd({ httpAuthTokens: ['up-token'], httpAuthReads: true });
    const n = await startNsqd({
      lookupdTcpAddresses: [l.tcpAddress],
      broadcastAddress: '127.0.0.1',
      httpAuthTokens: ['up-token'],
      httpAuthReads: true,
    });
    try {
      const headers = { Authorization: 'Bearer up-token' };
      await eventually(async () => {
        const res = await fetch(`http://${l.httpAddress}/nodes`, { headers });
        expect(((await res.json()) as { producers: unknown[] }).producers.length).toBe(1);
      });
      const a = await admin({ lookupdHttpAddresses: [l.httpAddress], httpAuthToken: 'up-token' });
      const snap = (await api<ClusterSnapshot>(a, 'snapshot')).body;
      expect(snap.errors).toEqual([]);
      expect(snap.nodes.length).toBe(1);
      await post(`${n.httpAddress}`, '/topic/create?topic=guarded').catch(() => undefined); // refused: no token
      expect(n.nsqd.topics.has('guarded')).toBe(false);
      const res = await api<{ errors: ClusterError[] }>(a, 'topic/create?topic=guarded', { method: 'POST' });
      expect(res.body.errors).toEqual([]);
      const without = await admin({ lookupdHttpAddresses: [l.httpAddress] });
      const refused = (await api<ClusterSnapshot>(without, 'snapshot')).body;
      expect(refused.errors.map((e) => e.message).join()).toContain('401');
    } finally {
      await n.close();
      await l.close();
    }
  });

  it('POSTs a JSON event per action to the notification endpoint', async () => {
    const events: unknown[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        events.push({ method: req.method, type: req.headers['content-type'], body: JSON.parse(body) });
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    try {
      const a = await admin({ notificationHttpEndpoint: `http://127.0.0.1:${port}/events` });
      await api(a, 'topic/create?topic=noti', { method: 'POST', headers: { 'X-Forwarded-User': 'carol' } });
      await api(a, 'channel/create?topic=noti&channel=nc', { method: 'POST' });
      await eventually(() => expect(events).toHaveLength(2));
      expect(events[0]).toMatchObject({
        method: 'POST',
        type: 'application/json',
        body: { action: 'create_topic', topic: 'noti', user: 'carol', url: '/api/topic/create?topic=noti' },
      });
      expect(events[1]).toMatchObject({ body: { action: 'create_channel', topic: 'noti', channel: 'nc' } });
    } finally {
      await new Promise<void>((r) => receiver.close(() => r()));
    }
  });
});

describe('server', () => {
  it('pushes snapshots with rates over the WebSocket while messages flow', async () => {
    const a = await admin({ sampleIntervalMs: 50 });
    const ws = new WebSocket(`${a.url.replace('http', 'ws')}api/ws`);
    const snaps: ClusterSnapshot[] = [];
    ws.on('message', (data) => snaps.push((JSON.parse(String(data)) as { snapshot: ClusterSnapshot }).snapshot));
    try {
      await eventually(() => expect(snaps.length).toBeGreaterThan(0));
      const timer = setInterval(() => {
        void fetch(`http://${nsqds[0].httpAddress}/pub?topic=live`, { method: 'POST', body: 'x' });
      }, 20);
      try {
        await eventually(() => {
          const live = snaps.at(-1)?.topics.find((t) => t.name === 'live');
          expect(live?.ingressRate).toBeGreaterThan(0);
          expect(live?.messageCount).toBeGreaterThan(1);
        });
      } finally {
        clearInterval(timer);
      }
    } finally {
      ws.close();
    }
  });

  it('serves the UI and API under --base-path, and start/close are idempotent', async () => {
    const a = await admin({ basePath: '/admin/' });
    await a.start();
    expect(a.url).toMatch(/\/admin\/$/);
    const page = await fetch(a.url);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('static/app.js');
    expect((await fetch(`${a.url}static/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${a.url}static/secret`)).status).toBe(404);
    const redirect = await fetch(a.url.replace(/\/$/, ''), { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([302, '/admin/']);
    expect((await api<{ topics: unknown[] }>(a, 'topics')).status).toBe(200);
    await Promise.all([a.close(), a.close()]);
  });
});

describe('rates sampled on the server', () => {
  /** /api/topics until `check` passes for `topic` (the sampler runs on its own, no browser). */
  async function topicUntil(a: Admin, topic: string, check: (t: TopicSummary, ratesAt: number) => boolean) {
    let found: TopicSummary | undefined;
    await eventually(async () => {
      const { body } = await api<{ topics: TopicSummary[]; ratesAt: number | null }>(a, 'topics');
      found = body.topics.find((t) => t.name === topic);
      expect(found !== undefined && body.ratesAt !== null && check(found, body.ratesAt)).toBe(true);
    });
    return found as TopicSummary;
  }

  it('fall to 0 after traffic stops, with no WebSocket ever connected, and keep their history', async () => {
    const [n1] = nsqds;
    await post(n1.httpAddress, '/topic/create?topic=idle');
    await post(n1.httpAddress, '/channel/create?topic=idle&channel=worker');
    const a = await admin({ sampleIntervalMs: 50 });
    const publishes: Promise<unknown>[] = [];
    const timer = setInterval(() => {
      publishes.push(fetch(`http://${n1.httpAddress}/pub?topic=idle`, { method: 'POST', body: 'x' }));
    }, 10);
    try {
      await topicUntil(a, 'idle', (t) => (t.ingressRate ?? 0) > 0);
    } finally {
      clearInterval(timer);
    }
    await Promise.allSettled(publishes);
    const stopped = Date.now();
    // Once a sample's whole span is after the last publish, the rate is 0, and says when it is from.
    const idle = await topicUntil(a, 'idle', (t, ratesAt) => t.ingressRate === 0 && ratesAt > stopped + 100);
    expect(idle.channels[0]).toMatchObject({ name: 'worker', ingressRate: 0, egressRate: 0 });

    // A page loaded now draws the same history: the burst, then zeros.
    const h = (await api<RateSeries>(a, `history?since=${stopped - 60_000}`)).body;
    expect(h.stepMs).toBe(50);
    const points = h.series['t:idle'] ?? [];
    expect(points.length).toBe(h.times.length);
    expect(Math.max(...points.map((p) => p ?? 0))).toBeGreaterThan(0);
    expect(points.at(-1)).toBe(0);
    expect(h.series['c:idle/worker']?.some((p) => (p ?? 0) > 0)).toBe(true);
    expect(h.series.all?.some((p) => (p ?? 0) > 0)).toBe(true);
  });

  it('count egress from the clients that finished messages', async () => {
    const [n1] = nsqds;
    await post(n1.httpAddress, '/topic/create?topic=egress');
    await post(n1.httpAddress, '/channel/create?topic=egress&channel=fin');
    const a = await admin({ sampleIntervalMs: 50 });
    const consumer = await RawClient.connect(n1.tcpAddress);
    try {
      consumer.write('SUB egress fin\n');
      await consumer.readFrame();
      consumer.write('RDY 100\n');
      const timer = setInterval(() => {
        void fetch(`http://${n1.httpAddress}/pub?topic=egress`, { method: 'POST', body: 'x' }).catch(() => undefined);
      }, 10);
      try {
        // FIN each delivered message as it arrives.
        const finishing = (async () => {
          for (;;) {
            const frame = await consumer.readFrame({ timeoutMs: 10_000 }).catch(() => null);
            if (frame === null) return;
            // A message frame: 8-byte timestamp, 2-byte attempts, 16-byte id, body.
            if (frame.type === 2) consumer.write(`FIN ${frame.data.subarray(10, 26).toString('latin1')}\n`);
          }
        })();
        await topicUntil(a, 'egress', (t) => (t.channels[0]?.egressRate ?? 0) > 0);
        const t = await topicUntil(a, 'egress', (x) => (x.channels[0]?.finishCount ?? 0) > 0);
        expect(t.channels[0]?.clients[0]?.clientId).not.toBe('');
        consumer.close();
        await finishing;
      } finally {
        clearInterval(timer);
      }
    } finally {
      consumer.close();
    }
  });
});

describe('RateHistory and CounterDeltas', () => {
  it('divides counts by the time between samples, with gaps and coarse steps', () => {
    const h = new RateHistory({ sampleIntervalMs: 1000, fineSpanMs: 5000, coarseSpanMs: 720_000 });
    expect(h.coarseStepMs).toBe(1000);
    h.record(10_000, new Map([['a', 5]]));
    expect(h.rate('a')).toBeNull(); // one sample has no span
    h.record(11_000, new Map([['a', 10]]));
    h.record(13_000, new Map([['b', 4]])); // `a` missing: a gap, not a zero
    expect([h.rate('a'), h.rate('b'), h.ratesAt, h.rateWindowMs]).toEqual([null, 2, 13_000, 2000]);
    const fine = h.read(0);
    expect(fine).toEqual({ stepMs: 1000, times: [11_000, 13_000], series: { a: [10, null], b: [null, 2] } });
    for (let at = 14_000; at <= 30_000; at += 1000) h.record(at, new Map([['a', 1]]));
    // The fine ring holds ~5 s; asking for more reads the coarse ring.
    expect(h.read(25_500).times).toEqual([26_000, 27_000, 28_000, 29_000, 30_000]);
    const coarse = h.read(0);
    expect(coarse.times[0]).toBe(11_000);
    expect(coarse.series.a?.at(-1)).toBe(1);
  });

  it('takes differences per node, survives counter resets and counts new clients whole', () => {
    const d = new CounterDeltas();
    const snap = (at: number, n1: number, n2: number, finish: number, connectTs: number): ClusterSnapshot =>
      ({
        at,
        nodes: [
          { id: 'n1', reachable: true },
          { id: 'n2', reachable: true },
        ],
        topics: [
          {
            name: 't',
            nodes: [
              { node: 'n1', messageCount: n1 },
              { node: 'n2', messageCount: n2 },
            ],
            channels: [
              {
                name: 'c',
                nodes: [{ node: 'n1', messageCount: n1 }],
                clients: [{ node: 'n1', clientId: 'k', remoteAddress: 'r', connectTs, finishCount: finish }],
              },
            ],
          },
        ],
      }) as unknown as ClusterSnapshot;
    d.next(snap(10_000, 100, 50, 7, 5));
    const later = d.next(snap(11_000, 130, 20, 9, 5)); // n2 restarted: 20 new
    expect([later.get('t:t'), later.get('n:n1'), later.get('n:n2')]).toEqual([50, 30, 20]);
    expect([later.get('c:t/c'), later.get('e:t/c'), later.get('all')]).toEqual([30, 2, 30]);
    const reconnected = d.next(snap(12_000, 130, 20, 4, 11)); // a new connection since the last sample
    expect(reconnected.get('e:t/c')).toBe(4);
  });
});

describe('per-node actions (NSQ #430) and NSQ-shaped API', () => {
  it('empties and pauses a channel on one node only, and refuses nodes that do not hold it', async () => {
    const [n1, n2] = nsqds;
    for (const n of nsqds) await post(n.httpAddress, '/topic/create?topic=pernode');
    for (const n of nsqds) await post(n.httpAddress, '/channel/create?topic=pernode&channel=pc');
    for (const n of nsqds) await fetch(`http://${n.httpAddress}/mpub?topic=pernode`, { method: 'POST', body: 'a\nb' });
    await eventually(async () =>
      expect(
        (await getJson<{ producers: unknown[] }>(lookupds[0].httpAddress, '/lookup?topic=pernode')).producers,
      ).toHaveLength(2),
    );
    const a = await admin();
    const json = (method: string, path: string, body: unknown) =>
      api<{ errors: ClusterError[]; message: string; node?: string }>(a, path, {
        method,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const empty = await json('POST', 'topics/pernode/pc', { action: 'empty', node: n1.httpAddress });
    expect(empty.body).toMatchObject({ action: 'empty_channel', node: n1.httpAddress, errors: [], message: '' });
    expect((await nsqdTopic(n1, 'pernode'))?.channels[0].depth).toBe(0);
    expect((await nsqdTopic(n2, 'pernode'))?.channels[0].depth).toBe(2);

    await json('POST', 'topics/pernode/pc', { action: 'pause', node: n2.httpAddress });
    expect([
      (await nsqdTopic(n1, 'pernode'))?.channels[0].paused,
      (await nsqdTopic(n2, 'pernode'))?.channels[0].paused,
    ]).toEqual([false, true]);
    await json('POST', 'topics/pernode', { action: 'pause', node: n1.httpAddress });
    expect([(await nsqdTopic(n1, 'pernode'))?.paused, (await nsqdTopic(n2, 'pernode'))?.paused]).toEqual([true, false]);
    await api(a, `topic/unpause?topic=pernode&node=${n1.httpAddress}`, { method: 'POST' });
    expect((await nsqdTopic(n1, 'pernode'))?.paused).toBe(false);

    expect((await json('POST', 'topics/pernode/pc', { action: 'empty', node: dead })).status).toBe(404);
    expect((await json('POST', 'topics/pernode/pc', { action: 'explode' })).body).toEqual({
      message: 'INVALID_ACTION',
    });
    expect((await json('POST', 'topics/bad!name', { action: 'pause' })).body).toEqual({ message: 'INVALID_TOPIC' });
    expect(
      (await api(a, `channel/delete?topic=pernode&channel=pc&node=${n1.httpAddress}`, { method: 'POST' })).status,
    ).toBe(400);
    expect((await nsqdTopic(n2, 'pernode'))?.channels[0].depth).toBe(2);
  });

  it('tombstones only a node of the cluster: an unknown node is 404 and gets no request', async () => {
    let requests = 0;
    const bystander: Server = createServer((_req, res) => {
      requests++;
      res.end();
    });
    await new Promise<void>((r) => bystander.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(bystander.address() as { port: number }).port}`;
    try {
      const a = await admin();
      const res = await api<{ message: string }>(a, `topic/tombstone?topic=x&node=${address}`, { method: 'POST' });
      expect(res).toEqual({ status: 404, body: { message: 'NODE_NOT_FOUND' } });
      expect(requests).toBe(0);
    } finally {
      await new Promise<void>((r) => bystander.close(() => r()));
    }
  });

  it('creates, deletes and tombstones with NSQ nsqadmin requests; /api/nodes/:node and /api/counter', async () => {
    const a = await admin();
    const json = (method: string, path: string, body?: unknown) =>
      api<{ message: string; errors: ClusterError[] }>(a, path, {
        method,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body ?? {}),
      });
    expect((await json('POST', 'topics', { topic: 'nsqstyle', channel: 'ch' })).body.message).toBe('');
    for (const l of lookupds) expect(await lookupTopics(l)).toContain('nsqstyle');
    const [n1] = nsqds;
    await fetch(`http://${n1.httpAddress}/mpub?topic=nsqstyle`, { method: 'POST', body: 'a\nb\nc' });
    await post(n1.httpAddress, '/channel/create?topic=nsqstyle&channel=ch');

    const node = (
      await api<{
        topics: Array<{ name: string; channels: Array<{ name: string; depth: number }> }>;
        total_messages: number;
      }>(a, `nodes/${n1.httpAddress}`)
    ).body;
    expect(node.topics.find((t) => t.name === 'nsqstyle')).toMatchObject({ channels: [{ name: 'ch', depth: 3 }] });
    expect(node.total_messages).toBeGreaterThanOrEqual(3);
    expect((await api(a, 'nodes/127.0.0.1:1')).status).toBe(404);

    const counter = (
      await api<{ stats: Record<string, { message_count: number }>; total_messages: number; message: string }>(
        a,
        'counter',
      )
    ).body;
    expect(counter.stats[`nsqstyle:ch:${n1.httpAddress}`]).toEqual({
      node: n1.httpAddress,
      topic_name: 'nsqstyle',
      channel_name: 'ch',
      message_count: 3,
    });
    expect(counter.total_messages).toBe(Object.values(counter.stats).reduce((sum, s) => sum + s.message_count, 0));

    expect((await json('DELETE', 'topics/nsqstyle/ch')).status).toBe(200);
    expect((await nsqdTopic(n1, 'nsqstyle'))?.channels).toEqual([]);
    await eventually(async () => expect(await lookupTopics(lookupds[0])).toContain('nsqstyle'));
    expect((await json('DELETE', `nodes/${n1.httpAddress}`, { topic: 'nsqstyle' })).status).toBe(200);
    expect(await nsqdTopic(n1, 'nsqstyle')).toBeUndefined();
    expect((await json('DELETE', 'topics/nsqstyle')).status).toBe(200);
    for (const l of lookupds) expect(await lookupTopics(l)).not.toContain('nsqstyle');
    expect((await json('POST', 'topics', { topic: '' })).body).toEqual({ message: 'MISSING_ARG_TOPIC' });
    expect(
      (await api(a, 'topics', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '[' })).body,
    ).toEqual({ message: 'INVALID_BODY' });
  });

  it('deletes a topic that only a lookupd still lists', async () => {
    await post(lookupds[0].httpAddress, '/topic/create?topic=orphan');
    await post(lookupds[0].httpAddress, '/channel/create?topic=orphan&channel=left');
    const a = await admin();
    const lookup = (await api<{ topics: Array<{ name: string; producers: string[] }> }>(a, 'lookup')).body;
    expect(lookup.topics.find((t) => t.name === 'orphan')).toMatchObject({ producers: [] });
    const res = await api<{ errors: ClusterError[] }>(a, 'topics/orphan', {
      method: 'DELETE',
      headers: { 'X-Requested-With': 'test' },
    });
    // lookupds[1] never had it: its 404 is reported, lookupds[0] forgot it.
    expect(res.status).toBe(200);
    expect(await lookupTopics(lookupds[0])).not.toContain('orphan');
  });
});

describe('cross-site request forgery', () => {
  const create = (a: Admin, topic: string, headers: Record<string, string>, body?: string) =>
    fetch(`${a.url}api/topic/create?topic=${topic}`, { method: 'POST', headers, body });

  it('refuses state changes sent from another origin or without a JSON body or X-Requested-With', async () => {
    const a = await admin();
    const host = new URL(a.url).host;
    const refused = async (headers: Record<string, string>, message: string, body?: string) => {
      const res = await create(a, 'forged', headers, body);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { message: string }).message).toBe(message);
    };
    await refused({ Origin: 'http://evil.example', 'X-Requested-With': 'x' }, 'CROSS_ORIGIN_REQUEST_REFUSED');
    await refused({ Origin: 'null', 'Content-Type': 'application/json' }, 'CROSS_ORIGIN_REQUEST_REFUSED', '{}');
    await refused({ 'Sec-Fetch-Site': 'cross-site', 'X-Requested-With': 'x' }, 'CROSS_ORIGIN_REQUEST_REFUSED');
    await refused({ 'Sec-Fetch-Site': 'same-site', Origin: `http://${host}` }, 'CROSS_ORIGIN_REQUEST_REFUSED');
    // What a form or a no-cors fetch can send: no custom header, a "simple" content type.
    await refused({}, 'CSRF_HEADER_REQUIRED');
    await refused({ 'Content-Type': 'text/plain' }, 'CSRF_HEADER_REQUIRED', '{"topic":"forged"}');
    await refused(
      { Origin: `http://${host}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      'CSRF_HEADER_REQUIRED',
      'a=b',
    );
    const del = await fetch(`${a.url}api/topics/forged`, {
      method: 'DELETE',
      headers: { Origin: 'http://evil.example' },
    });
    expect(await del.json()).toMatchObject({
      message: 'CROSS_ORIGIN_REQUEST_REFUSED',
      reason: expect.stringContaining('http://evil.example'),
    });
    expect(await lookupTopics(lookupds[0])).not.toContain('forged');

    // The UI's own requests, and scripts that say who they are, pass.
    expect((await create(a, 'sameorigin', { Origin: `http://${host}`, 'X-Requested-With': 'nsqadmin' })).status).toBe(
      200,
    );
    expect(
      (await create(a, 'fetchsite', { 'Sec-Fetch-Site': 'same-origin', 'Content-Type': 'application/json' }, '{}'))
        .status,
    ).toBe(200);
    expect((await create(a, 'scripted', { 'X-Requested-With': 'curl' })).status).toBe(200);
    for (const t of ['sameorigin', 'fetchsite', 'scripted']) expect(await lookupTopics(lookupds[0])).toContain(t);
    expect(await (await fetch(`${a.url}metrics`)).text()).toMatch(
      /^nsqadmin_refused_requests_total\{reason="CSRF_HEADER_REQUIRED"\} 3$/m,
    );
  });

  it('refuses them with the login cookie too, and refuses a WebSocket from another origin', async () => {
    const a = await admin({ adminPassword: 'pw' });
    const ok = await fetch(`${a.url}api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: 'pw' }),
    });
    const session = (ok.headers.get('set-cookie') ?? '').split(';')[0] as string;
    const forged = await create(a, 'withcookie', {
      Cookie: session,
      Origin: 'http://127.0.0.1:1',
      'X-Requested-With': 'x',
    });
    expect(forged.status).toBe(403);
    const loginForged = await fetch(`${a.url}api/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Sec-Fetch-Site': 'cross-site' },
      body: JSON.stringify({ password: 'pw' }),
    });
    expect(loginForged.status).toBe(403);
    expect(await lookupTopics(lookupds[0])).not.toContain('withcookie');
    expect((await create(a, 'withcookie', { Cookie: session, 'X-Requested-With': 'x' })).status).toBe(200);

    const wsUrl = `${a.url.replace('http', 'ws')}api/ws`;
    const status = (origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(wsUrl, { origin });
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => undefined);
      });
    expect(await status('http://evil.example')).toBe(401);
    expect(await status(new URL(a.url).origin)).toBe(101);
  });

  it('csrfRefusal lets safe methods through whatever their origin', () => {
    expect(csrfRefusal('GET', { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' })).toBeNull();
    expect(csrfRefusal('POST', { 'sec-fetch-site': 'none', 'x-requested-with': 'x' })).toBeNull();
    expect(
      csrfRefusal('PUT', { host: 'a:1', origin: 'http://A:1', 'content-type': 'Application/JSON; charset=utf-8' }),
    ).toBeNull();
    expect(csrfRefusal('DELETE', { host: 'a:1', origin: 'ftp://a:1', 'x-requested-with': 'x' })?.message).toBe(
      'CROSS_ORIGIN_REQUEST_REFUSED',
    );
  });
});

describe('small things', () => {
  it('serves /favicon.ico at the root, also under --base-path', async () => {
    const a = await admin({ basePath: '/nsq' });
    const root = `http://${a.httpAddress}`;
    for (const path of ['/favicon.ico', '/nsq/favicon.ico', '/nsq/static/favicon.svg']) {
      const res = await fetch(`${root}${path}`);
      expect([path, res.status, res.headers.get('content-type')]).toEqual([path, 200, 'image/svg+xml']);
      expect(await res.text()).toContain('<svg');
    }
  });

  it('bin/nsqadmin announces its HTTP address without a TCP part', async () => {
    const bin = fileURLToPath(new URL('../bin/nsqadmin.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [bin, '--http-address=127.0.0.1:0', `--nsqd-http-address=${nsqds[0].httpAddress}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    try {
      await eventually(() => expect(output).toMatch(/listening on HTTP 127\.0\.0\.1:\d+$/m), { timeoutMs: 20_000 });
      expect(output).not.toContain('TCP');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

describe('redactUrl', () => {
  it('drops credentials and the query from URLs it logs', () => {
    expect(redactUrl('https://user:pw@hooks.example:8443/nsq?token=abc')).toBe('https://hooks.example:8443/nsq?…');
    expect(redactUrl('http://127.0.0.1:9/x')).toBe('http://127.0.0.1:9/x');
    expect(redactUrl('not a url secret')).toBe('(invalid URL)');
  });
});

describe('parseAdminArgs', () => {
  it('reads NSQ nsqadmin flags', () => {
    const args = parseAdminArgs([
      '--lookupd-http-address=127.0.0.1:4161',
      '--lookupd-http-address',
      '127.0.0.1:4261',
      '-admin-user=alice',
      '--admin-user=bob',
      '--base-path=/nsq',
      '--notification-http-endpoint=http://127.0.0.1:9/x',
    ]);
    expect(args).toMatchObject({
      kind: 'run',
      options: {
        httpAddress: '0.0.0.0:4171',
        lookupdHttpAddresses: ['127.0.0.1:4161', '127.0.0.1:4261'],
        nsqdHttpAddresses: [],
        adminUsers: ['alice', 'bob'],
        aclHttpHeader: 'X-Forwarded-User',
        basePath: '/nsq',
      },
    });
    expect(parseAdminArgs(['--nsqd-http-address=127.0.0.1:4151'])).toMatchObject({
      options: { sampleIntervalMs: 2000, rateHistoryMs: 3 * 3600_000 },
    });
    expect(
      parseAdminArgs(['--nsqd-http-address=127.0.0.1:4151', '--sample-interval=100ms', '--rate-history=30m']),
    ).toMatchObject({ options: { sampleIntervalMs: 100, rateHistoryMs: 1_800_000 } });
    const nsqd = '--nsqd-http-address=127.0.0.1:4151';
    expect(() => parseAdminArgs([nsqd, '--sample-interval=1ms'])).toThrow(/at least 10ms/);
    expect(() => parseAdminArgs([nsqd, '--sample-interval=10s', '--rate-history=5s'])).toThrow(/--rate-history/);
    expect(parseAdminArgs(['--version'])).toEqual({ kind: 'version' });
    expect(parseAdminArgs(['--help'])).toMatchObject({ kind: 'help' });
    expect(() => parseAdminArgs([])).toThrow(/required/);
    expect(() => parseAdminArgs(['--nsqd-http-address=nope'])).toThrow(/not host:port/);
    expect(() => parseAdminArgs(['--bogus'])).toThrow(/not defined/);
  });

  it('reads --http-auth-token and the password from --admin-password-file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsqadmin-flags-'));
    try {
      const file = join(dir, 'pw');
      writeFileSync(file, 's3cret pass\n');
      const args = parseAdminArgs([
        '--nsqd-http-address=127.0.0.1:4151',
        '--http-auth-token=tok',
        `--admin-password-file=${file}`,
      ]);
      expect(args).toMatchObject({ kind: 'run', options: { httpAuthToken: 'tok', adminPassword: 's3cret pass' } });
      writeFileSync(file, '\n');
      const base = ['--nsqd-http-address=127.0.0.1:4151'];
      expect(() => parseAdminArgs([...base, `--admin-password-file=${file}`])).toThrow(/holds no password/);
      expect(() => parseAdminArgs([...base, `--admin-password-file=${join(dir, 'none')}`])).toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
