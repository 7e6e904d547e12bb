import { createRequire } from 'node:module';
import type { Nsqjs, NsqjsMessage } from '@nsq-ts/test-utils';
import { RawV1Client, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';

// A real nsqjs Reader finds an nsqd only through our lookupd: the nsqd is announced by a raw V1
// client (standing in for nsqd's own registration) with the nsqd's real ports.

const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

async function announce(lookupd: TestLookupd, nsqd: TestNsqd, topic: string): Promise<RawV1Client> {
  const c = await RawV1Client.connect(lookupd.tcpAddress);
  cleanups.push(() => c.close());
  c.identify({
    broadcast_address: '127.0.0.1',
    hostname: 'test-nsqd',
    tcp_port: portOf(nsqd.tcpAddress),
    http_port: portOf(nsqd.httpAddress),
    version: '1.3.0',
  });
  await c.read();
  c.write(`REGISTER ${topic}\n`);
  expect(await c.readText()).toBe('OK');
  return c;
}

async function publish(nsqd: TestNsqd, topic: string, body: string): Promise<void> {
  const res = await fetch(`http://${nsqd.httpAddress}/pub?topic=${topic}`, { method: 'POST', body });
  expect(await res.text()).toBe('OK');
}

describe('nsqjs Reader with lookupdHTTPAddresses', () => {
  it('discovers an nsqd registered with our lookupd and consumes from it', async () => {
    const lookupd = await startLookupd();
    cleanups.push(() => lookupd.close());
    const nsqd = await startNsqd();
    cleanups.push(() => nsqd.close());
    await announce(lookupd, nsqd, 'disco');

    // Messages published before the Reader exists wait in the topic for its first channel.
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const body of sent.slice(0, 10)) await publish(nsqd, 'disco', body);

    const reader = new nsq.Reader('disco', 'ch', {
      lookupdHTTPAddresses: [`http://${lookupd.httpAddress}`],
      lookupdPollInterval: 1,
      maxInFlight: 10,
    });
    cleanups.push(() => reader.close());
    const received: string[] = [];
    const all = new Promise<void>((resolve, reject) => {
      reader.on('message', (msg: NsqjsMessage) => {
        received.push(msg.body.toString());
        msg.finish();
        if (received.length === sent.length) resolve();
      });
      reader.on('error', reject);
    });
    const connected = new Promise<void>((resolve) => reader.once('nsqd_connected', () => resolve()));
    reader.connect();
    await connected;
    for (const body of sent.slice(10)) await publish(nsqd, 'disco', body);

    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`only ${received.length} of ${sent.length} arrived`)), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(received.sort()).toEqual([...sent].sort());
  });
});
