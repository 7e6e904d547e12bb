/**
 * Transport features end to end (nsq-spec §2.7, §2.8, §5.10, §5.11): TLS, snappy and deflate
 * negotiated by nsqjs and by raw clients through a real nsqd, `--tls-required`, client
 * certificate policies, and AUTH against a real HTTP auth server run by the test.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import { connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Consumer, type IdentifyOptions, Producer } from '@nsq-ts/client';
import {
  encodeCommand,
  FrameDecoder,
  FrameType,
  MAGIC_V2,
  SnappyFrameDecoder,
  SnappyFrameEncoder,
} from '@nsq-ts/protocol';
import { eventually, RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from './support/certs.js';

interface NsqMessage {
  readonly body: Buffer;
  finish(): void;
}
interface NsqWriter extends EventEmitter {
  connect(): void;
  close(): void;
  publish(topic: string, msgs: unknown, callback?: (err?: Error | null) => void): void;
}
interface NsqReader extends EventEmitter {
  connect(): void;
  close(): void;
}
interface TransportOptions {
  tls?: boolean;
  tlsVerification?: boolean;
  ca?: Buffer;
  snappy?: boolean;
  deflate?: boolean;
  deflateLevel?: number;
  authSecret?: string;
}
interface Nsqjs {
  Reader: new (topic: string, channel: string, options: TransportOptions & { nsqdTCPAddresses: string[] }) => NsqReader;
  Writer: new (host: string, port: number, options?: TransportOptions) => NsqWriter;
}
const nsq = createRequire(import.meta.url)('nsqjs') as Nsqjs;

let certs: TestCerts;
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nsqdWithTls(options: Parameters<typeof startNsqd>[0] = {}): Promise<TestNsqd> {
  const d = await startNsqd({
    tlsCert: certs.serverCertFile,
    tlsKey: certs.serverKeyFile,
    httpsAddress: '127.0.0.1:0',
    ...options,
  });
  cleanups.push(() => d.close());
  return d;
}

function hostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}

async function writerReady(address: string, options: TransportOptions): Promise<NsqWriter> {
  const [host, port] = hostPort(address);
  const w = new nsq.Writer(host, port, options);
  cleanups.push(() => w.close());
  await new Promise<void>((resolve, reject) => {
    w.once('ready', resolve);
    w.once('error', reject);
    w.connect();
  });
  return w;
}

function publish(w: NsqWriter, topic: string, msgs: Buffer | Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => w.publish(topic, msgs, (err) => (err ? reject(err) : resolve())));
}

/** Subscribes with nsqjs and resolves with the first `n` bodies. */
function receive(address: string, topic: string, n: number, options: TransportOptions): Promise<Buffer[]> {
  const r = new nsq.Reader(topic, 'ch', { nsqdTCPAddresses: [address], ...options });
  cleanups.push(() => r.close());
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    r.on('message', (m: NsqMessage) => {
      got.push(m.body);
      m.finish();
      if (got.length === n) resolve(got);
    });
    r.on('error', reject);
    r.connect();
  });
}

const COMBOS: Array<[string, TransportOptions]> = [
  ['deflate', { deflate: true }],
  ['deflate level 1', { deflate: true, deflateLevel: 1 }],
  ['snappy', { snappy: true }],
  ['tls', { tls: true }],
  ['tls + snappy', { tls: true, snappy: true }],
  ['tls + deflate', { tls: true, deflate: true }],
];

describe.each([0, 1])('nsqjs with TLS and compression, %i transport workers', (transportWorkers) => {
  for (const [label, options] of COMBOS) {
    it(`${label}: publishes and consumes 1-byte and 100 kB messages`, async () => {
      const d = await nsqdWithTls({ transportWorkers });
      const opts = { ...options, ...(options.tls ? { tlsVerification: true, ca: certs.ca } : {}) };
      const small = Buffer.from('x');
      const big = randomBytes(100_000);
      const text = Buffer.from('compressible text '.repeat(6000));
      const w = await writerReady(d.tcpAddress, opts);
      const got = receive(d.tcpAddress, 't', 4, opts);
      await publish(w, 't', small);
      await publish(w, 't', big);
      await publish(w, 't', [text, small]);
      const bodies = await got;
      expect(bodies.map((b) => b.length)).toEqual([1, 100_000, text.length, 1]);
      expect(bodies[1]?.equals(big)).toBe(true);
      expect(bodies[2]?.equals(text)).toBe(true);
      const clients = [...d.nsqd.clients];
      expect(clients).toHaveLength(2);
      for (const c of clients) {
        expect(c.tlsSocket !== null).toBe(options.tls === true);
        expect(c.snappy).toBe(options.snappy === true);
        expect(c.deflate).toBe(options.deflate === true);
      }
    });
  }
});

describe('@nsq-ts/client with TLS and compression', () => {
  const ours: Array<[string, IdentifyOptions]> = [
    ['deflate', { deflate: true }],
    ['snappy', { snappy: true }],
    ['tls', { tls: true }],
    ['tls + snappy', { tls: true, snappy: true }],
    ['tls + deflate', { tls: true, deflate: true, deflateLevel: 3 }],
  ];
  for (const [label, options] of ours) {
    it(`${label}: publishes and consumes 1-byte and 100 kB messages`, async () => {
      const d = await nsqdWithTls();
      const opts: IdentifyOptions = { ...options, ...(options.tls ? { tls: { ca: certs.ca } } : {}) };
      const p = new Producer({ nsqdAddress: d.tcpAddress, ...opts });
      cleanups.push(() => p.close());
      const big = randomBytes(100_000);
      const text = Buffer.from('compressible text '.repeat(6000));
      await p.publish('t', Buffer.from('x'));
      await p.publish('t', big);
      await p.publishMany('t', [text, Buffer.from('y')]);
      const got: Buffer[] = [];
      const c = new Consumer({ topic: 't', channel: 'ch', nsqdAddresses: [d.tcpAddress], maxInFlight: 10, ...opts });
      cleanups.push(() => c.close());
      c.on('message', (m) => {
        got.push(m.body);
      });
      await c.connect();
      await eventually(() => got.length === 4);
      expect(got.map((b) => b.length)).toEqual([1, 100_000, text.length, 1]);
      expect(got[1]?.equals(big)).toBe(true);
      expect(got[2]?.equals(text)).toBe(true);
      for (const client of d.nsqd.clients) {
        expect(client.tlsSocket !== null).toBe(options.tls === true);
        expect(client.snappy).toBe(options.snappy === true);
        expect(client.deflate).toBe(options.deflate === true);
      }
    });
  }

  it('presents a client certificate to require-verify and authenticates with authSecret', async () => {
    const auth = await startAuthServer();
    auth.reply = grant(3600, { topic: '.*', channels: ['.*'], permissions: ['publish', 'subscribe'] });
    const d = await nsqdWithTls({
      tlsClientAuthPolicy: 'require-verify',
      tlsRootCaFile: certs.caFile,
      authHttpAddresses: [auth.address],
    });
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const p = new Producer({ nsqdAddress: d.tcpAddress, tls, deflate: true, authSecret: 'ours' });
    cleanups.push(() => p.close());
    await p.publish('t', 'authed');
    const q = auth.requests[0] as URL;
    expect(q.search).toBe('?common_name=test-client&remote_ip=127.0.0.1&secret=ours&tls=true');

    const noSecret = new Producer({ nsqdAddress: d.tcpAddress, tls, publishTimeoutMs: 300, maxPublishAttempts: 1 });
    cleanups.push(() => noSecret.close());
    await expect(noSecret.publish('t', 'x')).rejects.toThrow(/AUTH/);
    const noCert = new Producer({
      nsqdAddress: d.tcpAddress,
      tls: { ca: certs.ca },
      authSecret: 'ours',
      publishTimeoutMs: 300,
    });
    cleanups.push(() => noCert.close());
    await expect(noCert.publish('t', 'x')).rejects.toThrow();
  });
});

// ---- raw clients ----

/** Sends IDENTIFY and returns the decoded JSON reply. */
async function identify(c: RawClient, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ feature_negotiation: true, ...body })));
  const f = await c.readFrame();
  expect(f.type, f.data.toString()).toBe(FrameType.Response);
  return JSON.parse(f.data.toString()) as Record<string, unknown>;
}

/** A raw TLS upgrade: magic, IDENTIFY tls_v1, handshake; resolves with the TLS socket or rejects. */
function rawTls(
  address: string,
  options: { cert?: Buffer; key?: Buffer },
): Promise<{ socket: TLSSocket; frames: Buffer[] }> {
  return new Promise((resolve, reject) => {
    void RawClient.connect(address).then(async (c) => {
      const reply = await identify(c, { tls_v1: true });
      expect(reply.tls_v1).toBe(true);
      const socket = tlsConnect({
        socket: (c as unknown as { socket: import('node:net').Socket }).socket,
        ca: certs.ca,
        servername: 'localhost',
        ...options,
      });
      const frames: Buffer[] = [];
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => decoder.push(chunk, (_t, data) => frames.push(Buffer.from(data))));
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('closed')));
      cleanups.push(() => socket.destroy());
      void eventually(() => frames.length > 0, { timeoutMs: 3_000 }).then(() => resolve({ socket, frames }), reject);
    }, reject);
  });
}

describe('IDENTIFY negotiation', () => {
  it('reports what it negotiated and refuses snappy with deflate', async () => {
    const d = await nsqdWithTls({ maxDeflateLevel: 4 });
    const c = await RawClient.connect(d.tcpAddress);
    cleanups.push(() => c.close());
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ feature_negotiation: true, snappy: true, deflate: true })));
    const f = await c.readFrame();
    expect(f.type).toBe(FrameType.Error);
    expect(f.data.toString()).toBe('E_IDENTIFY_FAILED cannot enable both deflate and snappy compression');
    await c.waitClosed();

    const c2 = await RawClient.connect(d.tcpAddress);
    cleanups.push(() => c2.close());
    const reply = await identify(c2, { deflate_level: 9 });
    expect(reply).toMatchObject({
      tls_v1: false,
      deflate: false,
      snappy: false,
      deflate_level: 4,
      max_deflate_level: 4,
      auth_required: false,
    });
  });

  it.each([0, 1])(
    'switches to snappy at the exact byte after IDENTIFY, keeping bytes sent with it (%i transport workers)',
    async (transportWorkers) => {
      const d = await startNsqd({ transportWorkers });
      cleanups.push(() => d.close());
      const enc = new SnappyFrameEncoder();
      // IDENTIFY and the first compressed command in one write: the server must not lose the tail.
      const c = rawSnappy(d, enc.encode([encodeCommand('PUB', ['t'], 'early')]));
      // The JSON frame in plaintext, then a snappy stream carrying OK (upgrade) and OK (PUB).
      const frames: string[] = [];
      await eventually(() => {
        const received = c.received();
        const jsonEnd = 4 + received.readUInt32BE(0);
        expect(JSON.parse(received.subarray(8, jsonEnd).toString())).toMatchObject({ snappy: true });
        const plain = Buffer.concat(new SnappyFrameDecoder().push(received.subarray(jsonEnd)));
        frames.length = 0;
        new FrameDecoder().push(plain, (_t, data) => frames.push(data.toString()));
        expect(frames).toEqual(['OK', 'OK']);
      });
      expect(d.nsqd.topics.get('t')?.messageCount).toBe(1);
    },
  );

  it('does not offer what the server disables', async () => {
    const d = await startNsqd({ snappy: false, deflate: false });
    cleanups.push(() => d.close());
    const c = await RawClient.connect(d.tcpAddress);
    cleanups.push(() => c.close());
    expect(await identify(c, { tls_v1: true, snappy: true })).toMatchObject({ tls_v1: false, snappy: false });
    c.write(encodeCommand('PUB', ['t'], 'still plain'));
    expect((await c.readFrame()).data.toString()).toBe('OK');
  });

  it('answers OK over TLS and takes commands through it; /stats shows the TLS fields', async () => {
    const d = await nsqdWithTls();
    const { socket, frames } = await rawTls(d.tcpAddress, {});
    expect(frames[0]?.toString()).toBe('OK');
    socket.write(encodeCommand('PUB', ['t'], 'over tls'));
    await eventually(() => frames.length === 2);
    expect(frames[1]?.toString()).toBe('OK');
    const producer = (await producers(d))[0];
    expect(producer).toMatchObject({ tls: true, tls_version: 'TLS1.3', tls_negotiated_protocol_is_mutual: true });
    expect(String(producer.tls_cipher_suite)).toMatch(/^TLS_/);
  });
});

/** `/stats` producers (connections that published), as nsqadmin reads them. */
async function producers(d: TestNsqd): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`http://${d.httpAddress}/stats?format=json`);
  return ((await res.json()) as { producers: Array<Record<string, unknown>> }).producers;
}

describe('--tls-required and client certificates', () => {
  it('refuses plaintext commands and plain HTTP; HTTPS serves the API', async () => {
    const d = await nsqdWithTls({ tlsRequired: 'true' });
    const c = await RawClient.connect(d.tcpAddress);
    cleanups.push(() => c.close());
    c.write(encodeCommand('PUB', ['t'], 'plain'));
    const f = await c.readFrame();
    expect(f.data.toString()).toBe('E_INVALID cannot PUB in current state (TLS required)');
    await c.waitClosed();

    const res = await fetch(`http://${d.httpAddress}/ping`);
    expect(res.status).toBe(403);
    expect(res.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
    const httpsPort = hostPort(d.nsqd.httpsAddress)[1];
    expect(await res.text()).toBe(`{"message": "TLS_REQUIRED", "https_port": ${httpsPort}}`);

    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: httpsPort, path: '/ping', ca: certs.ca, servername: 'localhost' },
        (r) => {
          let text = '';
          r.on('data', (chunk: Buffer) => {
            text += chunk.toString();
          });
          r.on('end', () => resolve(`${r.statusCode} ${text}`));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('200 OK');

    const { socket, frames } = await rawTls(d.tcpAddress, {});
    socket.write(encodeCommand('PUB', ['t'], 'over tls'));
    await eventually(() => frames.length === 2);
    expect(frames[1]?.toString()).toBe('OK');
  });

  it('tcp-https leaves plain HTTP alone', async () => {
    const d = await nsqdWithTls({ tlsRequired: 'tcp-https' });
    expect((await fetch(`http://${d.httpAddress}/ping`)).status).toBe(200);
  });

  it('require-verify refuses a client without a valid certificate', async () => {
    const d = await nsqdWithTls({ tlsClientAuthPolicy: 'require-verify', tlsRootCaFile: certs.caFile });
    await expect(rawTls(d.tcpAddress, {})).rejects.toThrow();
    // A self-signed client certificate is not signed by the CA.
    const { frames } = await rawTls(d.tcpAddress, { cert: certs.clientCert, key: certs.clientKey });
    expect(frames[0]?.toString()).toBe('OK');
  });

  it('require refuses a client without any certificate', async () => {
    const d = await nsqdWithTls({ tlsClientAuthPolicy: 'require' });
    await expect(rawTls(d.tcpAddress, {})).rejects.toThrow();
    const { frames } = await rawTls(d.tcpAddress, { cert: certs.clientCert, key: certs.clientKey });
    expect(frames[0]?.toString()).toBe('OK');
  });
});

// ---- AUTH ----

interface AuthServer {
  address: string;
  requests: URL[];
  reply: { status: number; body: unknown };
}

async function startAuthServer(): Promise<AuthServer> {
  const state: AuthServer = { address: '', requests: [], reply: { status: 200, body: {} } };
  const server: Server = createServer((req, res) => {
    state.requests.push(new URL(req.url ?? '/', 'http://x'));
    res.writeHead(state.reply.status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(state.reply.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address() as { port: number };
  state.address = `127.0.0.1:${a.port}`;
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return state;
}

function grant(ttl: number, ...authorizations: Array<{ topic: string; channels: string[]; permissions: string[] }>) {
  return { status: 200, body: { ttl, identity: 'alice', identity_url: 'https://id/alice', authorizations } };
}

async function rawAuthed(d: TestNsqd, secret: string): Promise<{ c: RawClient; reply: string }> {
  const c = await RawClient.connect(d.tcpAddress);
  cleanups.push(() => c.close());
  const r = await identify(c, {});
  expect(r.auth_required).toBe(true);
  c.write(encodeCommand('AUTH', [], secret));
  const f = await c.readFrame();
  return { c, reply: `${f.type} ${f.data.toString()}` };
}

describe('AUTH', () => {
  it('asks the auth server, allows and denies by regex, and shows the identity', async () => {
    const auth = await startAuthServer();
    auth.reply = grant(
      3600,
      { topic: '^ok', channels: ['.*'], permissions: ['publish', 'subscribe'] },
      { topic: 'sub', channels: ['^c'], permissions: ['subscribe'] },
    );
    const d = await startNsqd({ authHttpAddresses: [auth.address] });
    cleanups.push(() => d.close());

    const before = await RawClient.connect(d.tcpAddress);
    cleanups.push(() => before.close());
    before.write(encodeCommand('PUB', ['ok'], 'x'));
    expect((await before.readFrame()).data.toString()).toBe('E_AUTH_FIRST AUTH required before PUB');

    const { c, reply } = await rawAuthed(d, 's3cret');
    expect(reply).toBe(
      `${FrameType.Response} {"identity":"alice","identity_url":"https://id/alice","permission_count":2}`,
    );
    const q = auth.requests[0] as URL;
    expect(q.pathname).toBe('/auth');
    expect(q.search).toBe('?common_name=&remote_ip=127.0.0.1&secret=s3cret&tls=false');
    c.write(encodeCommand('PUB', ['ok_topic'], 'x'));
    c.write(encodeCommand('MPUB', ['ok2'], Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 0x61])));
    c.write(encodeCommand('DPUB', ['ok3', '10'], 'x'));
    expect((await c.readFrames(3)).map((f) => f.data.toString())).toEqual(['OK', 'OK', 'OK']);
    expect((await producers(d)).find((p) => p.authed === true)).toMatchObject({
      auth_identity: 'alice',
      auth_identity_url: 'https://id/alice',
    });
    c.write(encodeCommand('PUB', ['nope'], 'x'));
    expect((await c.readFrame()).data.toString()).toBe('E_UNAUTHORIZED AUTH failed for PUB on "nope" ""');

    const sub = await rawAuthed(d, 's3cret');
    sub.c.write(encodeCommand('SUB', ['subtopic', 'other']));
    expect((await sub.c.readFrame()).data.toString()).toBe('E_UNAUTHORIZED AUTH failed for SUB on "subtopic" "other"');
    const sub2 = await rawAuthed(d, 's3cret');
    sub2.c.write(encodeCommand('SUB', ['subtopic', 'chan']));
    expect((await sub2.c.readFrame()).data.toString()).toBe('OK');
    sub2.c.write(encodeCommand('AUTH', [], 'again'));
    expect((await sub2.c.readFrame()).data.toString()).toBe('E_INVALID cannot AUTH in current state');
  });

  it('re-queries after the TTL and applies the new answer', async () => {
    const auth = await startAuthServer();
    auth.reply = grant(0.2, { topic: '.*', channels: ['.*'], permissions: ['publish'] });
    const d = await startNsqd({ authHttpAddresses: [auth.address] });
    cleanups.push(() => d.close());
    const { c } = await rawAuthed(d, 'k');
    c.write(encodeCommand('PUB', ['t'], 'x'));
    expect((await c.readFrame()).data.toString()).toBe('OK');
    auth.reply = grant(3600, { topic: '^other$', channels: ['.*'], permissions: ['publish'] });
    await eventually(
      async () => {
        c.write(encodeCommand('PUB', ['t'], 'x'));
        const text = (await c.readFrame()).data.toString();
        expect(text).toBe('E_UNAUTHORIZED AUTH failed for PUB on "t" ""');
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    expect(auth.requests.length).toBe(2);
  });

  it('reports auth server failures, empty grants and a disabled AUTH', async () => {
    const auth = await startAuthServer();
    const d = await startNsqd({ authHttpAddresses: [`http://${auth.address}/auth`] });
    cleanups.push(() => d.close());
    auth.reply = { status: 500, body: {} };
    expect((await rawAuthed(d, 'k')).reply).toBe(`${FrameType.Error} E_AUTH_FAILED AUTH failed`);
    auth.reply = grant(60);
    expect((await rawAuthed(d, 'k')).reply).toBe(`${FrameType.Error} E_UNAUTHORIZED AUTH no authorizations found`);

    const plain = await startNsqd();
    cleanups.push(() => plain.close());
    const c = await RawClient.connect(plain.tcpAddress);
    cleanups.push(() => c.close());
    c.write(encodeCommand('AUTH', [], 'k'));
    expect((await c.readFrame()).data.toString()).toBe('E_AUTH_DISABLED AUTH disabled');
  });

  it.each([0, 1])('nsqjs authenticates over TLS + snappy (%i transport workers)', async (transportWorkers) => {
    const auth = await startAuthServer();
    auth.reply = grant(3600, { topic: '.*', channels: ['.*'], permissions: ['publish', 'subscribe'] });
    const d = await nsqdWithTls({ authHttpAddresses: [auth.address], transportWorkers });
    const opts = { tls: true, ca: certs.ca, snappy: true, authSecret: 'nsqjs-secret' };
    const w = await writerReady(d.tcpAddress, opts);
    const got = receive(d.tcpAddress, 'a', 1, opts);
    await publish(w, 'a', Buffer.from('authed'));
    expect((await got)[0]?.toString()).toBe('authed');
    expect(
      auth.requests.every(
        (q) => q.searchParams.get('tls') === 'true' && q.searchParams.get('secret') === 'nsqjs-secret',
      ),
    ).toBe(true);
  });
});

/**
 * A raw connection that asks for snappy in IDENTIFY, sending `tail` in the same write: what it
 * received (the JSON reply, then snappy), where the reply ends, and its close.
 */
function rawSnappy(
  d: TestNsqd,
  tail: Buffer = Buffer.alloc(0),
): { socket: Socket; received: () => Buffer; jsonEnd: () => number; closed: Promise<void> } {
  const [host, port] = hostPort(d.tcpAddress);
  const socket = netConnect({ host, port });
  cleanups.push(() => socket.destroy());
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const identify = encodeCommand('IDENTIFY', [], JSON.stringify({ feature_negotiation: true, snappy: true }));
  socket.write(Buffer.concat([MAGIC_V2, identify, tail]));
  const jsonEnd = (): number => (received.length < 4 ? Number.POSITIVE_INFINITY : 4 + received.readUInt32BE(0));
  return { socket, received: () => received, jsonEnd, closed };
}

describe('--transport-workers', () => {
  it('a worker that dies closes its connections and is replaced', async () => {
    const d = await nsqdWithTls({ transportWorkers: 1 });
    const pool = d.nsqd.transportPool;
    if (pool === null) throw new Error('no transport pool');
    const c = rawSnappy(d);
    // The snappy OK came through the worker.
    await eventually(() => expect(c.received().length).toBeGreaterThan(c.jsonEnd()));
    const client = [...d.nsqd.clients][0];
    const dead = pool.threads[0];
    await dead?.terminate();
    await c.closed;
    expect(client?.closed).toBe(true);
    expect(pool.threads).toHaveLength(1);
    expect(pool.threads[0]).not.toBe(dead);
    // The replacement carries new connections.
    const p = new Producer({ nsqdAddress: d.tcpAddress, tls: { ca: certs.ca }, deflate: true });
    cleanups.push(() => p.close());
    await p.publish('t', Buffer.from('after'));
    expect(d.nsqd.topics.get('t')?.messageCount).toBe(1);
  });

  it('a corrupt snappy stream closes that connection only', async () => {
    const d = await nsqdWithTls({ transportWorkers: 1 });
    const c = rawSnappy(d);
    await eventually(() => expect(c.received().length).toBeGreaterThanOrEqual(c.jsonEnd()));
    c.socket.write(Buffer.from('definitely not a snappy stream'));
    await c.closed;
    const p = new Producer({ nsqdAddress: d.tcpAddress, snappy: true });
    cleanups.push(() => p.close());
    await p.publish('t', Buffer.from('fine'));
    expect(d.nsqd.topics.get('t')?.messageCount).toBe(1);
  });

  it('a TLS consumer that stops reading is held at the slow-consumer cap, then gets everything', async () => {
    const d = await nsqdWithTls({ transportWorkers: 1 });
    const count = 300;
    const p = new Producer({ nsqdAddress: d.tcpAddress });
    cleanups.push(() => p.close());
    const body = randomBytes(100_000);
    for (let i = 0; i < count; i += 50)
      await p.publishMany(
        't',
        Array.from({ length: 50 }, () => body),
      );
    const { socket, frames } = await rawTls(d.tcpAddress, {});
    socket.write(encodeCommand('SUB', ['t', 'ch']));
    await eventually(() => frames.length === 2);
    socket.pause();
    socket.write(encodeCommand('RDY', [String(count)]));
    const consumer = [...d.nsqd.clients].find((client) => client.channel !== null);
    if (consumer === undefined) throw new Error('no consumer');
    await eventually(() => consumer.writer.congested);
    // Held: the connection's unsent bytes (in the worker and the socket) stay near the cap, and
    // most messages are not even sent.
    expect(consumer.writer.unsentBytes).toBeLessThan(6 * 1024 * 1024); // the cap is 4 MiB
    expect(consumer.inFlight).toBeLessThan(count);
    socket.resume();
    await eventually(() => frames.length === 2 + count, { timeoutMs: 20_000 });
    expect(frames.slice(2).every((f) => f.length === 26 + body.length)).toBe(true);
  });
});
