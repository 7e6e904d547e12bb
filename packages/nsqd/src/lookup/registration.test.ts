import { eventually, startLookupd, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

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
