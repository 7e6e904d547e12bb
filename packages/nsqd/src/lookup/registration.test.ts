import { createLogger } from '@nsq-ts/go-compat';
import { eventually, startLookupd, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { LookupdRegistrar } from './lookupd-registrar.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function lookupd() {
  const l = await startLookupd({ broadcastAddress: '127.0.0.1' });
  closers.push(() => l.close());
  return l;
}

async function nsqd(lookupdTcpAddresses: string[]): Promise<TestNsqd> {
  const d = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses });
  closers.push(() => d.close());
  return d;
}

async function get(address: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${address}${path}`);
  return { status: res.status, body: await res.json() };
}

describe('registration with nsqlookupd', () => {
  it('registers topics and channels with the broadcast address and ports, and unregisters them', async () => {
    const l = await lookupd();
    const d = await nsqd([l.tcpAddress]);
    await fetch(`http://${d.httpAddress}/topic/create?topic=t`, { method: 'POST' });
    await fetch(`http://${d.httpAddress}/channel/create?topic=t&channel=c`, { method: 'POST' });
    const found = await eventually(async () => {
      const r = await get(l.httpAddress, '/lookup?topic=t');
      expect(r.status).toBe(200);
      expect((r.body as { channels: string[] }).channels).toEqual(['c']);
      return r.body as { producers: Array<Record<string, unknown>> };
    });
    expect(found.producers).toHaveLength(1);
    expect(found.producers[0]).toMatchObject({
      broadcast_address: '127.0.0.1',
      tcp_port: Number(d.tcpAddress.split(':')[1]),
      http_port: Number(d.httpAddress.split(':')[1]),
      version: '1.3.0',
    });
    await fetch(`http://${d.httpAddress}/channel/delete?topic=t&channel=c`, { method: 'POST' });
    await fetch(`http://${d.httpAddress}/topic/delete?topic=t`, { method: 'POST' });
    await eventually(async () => {
      const r = await get(l.httpAddress, '/lookup?topic=t');
      expect((r.body as { producers?: unknown[] }).producers ?? []).toEqual([]);
    });
  });

  it('makes the channels lookupd knows before a new topic fans out', async () => {
    const l = await lookupd();
    const d = await nsqd([l.tcpAddress]);
    await eventually(async () =>
      expect(((await get(l.httpAddress, '/nodes')).body as { producers: unknown[] }).producers).toHaveLength(1),
    );
    await fetch(`http://${l.httpAddress}/channel/create?topic=t&channel=a`, { method: 'POST' });
    await fetch(`http://${l.httpAddress}/channel/create?topic=t&channel=b`, { method: 'POST' });
    await fetch(`http://${d.httpAddress}/pub?topic=t`, { method: 'POST', body: 'first' });
    await fetch(`http://${d.httpAddress}/pub?topic=t`, { method: 'POST', body: 'second' });
    await eventually(() => {
      const topic = d.nsqd.topics.get('t');
      expect(topic?.channels.get('a')?.depth).toBe(2);
      expect(topic?.channels.get('b')?.depth).toBe(2);
    });
  });

  it('follows PUT /config/nsqlookupd_tcp_addresses at run time', async () => {
    const first = await lookupd();
    const second = await lookupd();
    const d = await nsqd([first.tcpAddress]);
    await fetch(`http://${d.httpAddress}/topic/create?topic=t`, { method: 'POST' });
    await eventually(async () => expect((await get(first.httpAddress, '/lookup?topic=t')).status).toBe(200));
    const put = await fetch(`http://${d.httpAddress}/config/nsqlookupd_tcp_addresses`, {
      method: 'PUT',
      body: JSON.stringify([second.tcpAddress]),
    });
    expect(await put.json()).toEqual([second.tcpAddress]);
    // The new lookupd gets every registration on connect; the dropped one loses the producer.
    await eventually(async () => expect((await get(second.httpAddress, '/lookup?topic=t')).status).toBe(200));
    await eventually(async () => {
      const nodes = (await get(first.httpAddress, '/nodes')).body as { producers: unknown[] };
      expect(nodes.producers).toEqual([]);
    });
  });
});

describe('GET /channels from a lookupd that closes reads (--http-auth-token with --http-auth-reads)', () => {
  const TOKEN = 'lookupd-read-token-5a1t';

  async function lockedLookupd() {
    const l = await startLookupd({ broadcastAddress: '127.0.0.1', httpAuthTokens: [TOKEN], httpAuthReads: true });
    closers.push(() => l.close());
    for (const channel of ['a', 'b', 'e#ephemeral']) {
      const res = await fetch(`http://${l.httpAddress}/channel/create?topic=t&channel=${encodeURIComponent(channel)}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(res.status).toBe(200);
    }
    return l;
  }

  /** A registrar like nsqd's, logging into `lines` at debug level; resolves once it is identified. */
  async function registrar(lookupdTcpAddress: string, lookupdHttpAuthToken: string | undefined) {
    const lines: string[] = [];
    const r = new LookupdRegistrar({
      logger: createLogger('', 'debug', (line) => lines.push(line)),
      identity: () => ({
        version: '1.3.0',
        tcp_port: 4150,
        http_port: 4151,
        hostname: 'nsqd-host',
        broadcast_address: '127.0.0.1',
      }),
      registrations: () => [],
      httpClientConnectTimeoutMs: 2_000,
      httpClientRequestTimeoutMs: 2_000,
      ...(lookupdHttpAuthToken === undefined ? {} : { lookupdHttpAuthToken }),
    });
    closers.push(async () => r.close());
    r.setAddresses([lookupdTcpAddress]);
    // The lookupd's HTTP port comes from its IDENTIFY reply, which the registrar logs.
    await eventually(() => expect(lines.join('')).toContain('peer info'));
    return { r, log: () => lines.join('') };
  }

  it('sends --lookupd-http-auth-token as a Bearer token and gets the non-ephemeral channels', async () => {
    const l = await lockedLookupd();
    const { r, log } = await registrar(l.tcpAddress, TOKEN);
    expect((await r.channelsFor('t')).sort()).toEqual(['a', 'b']);
    expect(log()).not.toContain('/channels?topic=t: ');
    expect(log()).not.toContain(TOKEN);
  });

  it.each([
    ['without a token', undefined, 'no bearer token sent'],
    ['with a wrong token', 'wrong-token-9e1d', 'bearer token refused'],
  ])('%s: no channels, and a warning that names the flag but not the token', async (_what, token, said) => {
    const l = await lockedLookupd();
    const { r, log } = await registrar(l.tcpAddress, token);
    expect(await r.channelsFor('t')).toEqual([]);
    expect(log()).toMatch(
      new RegExp(
        `LOOKUPD\\(${l.tcpAddress}\\): GET http://\\S+/channels\\?topic=t: HTTP 401 UNAUTHORIZED \\(${said}\\) - check --lookupd-http-auth-token`,
      ),
    );
    expect(log()).not.toContain(TOKEN);
    if (token !== undefined) expect(log()).not.toContain(token);
  });

  it('an nsqd without the token still creates and serves the topic, without lookupd’s channels', async () => {
    const l = await lockedLookupd();
    const d = await nsqd([l.tcpAddress]);
    await eventually(() => expect(l.lookupd.db.findProducers('client', '', '')).toHaveLength(1));
    expect((await fetch(`http://${d.httpAddress}/pub?topic=t`, { method: 'POST', body: 'm' })).status).toBe(200);
    // The topic leaves its starting state (the failed GET resolves to no channels): a channel
    // made now gets the buffered message, and none of lookupd's channels was made.
    await fetch(`http://${d.httpAddress}/channel/create?topic=t&channel=c`, { method: 'POST' });
    await eventually(() => {
      const topic = d.nsqd.topics.get('t');
      expect(topic?.channels.get('c')?.depth).toBe(1);
      expect([...(topic?.channels.keys() ?? [])]).toEqual(['c']);
    });
  });
});
