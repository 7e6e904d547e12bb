import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Admin } from './admin.js';
import { createAdmin, redactUrl } from './admin.js';
import type { ClusterError, ClusterSnapshot, NodeSummary, TopicSummary } from './cluster.js';
import { compareVersions } from './cluster.js';
import { parseAdminArgs } from './flags.js';

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

async function api<T>(a: Admin, path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${a.url}api/${path}`, init);
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

    const nodes = await api<{ nodes: NodeSummary[] }>(a, 'nodes');
    expect(nodes.body.nodes.map((n) => n.id).sort()).toEqual(nsqds.map((n) => n.httpAddress).sort());
    for (const node of nodes.body.nodes) {
      expect(node).toMatchObject({ version: '1.3.0', outOfDate: false, reachable: true });
      expect(node.topics).toContainEqual({ name: 'agg', tombstoned: false });
    }

    const lookup = await api<{ topics: Array<{ name: string; channels: string[] }> }>(a, 'lookup');
    expect(lookup.body.topics).toContainEqual({ name: 'agg', channels: ['c1', 'c2'] });
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
    expect(lookup.body.topics).toContainEqual({ name: 'made', channels: ['mc'] });

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
      fetch(`${a.url}api/login`, { method: 'POST', body: JSON.stringify({ password }) });
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
    expect((await fetch(`${a.url}api/logout`, { method: 'POST', headers: session })).status).toBe(200);
    expect((await create(session)).status).toBe(401);
    expect((await create({ Cookie: 'nsqadmin_session=forged' })).status).toBe(401);

    const b = await admin({ adminPassword: 'tok3n' });
    expect(
      (await api(b, 'topic/create?topic=bearer', { method: 'POST', headers: { Authorization: 'Bearer tok3n' } }))
        .status,
    ).toBe(200);
    // Without a password there is no login endpoint.
    const c = await admin();
    expect((await fetch(`${c.url}api/login`, { method: 'POST', body: '{}' })).status).toBe(404);
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
    const a = await admin({ pollIntervalMs: 100 });
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
          expect(live?.rate).toBeGreaterThan(0);
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
