/**
 * nsqadmin's upstream reads through the shared NSQ HTTP client, against real local HTTP servers
 * standing in for lookupds: a pre-1.0 lookupd's `{"data": …}` envelope is read like 1.x's bare
 * JSON, producers are merged across lookupds, and TOPIC_NOT_FOUND is no error.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterError, ClusterReader } from './cluster.js';
import { Upstream } from './upstream.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** A lookupd answering /lookup?topic=t with `hosts` as producers (http_port 4151), bare or enveloped. */
async function lookupd(hosts: string[] | null, legacy: boolean): Promise<string> {
  const server = createServer((_req, res) => {
    if (hosts === null) {
      res.writeHead(404, { 'x-nsq-content-type': 'nsq; version=1.0' }).end('{"message":"TOPIC_NOT_FOUND"}');
      return;
    }
    const body = {
      channels: [],
      producers: hosts.map((h) => ({ broadcast_address: h, tcp_port: 4150, http_port: 4151 })),
    };
    if (legacy) res.writeHead(200).end(JSON.stringify({ status_code: 200, status_txt: 'OK', data: body }));
    else res.writeHead(200, { 'x-nsq-content-type': 'nsq; version=1.0' }).end(JSON.stringify(body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('ClusterReader.producersOf', () => {
  it("reads a pre-1.0 lookupd's envelope beside a 1.x one and merges their producers", async () => {
    const lookupdHttpAddresses = [
      await lookupd(['10.0.0.1', '10.0.0.2'], false),
      await lookupd(['10.0.0.2', '10.0.0.3'], true),
      await lookupd(null, false),
    ];
    const reader = new ClusterReader({ lookupdHttpAddresses, nsqdHttpAddresses: [] }, new Upstream(2_000));
    const errors: ClusterError[] = [];
    expect(await reader.producersOf('t', errors)).toEqual(['10.0.0.1:4151', '10.0.0.2:4151', '10.0.0.3:4151']);
    expect(errors).toEqual([]);
  });
});
