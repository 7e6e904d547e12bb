/**
 * The client when things go wrong, against real nsqd processes and real sockets: the broker
 * killed, nothing listening, the HTTP port instead of the TCP one, a TLS-only nsqd, an
 * AUTH-requiring nsqd, TLS asked of a plain nsqd, and every wrong type a JavaScript caller can
 * pass. In each case the process does not crash, nothing waits past the configured timeouts, and
 * the error (and the log) says what went wrong and where.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { ClientError, Consumer, jsonCodec, type Logger, Producer, ProtocolError } from '@nsq-ts/client';
import { startNsqd } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../packages/cli/src/testing/run.js';
import { makeTestCerts, type TestCerts } from './support/certs.js';
import { perTestProcesses } from './support/per-test.js';
import { waitUntil } from './support/processes.js';

const run = promisify(execFile);
const CLIENT = new URL('../packages/client/dist/index.js', import.meta.url).href;
const t = perTestProcesses();

/** A logger that keeps every line, for asserting what the user would have seen on stderr. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (m) => lines.push(`WARN ${m}`), error: (m) => lines.push(`ERROR ${m}`) };
}

function producer(options: ConstructorParameters<typeof Producer<Buffer | string>>[0]): Producer {
  const p = new Producer(options);
  t.defer(() => p.close());
  return p;
}

function consumer(options: ConstructorParameters<typeof Consumer<Buffer>>[0]): Consumer {
  const c = new Consumer(options);
  t.defer(() => c.close());
  return c;
}

async function nsqd(args: readonly string[] = []) {
  return t.group.startNsqd({ name: 'nsqd', lookupdTcpAddresses: [], args });
}

let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});

describe('the broker is killed', () => {
  it('publishes reject within publishTimeoutMs naming the nsqd; the consumer is told why it lost the connection', async () => {
    const d = await nsqd();
    const logger = recordingLogger();
    const p = producer({ nsqdAddress: d.tcpAddress, publishTimeoutMs: 1_500, reconnectMinDelayMs: 50, logger });
    const c = consumer({ topic: 'events', channel: 'worker', nsqdAddresses: [d.tcpAddress], logger: null });
    const disconnects: Array<Error | null> = [];
    c.on('disconnected', (_address, err) => disconnects.push(err));
    await c.connect();
    await p.publish('events', 'before');

    d.signal('SIGKILL');
    await d.exited;
    const err = await p.publish('events', 'after').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'E_TIMEOUT' });
    expect((err as Error).message).toContain(`within 1500 ms (${d.tcpAddress}: E_CONNECT_FAILED cannot connect`);
    await waitUntil('the disconnected event', () => disconnects.length > 0);
    expect(disconnects[0]).toBeInstanceOf(ClientError);
    expect(disconnects[0]?.message).toMatch(new RegExp(`nsqd ${d.tcpAddress} closed the connection|ECONNRESET`));
    expect(logger.lines.some((l) => l.startsWith('WARN') && l.includes(d.tcpAddress) && l.includes('retrying'))).toBe(
      true,
    );
  });
});

describe('nothing listens', () => {
  it('connect() rejects naming the address, and the process then exits by itself', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    // No close() anywhere: before the fix a rejected connect() kept reconnecting forever, so this
    // process never exited (the test's timeout kills it and fails).
    const script = `
      import { Consumer, Producer } from ${JSON.stringify(CLIENT)};
      const p = new Producer({ nsqdAddress: '${dead}', reconnectMinDelayMs: 20 });
      await p.connect().then(() => console.log('producer connected?!'), (e) => console.log('producer:', e.message));
      await p.publish('t', 'x').catch((e) => console.log('publish:', e.message));
      const q = new Producer({ nsqdAddress: '${dead}', publishTimeoutMs: 300, reconnectMinDelayMs: 20 });
      await q.publish('t', 'x').catch((e) => console.log('unconnected publish:', e.code));
      const c = new Consumer({ topic: 't', channel: 'c', nsqdAddresses: ['${dead}'] });
      await c.connect().then(() => console.log('consumer connected?!'), (e) => console.log('consumer:', e.message));
      const l = new Consumer({ topic: 't', channel: 'c', lookupdHttpAddresses: ['${dead}'] });
      await l.connect().then(() => console.log('lookupd consumer connected?!'), (e) => console.log('lookupd:', e.message));
    `;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 20_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(stdout).toContain(`producer: E_CONNECT_FAILED cannot connect to nsqd ${dead}: connect ECONNREFUSED`);
    expect(stdout).toContain(`publish: E_CLOSED producer stopped: E_CONNECT_FAILED cannot connect to nsqd ${dead}`);
    expect(stdout).toContain('unconnected publish: E_TIMEOUT');
    expect(stdout).toContain(`consumer: E_CONNECT_FAILED cannot connect to nsqd ${dead}: connect ECONNREFUSED`);
    expect(stdout).toContain(`lookupd: GET http://${dead}/lookup?topic=t: connect ECONNREFUSED`);
    // The default logger printed the background retries of the unconnected producer on stderr.
    expect(stderr).toMatch(new RegExp(`nsq-ts WARN: E_CONNECT_FAILED cannot connect to nsqd ${dead}.*; retrying in`));
  }, 30_000);
});

describe("nsqd's HTTP port given as its TCP address", () => {
  it('says this looks like an HTTP port, at once, and does not retry', async () => {
    const d = await nsqd();
    const logger = recordingLogger();
    const p = producer({ nsqdAddress: d.httpAddress, publishTimeoutMs: 60_000, logger });
    // Not even publishTimeoutMs: the failure is permanent, so the waiting publish fails with it.
    const err = await p.publish('t', 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_NOT_NSQD' });
    expect((err as Error).message).toContain(`${d.httpAddress} answered with HTTP ("HTTP/1.1 400 Bad Request")`);
    expect((err as Error).message).toContain('this looks like an HTTP port');
    expect(p.status()[0]).toMatchObject({ failed: true, failures: 1 });
    expect(logger.lines.join('\n')).toContain(`not retrying nsqd ${d.httpAddress}`);

    const c = consumer({ topic: 't', channel: 'c', nsqdAddresses: [d.httpAddress], logger: null });
    await expect(c.connect()).rejects.toThrow('this looks like an HTTP port');
  });
});

describe("nsqd's HTTPS port given as its TCP address", () => {
  it('says the peer closed without answering IDENTIFY, asking whether it is the TCP port', async () => {
    const d = await startNsqd({
      tlsCert: certs.serverCertFile,
      tlsKey: certs.serverKeyFile,
      httpsAddress: '127.0.0.1:0',
    });
    t.defer(() => d.close());
    const https = d.nsqd.httpsAddress;
    const p = producer({ nsqdAddress: https, logger: null });
    await expect(p.connect()).rejects.toThrow(
      `E_CONNECTION_CLOSED nsqd ${https} closed the connection without answering IDENTIFY (is it nsqd's TCP port?)`,
    );
  });
});

describe('TLS', () => {
  it('a TLS-only nsqd refuses a plaintext producer and consumer with a message that says to set tls', async () => {
    // In-process (real sockets): the process helper's readiness check is a plain-HTTP /ping,
    // which a TLS-only nsqd refuses.
    const d = await startNsqd({ tlsCert: certs.serverCertFile, tlsKey: certs.serverKeyFile, tlsRequired: 'true' });
    t.defer(() => d.close());
    const p = producer({ nsqdAddress: d.tcpAddress, publishTimeoutMs: 60_000, logger: null });
    const err = await p.publish('t', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toBe(
      `E_INVALID cannot PUB in current state (TLS required) (nsqd ${d.tcpAddress}: nsqd requires TLS (--tls-required): set the tls option)`,
    );
    // The refusal is not retried: the producer stops and says why.
    await waitUntil('the producer to stop', () => p.status()[0]?.failed);
    await expect(p.publish('t', 'y')).rejects.toThrow(
      'producer stopped: E_INVALID cannot PUB in current state (TLS required)',
    );

    const c = consumer({ topic: 't', channel: 'c', nsqdAddresses: [d.tcpAddress], logger: null });
    await expect(c.connect()).rejects.toThrow('E_INVALID cannot SUB in current state (TLS required)');

    const ok = producer({ nsqdAddress: d.tcpAddress, tls: { ca: certs.ca }, logger: null });
    await ok.publish('t', 'over TLS');
  });

  it('tls asked of an nsqd without a certificate fails at once with E_UNSUPPORTED saying why', async () => {
    const d = await nsqd();
    const p = producer({ nsqdAddress: d.tcpAddress, tls: true, publishTimeoutMs: 60_000, logger: null });
    const err = await p.publish('t', 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED' });
    expect((err as Error).message).toContain(`nsqd ${d.tcpAddress} refused TLS (it has no --tls-cert/--tls-key`);
    const c = consumer({ topic: 't', channel: 'c', nsqdAddresses: [d.tcpAddress], tls: true, logger: null });
    await expect(c.connect()).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
  });

  it('a certificate that does not verify is E_TLS_FAILED, not retried', async () => {
    const d = await nsqd([`--tls-cert=${certs.serverCertFile}`, `--tls-key=${certs.serverKeyFile}`]);
    const p = producer({ nsqdAddress: d.tcpAddress, tls: true, logger: null }); // system CAs: ours is unknown
    const err = await p.connect().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_TLS_FAILED' });
    expect((err as Error).message).toContain(`TLS handshake with nsqd ${d.tcpAddress} failed`);
  });
});

describe('AUTH', () => {
  let server: Server;
  let authAddress = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      const secret = new URL(req.url ?? '/', 'http://x').searchParams.get('secret');
      if (secret !== 'right') {
        res.writeHead(403).end('{"message":"denied"}');
        return;
      }
      const authorizations = [{ topic: '.*', channels: ['.*'], permissions: ['publish', 'subscribe'] }];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ttl: 3600, identity: 'worker', authorizations }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    authAddress = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('no secret, or a wrong one, fails at once saying what nsqd refused; the right one works', async () => {
    const d = await nsqd([`--auth-http-address=${authAddress}`]);
    const none = producer({ nsqdAddress: d.tcpAddress, publishTimeoutMs: 60_000, logger: null });
    const missing = await none.publish('t', 'x').catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'E_AUTH_REQUIRED' });
    expect((missing as Error).message).toContain(`nsqd ${d.tcpAddress} requires AUTH (--auth-http-address)`);

    const wrong = producer({ nsqdAddress: d.tcpAddress, authSecret: 'wrong', logger: null });
    const refused = await wrong.connect().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ProtocolError);
    expect((refused as Error).message).toBe(
      `E_AUTH_FAILED AUTH failed (nsqd ${d.tcpAddress}: nsqd refused the authSecret)`,
    );
    const c = consumer({ topic: 't', channel: 'c', nsqdAddresses: [d.tcpAddress], authSecret: 'wrong', logger: null });
    await expect(c.connect()).rejects.toMatchObject({ code: 'E_AUTH_FAILED' });

    const right = producer({ nsqdAddress: d.tcpAddress, authSecret: 'right', logger: null });
    await right.publish('t', 'authorized');
  });
});

describe('wrong types from JavaScript', () => {
  it('every bad publish rejects with E_INVALID_ARGUMENT, before and after connect(), and the connection stays', async () => {
    const d = await nsqd();
    // As a JavaScript caller sees the API: no types.
    const p = producer({ nsqdAddress: d.tcpAddress, logger: null }) as unknown as {
      publish(topic: unknown, body: unknown): Promise<void>;
      publishMany(topic: unknown, bodies: unknown): Promise<void>;
      publishDeferred(topic: unknown, delay: unknown, body: unknown): Promise<void>;
      connect(): Promise<void>;
      status(): Array<{ ready: boolean; failures: number }>;
    };
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const typed = new Producer<unknown>({ nsqdAddress: d.tcpAddress, codec: jsonCodec<unknown>(), logger: null });
    t.defer(() => typed.close());

    const calls: Array<[string, () => Promise<void>]> = [
      ['a number body', () => p.publish('t', 42)],
      ['an object body without a codec', () => p.publish('t', { id: 1 })],
      ['null', () => p.publish('t', null)],
      ['undefined', () => p.publish('t', undefined)],
      ['a symbol', () => p.publish('t', Symbol('s'))],
      ['a bigint', () => p.publish('t', 1n)],
      ['an empty string', () => p.publish('t', '')],
      ['a number topic', () => p.publish(42, 'x')],
      ['an invalid topic', () => p.publish('no spaces allowed', 'x')],
      ['publishMany of a string', () => p.publishMany('t', 'abc')],
      ['publishMany of numbers', () => p.publishMany('t', [1, 2])],
      ['a string delay', () => p.publishDeferred('t', '10', 'x')],
      ['a fractional delay', () => p.publishDeferred('t', 1.5, 'x')],
      ['a circular object to jsonCodec', () => typed.publish('t', circular)],
      ['undefined to jsonCodec', () => typed.publish('t', undefined)],
    ];
    // Before any connection exists (this crashed the process with ERR_INVALID_ARG_TYPE)…
    for (const [what, call] of calls) {
      let promise: Promise<void> | undefined;
      expect(() => {
        promise = call();
      }, what).not.toThrow();
      await expect(promise, what).rejects.toMatchObject({ code: 'E_INVALID_ARGUMENT' });
    }
    // …and on a live connection (this sent a PUB header with size 0, and nsqd dropped us).
    await p.connect();
    await typed.connect();
    for (const [what, call] of calls) await expect(call(), what).rejects.toBeInstanceOf(ClientError);
    await p.publish('t', 'still connected');
    expect(p.status()[0]).toMatchObject({ ready: true, failures: 0 });
    const circularErr = await typed.publish('t', circular).catch((e: unknown) => e);
    expect((circularErr as Error).message).toContain('codec json failed: Converting circular structure to JSON');
  });

  it('bad options are refused at construction, naming the option', () => {
    const bad: Array<[() => unknown, string]> = [
      [() => new Producer({ nsqdAddress: 'localhost' }), 'nsqdAddress: address "localhost" is not host:port'],
      [() => new Producer({ nsqdAddress: '127.0.0.1:99999' }), 'invalid port'],
      [() => new Producer({ nsqdAddresses: '127.0.0.1:4150' as never }), 'nsqdAddresses must be an array'],
      [() => new Producer({ nsqdAddress: '127.0.0.1:4150', publishTimeoutMs: -1 }), 'publishTimeoutMs must be'],
      [() => new Producer({ nsqdAddress: '127.0.0.1:4150', codec: {} as never }), 'codec must have an encode()'],
      [() => new Producer({ nsqdAddress: '127.0.0.1:4150', snappy: true, deflate: true }), 'snappy and deflate'],
      [() => new Producer({ nsqdAddress: '127.0.0.1:4150', logger: {} as never }), 'logger must be null or'],
      [
        () => new Consumer({ topic: 't', channel: 'c', nsqdAddresses: ['127.0.0.1:4150'], maxInFlight: 0 }),
        'maxInFlight',
      ],
      [() => new Consumer({ topic: 't', channel: 'c', lookupdHttpAddresses: ['lookupd'] }), 'lookupdHttpAddresses[0]'],
      [() => new Consumer({ topic: 'bad topic', channel: 'c', nsqdAddresses: ['127.0.0.1:4150'] }), 'invalid topic'],
    ];
    for (const [make, text] of bad) {
      expect(make, text).toThrow(ClientError);
      expect(make, text).toThrow(text);
    }
  });
});
