import { eventually, RawV1Client, startLookupd, type TestLookupd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { LookupdOptions } from './options.js';

// nsqlookupd's HTTP API (nsq-spec §4.2) with the V1 conventions of §3.1, over real sockets.

const V1 = 'nsq; version=1.0';
const JSON_TYPE = 'application/json; charset=utf-8';

let lookupd: TestLookupd;
const clients: RawV1Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await lookupd?.close();
});

async function start(options: Partial<LookupdOptions> = {}): Promise<void> {
  lookupd = await startLookupd(options);
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function request(method: string, path: string, body?: string): Promise<Reply> {
  const res = await fetch(`http://${lookupd.httpAddress}${path}`, { method, body });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

const get = (path: string) => request('GET', path);
const post = (path: string, body?: string) => request('POST', path, body);

/** An nsqd announced by a raw V1 client, with optional registrations. */
async function registerNsqd(
  peer: { broadcast_address?: string; tcp_port?: number; http_port?: number; hostname?: string } = {},
  commands: string[] = [],
): Promise<RawV1Client> {
  const c = await RawV1Client.connect(lookupd.tcpAddress);
  clients.push(c);
  c.identify({
    broadcast_address: '127.0.0.1',
    hostname: 'h1',
    tcp_port: 4150,
    http_port: 4151,
    version: '1.3.0',
    ...peer,
  });
  await c.read();
  for (const command of commands) {
    c.write(`${command}\n`);
    expect(await c.readText()).toBe('OK');
  }
  return c;
}

function expectJson(r: Reply, status: number, body: unknown): void {
  expect(r.status).toBe(status);
  expect(r.headers.get('x-nsq-content-type')).toBe(V1);
  expect(r.headers.get('content-type')).toBe(JSON_TYPE);
  expect(r.json).toEqual(body);
}

function expectEmpty(r: Reply): void {
  expect(r.status).toBe(200);
  expect(r.headers.get('x-nsq-content-type')).toBe(V1);
  expect(r.headers.get('content-type')).toBeNull();
  expect(r.text).toBe('');
}

describe('conventions', () => {
  it('/ping is plain OK without the V1 header', async () => {
    await start();
    const r = await get('/ping');
    expect(r.status).toBe(200);
    expect(r.text).toBe('OK');
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.headers.get('x-nsq-content-type')).toBeNull();
  });

  it('/info reports the version', async () => {
    await start();
    expectJson(await get('/info'), 200, { version: '1.3.0' });
  });

  it('404 NOT_FOUND, 405 METHOD_NOT_ALLOWED with Allow, 400 INVALID_REQUEST', async () => {
    await start();
    expectJson(await get('/nope'), 404, { message: 'NOT_FOUND' });
    const r = await post('/lookup?topic=t');
    expectJson(r, 405, { message: 'METHOD_NOT_ALLOWED' });
    expect(r.headers.get('allow')).toBe('GET, OPTIONS');
    expect((await get('/topic/create?topic=t')).headers.get('allow')).toBe('OPTIONS, POST');
    const options = await fetch(`http://${lookupd.httpAddress}/lookup`, { method: 'OPTIONS' });
    expect([options.status, options.headers.get('allow'), await options.text()]).toEqual([200, 'GET, OPTIONS', '']);
    const redirected = await fetch(`http://${lookupd.httpAddress}/Nodes/`, { redirect: 'manual' });
    expect([redirected.status, redirected.headers.get('location')]).toEqual([301, '/nodes']);
    expectJson(await get('/lookup?topic=a;b'), 400, { message: 'INVALID_REQUEST' });
    expectJson(await get('/lookup?topic=%zz'), 400, { message: 'INVALID_REQUEST' });
  });

  it('ignores POST bodies and reads parameters from the query only', async () => {
    await start();
    expectJson(await post('/topic/create', 'topic=t'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectEmpty(await post('/topic/create?topic=t', 'ignored'));
  });
});

describe('discovery', () => {
  it('/topics and /channels answer [] (never null) when empty', async () => {
    await start();
    expectJson(await get('/topics'), 200, { topics: [] });
    expectJson(await get('/channels?topic=none'), 200, { channels: [] });
    expectJson(await get('/channels'), 400, { message: 'MISSING_ARG_TOPIC' });
  });

  it('/lookup: 400 without topic, 404 TOPIC_NOT_FOUND for an unknown one', async () => {
    await start();
    expectJson(await get('/lookup'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectJson(await get('/lookup?topic=none'), 404, { message: 'TOPIC_NOT_FOUND' });
  });

  it('/lookup lists channels and producers as Peer objects', async () => {
    await start();
    const c = await registerNsqd({}, ['REGISTER t c1', 'REGISTER t c2']);
    expectJson(await get('/lookup?topic=t'), 200, {
      channels: ['c1', 'c2'],
      producers: [
        {
          remote_address: `127.0.0.1:${c.socket.localPort}`,
          hostname: 'h1',
          broadcast_address: '127.0.0.1',
          tcp_port: 4150,
          http_port: 4151,
          version: '1.3.0',
        },
      ],
    });
    // Peer keys in NSQ's struct order.
    expect(Object.keys((await get('/lookup?topic=t')).json as object)).toEqual(['channels', 'producers']);
    expect((await get('/lookup?topic=t')).text).toContain('{"remote_address":');
  });

  it('/nodes lists every node with tombstones parallel to topics', async () => {
    await start();
    const a = await registerNsqd({ http_port: 4151 }, ['REGISTER t1', 'REGISTER t2 c']);
    await registerNsqd({ http_port: 5151, hostname: 'h2' }, ['REGISTER t2']);
    expectEmpty(await post('/topic/tombstone?topic=t2&node=127.0.0.1:4151'));
    const r = await get('/nodes');
    expectJson(r, 200, {
      producers: [
        {
          remote_address: `127.0.0.1:${a.socket.localPort}`,
          hostname: 'h1',
          broadcast_address: '127.0.0.1',
          tcp_port: 4150,
          http_port: 4151,
          version: '1.3.0',
          tombstones: [false, true],
          topics: ['t1', 't2'],
        },
        expect.objectContaining({ hostname: 'h2', http_port: 5151, tombstones: [false], topics: ['t2'] }),
      ],
    });
  });

  it('/topics lists registered and created topics', async () => {
    await start();
    await registerNsqd({}, ['REGISTER a']);
    await post('/topic/create?topic=b');
    expectJson(await get('/topics'), 200, { topics: ['a', 'b'] });
  });
});

describe('actions', () => {
  it('/topic/create validates and creates an empty registration', async () => {
    await start();
    expectJson(await post('/topic/create'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectJson(await post('/topic/create?topic=a/b'), 400, { message: 'INVALID_ARG_TOPIC' });
    expectEmpty(await post('/topic/create?topic=t'));
    expectJson(await get('/lookup?topic=t'), 200, { channels: [], producers: [] });
  });

  it('/topic/delete removes the topic and its channels; 200 even when absent', async () => {
    await start();
    expectJson(await post('/topic/delete'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectEmpty(await post('/topic/delete?topic=none'));
    await post('/channel/create?topic=t&channel=c');
    await post('/channel/create?topic=u&channel=c');
    expectEmpty(await post('/topic/delete?topic=t'));
    expectJson(await get('/topics'), 200, { topics: ['u'] });
    expectJson(await get('/channels?topic=t'), 200, { channels: [] });
  });

  it('/channel/create validates in order and creates channel and topic', async () => {
    await start();
    expectJson(await post('/channel/create'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectJson(await post('/channel/create?topic=!'), 400, { message: 'INVALID_ARG_TOPIC' });
    expectJson(await post('/channel/create?topic=t'), 400, { message: 'MISSING_ARG_CHANNEL' });
    expectJson(await post('/channel/create?topic=t&channel=!'), 400, { message: 'INVALID_ARG_CHANNEL' });
    expectEmpty(await post('/channel/create?topic=t&channel=c'));
    expectJson(await get('/lookup?topic=t'), 200, { channels: ['c'], producers: [] });
  });

  it('/channel/delete: 404 CHANNEL_NOT_FOUND, else removes the channel only', async () => {
    await start();
    expectJson(await post('/channel/delete?topic=t&channel=c'), 404, { message: 'CHANNEL_NOT_FOUND' });
    await post('/channel/create?topic=t&channel=c');
    expectEmpty(await post('/channel/delete?topic=t&channel=c'));
    expectJson(await get('/lookup?topic=t'), 200, { channels: [], producers: [] });
  });

  it('/topic/tombstone needs topic and node; 200 when nothing matches', async () => {
    await start();
    expectJson(await post('/topic/tombstone'), 400, { message: 'MISSING_ARG_TOPIC' });
    expectJson(await post('/topic/tombstone?topic=t'), 400, { message: 'MISSING_ARG_NODE' });
    expectEmpty(await post('/topic/tombstone?topic=t&node=nowhere:1'));
  });
});

describe('timers', () => {
  it('a tombstone hides the producer from /lookup for the tombstone lifetime only', async () => {
    await start({ tombstoneLifetimeMs: 300 });
    await registerNsqd({}, ['REGISTER t']);
    await registerNsqd({ http_port: 5151 }, ['REGISTER t']);
    expectEmpty(await post('/topic/tombstone?topic=t&node=127.0.0.1:4151'));
    const ports = async () =>
      ((await get('/lookup?topic=t')).json as { producers: { http_port: number }[] }).producers.map((p) => p.http_port);
    expect(await ports()).toEqual([5151]);
    // Still a node, flagged; the tombstone is per topic.
    const nodes = (await get('/nodes')).json as { producers: { http_port: number; tombstones: boolean[] }[] };
    expect(nodes.producers.find((p) => p.http_port === 4151)?.tombstones).toEqual([true]);
    await eventually(async () => expect(await ports()).toEqual([4151, 5151]), { timeoutMs: 5_000 });
  });

  it('re-REGISTER keeps the tombstone; UNREGISTER and REGISTER again clears it', async () => {
    await start({ tombstoneLifetimeMs: 60_000 });
    const c = await registerNsqd({}, ['REGISTER t']);
    await post('/topic/tombstone?topic=t&node=127.0.0.1:4151');
    c.write('REGISTER t\n');
    expect(await c.readText()).toBe('OK');
    expectJson(await get('/lookup?topic=t'), 200, { channels: [], producers: [] });
    c.write('UNREGISTER t\nREGISTER t\n');
    expect([await c.readText(), await c.readText()]).toEqual(['OK', 'OK']);
    expect(((await get('/lookup?topic=t')).json as { producers: unknown[] }).producers).toHaveLength(1);
  });

  it('a producer silent past the inactivity timeout leaves /lookup and /nodes; PING brings it back', async () => {
    await start({ inactiveProducerTimeoutMs: 300 });
    const c = await registerNsqd({}, ['REGISTER t']);
    const count = async () => ((await get('/lookup?topic=t')).json as { producers: unknown[] }).producers.length;
    expect(await count()).toBe(1);
    await eventually(async () => expect(await count()).toBe(0), { timeoutMs: 5_000 });
    expectJson(await get('/nodes'), 200, { producers: [] });
    // Still registered: /debug shows it, and a PING makes it active again.
    expect(Object.keys((await get('/debug')).json as object)).toContain('topic:t:');
    c.write('PING\n');
    expect(await c.readText()).toBe('OK');
    expect(await count()).toBe(1);
  });
});

describe('/debug and /metrics', () => {
  it('/debug maps category:key:subkey to producer records with ns times', async () => {
    await start();
    expectJson(await get('/debug'), 200, {});
    const c = await registerNsqd({}, ['REGISTER t c']);
    await post('/topic/create?topic=empty');
    const r = await get('/debug');
    const id = `127.0.0.1:${c.socket.localPort}`;
    expect(Object.keys(r.json as object)).toEqual(['channel:t:c', 'client::', 'topic:t:']);
    const record = (r.json as Record<string, Record<string, unknown>[]>)['topic:t:']?.[0];
    expect(Object.keys(record ?? {})).toEqual([
      'broadcast_address',
      'hostname',
      'http_port',
      'id',
      'last_update',
      'tcp_port',
      'tombstoned',
      'tombstoned_at',
      'version',
    ]);
    expect(record).toMatchObject({ id, hostname: 'h1', tcp_port: 4150, http_port: 4151, tombstoned: false });
    // Exact integers: Go's zero time and a nanosecond wall clock.
    expect(r.text).toContain('"tombstoned_at":-6795364578871345152');
    const lastUpdate = /"last_update":(\d+)/.exec(r.text)?.[1] as string;
    expect(lastUpdate).toMatch(/^\d{19}$/);
    expect(Math.abs(Number(BigInt(lastUpdate) / 1_000_000n) - Date.now())).toBeLessThan(60_000);
  });

  it('/metrics exposes producers, topics and channels gauges and process metrics', async () => {
    await start();
    await registerNsqd({}, ['REGISTER t c', 'REGISTER u']);
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toMatch(/^nsqlookupd_producers 1$/m);
    expect(r.text).toMatch(/^nsqlookupd_topics 2$/m);
    expect(r.text).toMatch(/^nsqlookupd_channels 1$/m);
    expect(r.text).toMatch(/^process_cpu_seconds_total /m);
  });

  it('two lookupds in one process keep separate registries', async () => {
    await start();
    const other = await startLookupd();
    try {
      await registerNsqd({}, ['REGISTER t']);
      const text = await (await fetch(`http://${other.httpAddress}/metrics`)).text();
      expect(text).toMatch(/^nsqlookupd_topics 0$/m);
    } finally {
      await other.close();
    }
  });
});

describe('lifecycle', () => {
  it('start and close are idempotent; addresses are the bound ones', async () => {
    await start();
    const l = lookupd.lookupd;
    await Promise.all([l.start(), l.start()]);
    expect(l.tcpAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(l.tcpAddress).not.toBe('127.0.0.1:0');
    expect(l.httpAddress).not.toBe('127.0.0.1:0');
    const c = await registerNsqd();
    await Promise.all([l.close(), l.close()]);
    await c.waitClosed();
  });

  it('defaults to NSQ ports 4160/4161 and the 300 s / 45 s timers', async () => {
    const { defaultLookupdOptions } = await import('./options.js');
    expect(defaultLookupdOptions()).toMatchObject({
      tcpAddress: '0.0.0.0:4160',
      httpAddress: '0.0.0.0:4161',
      inactiveProducerTimeoutMs: 300_000,
      tombstoneLifetimeMs: 45_000,
    });
    await start();
  });
});
