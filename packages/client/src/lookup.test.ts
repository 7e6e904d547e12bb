/**
 * lookupd discovery, answer by answer. These tests use a tiny HTTP server answering `/lookup?topic=`
 * in every documented shape (nsq-spec §4.2, §3.1) — bare JSON with `X-NSQ-Content-Type: nsq;
 * version=1.0`, the legacy pre-1.0 `data` envelope (which our nsqlookupd never sends, but older
 * ones do) and 404 TOPIC_NOT_FOUND. The nsqds behind it are real; lookupd-discovery.test.ts runs
 * the same against real nsqlookupds.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { stringCodec } from './codecs.js';
import { Consumer } from './consumer.js';
import { LookupError, lookupProducers } from './lookup.js';
import { Producer } from './producer.js';
import { uniqueTopic } from './testing/helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface FakeLookupd {
  address: string;
  /** Producers (`host:port` TCP addresses) per topic; a missing topic answers 404. */
  topics: Map<string, string[]>;
  /** Answer in the pre-1.0 envelope without the X-NSQ header. */
  legacy: boolean;
  requests: string[];
}

async function fakeLookupd(): Promise<FakeLookupd> {
  const state: FakeLookupd = { address: '', topics: new Map(), legacy: false, requests: [] };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization === undefined ? '' : ` authorization=${req.headers.authorization}`;
    state.requests.push(`${req.method} ${url.pathname}${url.search} accept=${req.headers.accept}${auth}`);
    const send = (status: number, body: unknown, v1: boolean): void => {
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      if (v1) headers['x-nsq-content-type'] = 'nsq; version=1.0';
      res.writeHead(status, headers).end(JSON.stringify(body));
    };
    if (url.pathname !== '/lookup') return send(404, { message: 'NOT_FOUND' }, true);
    const topic = url.searchParams.get('topic');
    if (topic === null) return send(400, { message: 'MISSING_ARG_TOPIC' }, true);
    const producers = state.topics.get(topic);
    if (producers === undefined) return send(404, { message: 'TOPIC_NOT_FOUND' }, true);
    const peers = producers.map((a) => {
      const [host, port] = a.split(':');
      return {
        remote_address: `${host}:40000`,
        hostname: 'fake-host',
        broadcast_address: host,
        tcp_port: Number(port),
        http_port: 1,
        version: '1.3.0',
      };
    });
    const body = { channels: ['ch'], producers: peers };
    if (state.legacy) send(200, { status_code: 200, status_txt: 'OK', data: body }, false);
    else send(200, body, true);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return state;
}

async function nsqd(): Promise<TestNsqd> {
  const d = await startNsqd();
  cleanups.push(() => d.close());
  return d;
}

describe('lookupProducers (against a stand-in lookupd)', () => {
  it('reads bare JSON when X-NSQ-Content-Type says version 1.0', async () => {
    const l = await fakeLookupd();
    l.topics.set('t', ['127.0.0.1:4150', '10.0.0.2:4250']);
    expect(await lookupProducers(l.address, 't', 1_000)).toEqual(['127.0.0.1:4150', '10.0.0.2:4250']);
    expect(l.requests).toEqual(['GET /lookup?topic=t accept=application/vnd.nsq; version=1.0']);
  });

  it('sends an Authorization header only with a token', async () => {
    const l = await fakeLookupd();
    l.topics.set('t', ['127.0.0.1:4150']);
    expect(await lookupProducers(l.address, 't', 1_000, 'tok')).toEqual(['127.0.0.1:4150']);
    expect(await lookupProducers(l.address, 't', 1_000, '')).toEqual(['127.0.0.1:4150']);
    expect(l.requests).toEqual([
      'GET /lookup?topic=t accept=application/vnd.nsq; version=1.0 authorization=Bearer tok',
      'GET /lookup?topic=t accept=application/vnd.nsq; version=1.0',
    ]);
  });

  it('reads the legacy data envelope without the header, and takes http:// addresses', async () => {
    const l = await fakeLookupd();
    l.legacy = true;
    l.topics.set('t', ['127.0.0.1:4150']);
    expect(await lookupProducers(`http://${l.address}/`, 't', 1_000)).toEqual(['127.0.0.1:4150']);
  });

  it('treats 404 TOPIC_NOT_FOUND as no producers and other failures as errors', async () => {
    const l = await fakeLookupd();
    expect(await lookupProducers(l.address, 'unknown', 1_000)).toEqual([]);
    l.legacy = true;
    l.topics.set('t', []);
    expect(await lookupProducers(l.address, 't', 1_000)).toEqual([]);
    await expect(lookupProducers('127.0.0.1:1', 't', 1_000)).rejects.toBeInstanceOf(Error);
  });

  it('refuses a reply without a producers list', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'x-nsq-content-type': 'nsq; version=1.0' }).end('{"channels":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    await expect(lookupProducers(address, 't', 1_000)).rejects.toBeInstanceOf(LookupError);
  });
});

describe('Consumer with lookupd discovery (against a stand-in lookupd)', () => {
  it('connects to the nsqds every lookupd reports and finds new ones on later polls', async () => {
    const [a, b, c] = [await nsqd(), await nsqd(), await nsqd()];
    const topic = uniqueTopic();
    const l1 = await fakeLookupd();
    const l2 = await fakeLookupd();
    l2.legacy = true;
    l1.topics.set(topic, [a.tcpAddress]);
    l2.topics.set(topic, [a.tcpAddress, b.tcpAddress]);
    const seen = new Set<string>();
    const consumer = new Consumer({
      topic,
      channel: 'ch',
      lookupdHttpAddresses: [l1.address, `http://${l2.address}`],
      lookupdPollIntervalMs: 50,
      maxInFlight: 6,
      codec: stringCodec,
      handler: (msg) => {
        seen.add(msg.body);
      },
    });
    cleanups.push(() => consumer.close());
    await consumer.connect();
    expect(
      consumer
        .stats()
        .connections.map((x) => x.address)
        .sort(),
    ).toEqual([a.tcpAddress, b.tcpAddress].sort());
    // A third nsqd starts carrying the topic: the next poll picks it up.
    l1.topics.set(topic, [a.tcpAddress, c.tcpAddress]);
    await eventually(() => consumer.stats().connections.length === 3);
    for (const [i, d] of [a, b, c].entries()) {
      const p = new Producer({ nsqdAddress: d.tcpAddress });
      await p.publish(topic, `from-${i}`);
      await p.close();
    }
    await eventually(() => seen.size === 3);
    expect(consumer.stats().connections.map((x) => x.rdy)).toEqual([2, 2, 2]);
  });

  it('keeps polling while the topic is unknown (404) and reports lookupd failures as errors', async () => {
    const d = await nsqd();
    const topic = uniqueTopic();
    const l = await fakeLookupd();
    const errors: Error[] = [];
    const consumer = new Consumer({
      topic,
      channel: 'ch',
      lookupdHttpAddresses: [l.address, '127.0.0.1:1'],
      lookupdPollIntervalMs: 30,
    });
    consumer.on('error', (e) => errors.push(e));
    cleanups.push(() => consumer.close());
    await consumer.connect();
    expect(consumer.stats().connections).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    l.topics.set(topic, [d.tcpAddress]);
    await eventually(() => consumer.stats().connections.length === 1);
  });
});
