/**
 * lookupProducers against several real local HTTP servers standing in for nsqlookupds: merging,
 * a lookupd that is down, topics a lookupd does not know, and replies that are no producer list.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, serve, stopServers } from './http-server.test-util.js';
import { lookupProducers } from './lookup-producers.js';
import { NsqHttpClient } from './nsq-http-client.js';

afterEach(stopServers);

const V1 = { 'content-type': 'application/json; charset=utf-8', 'x-nsq-content-type': 'nsq; version=1.0' };
const http = new NsqHttpClient({ timeoutMs: 2_000 });

interface Peer {
  broadcast_address?: string;
  address?: string;
  hostname?: string;
  tcp_port: number;
  http_port?: number;
}

function peer(host: string, tcp: number, http = tcp + 1): Peer {
  return { broadcast_address: host, hostname: `${host}-name`, tcp_port: tcp, http_port: http };
}

/** A lookupd knowing `topics`; a topic it does not know gets 404 TOPIC_NOT_FOUND, as nsqlookupd answers. */
function lookupd(topics: Record<string, Peer[]>, legacy = false) {
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/lookup') return res.writeHead(404, V1).end('{"message":"NOT_FOUND"}');
    const producers = topics[url.searchParams.get('topic') ?? ''];
    if (producers === undefined) return res.writeHead(404, V1).end('{"message":"TOPIC_NOT_FOUND"}');
    const body = { channels: [], producers: producers.map((p) => ({ remote_address: 'r:1', version: '1.3.0', ...p })) };
    if (legacy) res.writeHead(200).end(JSON.stringify({ status_code: 200, status_txt: 'OK', data: body }));
    else res.writeHead(200, V1).end(JSON.stringify(body));
  });
}

describe('lookupProducers', () => {
  it('merges every lookupd by broadcast address and TCP port, first seen first', async () => {
    const a = await lookupd({ t: [peer('10.0.0.1', 4150), peer('10.0.0.2', 4150)] });
    const b = await lookupd({ t: [peer('10.0.0.2', 4150), peer('10.0.0.1', 4250), peer('::1', 4150)] }, true);
    const { producers, errors } = await lookupProducers(http, [a.address, `http://${b.address}/`], 't');
    expect(errors).toEqual([]);
    expect(producers.map((p) => p.tcpAddress)).toEqual([
      '10.0.0.1:4150',
      '10.0.0.2:4150',
      '10.0.0.1:4250',
      '[::1]:4150',
    ]);
    expect(producers[0]).toEqual({
      broadcastAddress: '10.0.0.1',
      hostname: '10.0.0.1-name',
      remoteAddress: 'r:1',
      tcpPort: 4150,
      httpPort: 4151,
      version: '1.3.0',
      tcpAddress: '10.0.0.1:4150',
      httpAddress: '10.0.0.1:4151',
    });
    for (const l of [a, b]) expect(l.requests).toEqual(['GET /lookup?topic=t accept=application/vnd.nsq; version=1.0']);
  });

  it('still returns what the others know when one lookupd is down, with an error for it', async () => {
    const up = await lookupd({ t: [peer('10.0.0.1', 4150)] });
    const down = `127.0.0.1:${await closedPort()}`;
    const { producers, errors } = await lookupProducers(http, [down, up.address], 't');
    expect(producers.map((p) => p.tcpAddress)).toEqual(['10.0.0.1:4150']);
    expect(errors.map((e) => [e.address, e.status, e.message])).toEqual([
      [down, 0, `GET http://${down}/lookup?topic=t: connect ECONNREFUSED ${down}`],
    ]);
  });

  it('counts a topic a lookupd does not know as no producers, but a 404 of another kind as an error', async () => {
    const knows = await lookupd({ t: [peer('10.0.0.1', 4150)] });
    const not = await lookupd({});
    expect(await lookupProducers(http, [knows.address, not.address], 't')).toEqual({
      producers: [expect.objectContaining({ tcpAddress: '10.0.0.1:4150' })],
      errors: [],
    });
    // Not a lookupd at all (an nsqd's HTTP port has no /lookup): NOT_FOUND is a misconfiguration.
    const nsqd = await serve((_req, res) => res.writeHead(404, V1).end('{"message":"NOT_FOUND"}'));
    const { errors } = await lookupProducers(http, [nsqd.address], 't');
    expect(errors.map((e) => e.message)).toEqual([`GET http://${nsqd.address}/lookup?topic=t: HTTP 404 NOT_FOUND`]);
  });

  it("refuses a reply without a producer list, and reads very old lookupds' address and hostname keys", async () => {
    const odd = await serve((_req, res) => res.writeHead(200, V1).end('{"channels":[]}'));
    const { errors } = await lookupProducers(http, [odd.address], 't');
    expect(errors.map((e) => e.message)).toEqual([
      `GET http://${odd.address}/lookup?topic=t: no producers list in the reply`,
    ]);
    const old = await lookupd({
      t: [{ address: 'old-host', tcp_port: 4150 }, { hostname: 'named', tcp_port: 4150 }, { tcp_port: 1 }],
    });
    const found = await lookupProducers(http, [old.address], 't');
    expect(found.producers.map((p) => p.tcpAddress)).toEqual(['old-host:4150', 'named:4150']);
  });

  it('asks nobody when there is no lookupd', async () => {
    expect(await lookupProducers(http, [], 't')).toEqual({ producers: [], errors: [] });
  });
});
