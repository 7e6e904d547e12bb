import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeldConnections } from './held-connections.js';

const servers = new Map<HeldConnections, Server>();
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.values()) await new Promise((r) => s.close(r));
  servers.clear();
});

/** A listener whose connections go to `held`, and a client connected to it (resolves once held). */
async function dial(held: HeldConnections): Promise<Socket> {
  let server = servers.get(held);
  if (server === undefined) {
    const s = createServer((socket) => held.hold(socket));
    servers.set(held, s);
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    server = s;
  }
  const before = held.size;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  sockets.push(client);
  await once(client, 'connect');
  while (held.size === before) await new Promise((r) => setImmediate(r));
  return client;
}

describe('HeldConnections', () => {
  it('hands a held connection to the stream once it opens, with what the follower sent meanwhile', async () => {
    const held = new HeldConnections(60_000);
    const client = await dial(held);
    client.write('hello');
    // The follower's hello is sent before the stream exists: it must still reach it.
    await new Promise((r) => setTimeout(r, 20));
    const accepted: Socket[] = [];
    held.release((s) => accepted.push(s));
    expect(accepted).toHaveLength(1);
    expect(held.size).toBe(0);
    const server = accepted[0] as Socket;
    sockets.push(server);
    const chunks: Buffer[] = [];
    server.on('data', (c: Buffer) => chunks.push(c));
    while (Buffer.concat(chunks).toString() !== 'hello') await new Promise((r) => setImmediate(r));
    // And the connection is the follower's, alive both ways.
    server.write('welcome');
    const [reply] = (await once(client, 'data')) as [Buffer];
    expect(reply.toString()).toBe('welcome');
  });

  it('closes a connection no stream takes within the hold, and forgets one its follower closed', async () => {
    const held = new HeldConnections(50);
    const waiting = await dial(held);
    await once(waiting, 'close');
    expect(held.size).toBe(0);

    const long = new HeldConnections(60_000);
    const gone = await dial(long);
    const kept = await dial(long);
    gone.destroy();
    while (long.size > 1) await new Promise((r) => setImmediate(r));
    const accepted: Socket[] = [];
    long.release((s) => accepted.push(s));
    expect(accepted).toHaveLength(1);
    sockets.push(...accepted);
    long.close();
    expect(kept.destroyed).toBe(false);
  });

  it('close() ends every held connection', async () => {
    const held = new HeldConnections(60_000);
    const a = await dial(held);
    const b = await dial(held);
    held.close();
    expect(held.size).toBe(0);
    await Promise.all([once(a, 'close'), once(b, 'close')]);
  });
});
