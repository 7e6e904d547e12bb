/**
 * The security extensions end to end (README "Security"): bearer tokens on nsqd's and
 * nsqlookupd's HTTP APIs, TLS on the nsqd → nsqlookupd link verified against a CA made by openssl
 * here, and no secret in the logs of a daemon that handles AUTH and authorized HTTP calls.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Category } from '@nsq-ts/lookupd';
import { encodeCommand, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, startLookupd, startNsqd } from '@nsq-ts/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeTestCerts, type TestCerts } from './support/certs.js';

let certs: TestCerts;
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('nsqlookupd --http-auth-token', () => {
  it('guards create/delete/tombstone; reads stay open unless --http-auth-reads', async () => {
    const l = await startLookupd({ httpAuthTokens: ['lk-token'] });
    cleanups.push(() => l.close());
    const base = `http://${l.httpAddress}`;
    for (const path of [
      '/topic/create?topic=t',
      '/topic/delete?topic=t',
      '/topic/tombstone?topic=t&node=a:1',
      '/channel/create?topic=t&channel=c',
      '/channel/delete?topic=t&channel=c',
    ]) {
      const res = await fetch(`${base}${path}`, { method: 'POST' });
      expect([path, res.status, res.headers.get('www-authenticate'), await res.text()]).toEqual([
        path,
        401,
        'Bearer',
        '{"message":"UNAUTHORIZED"}',
      ]);
    }
    expect((await fetch(`${base}/topic/create?topic=t`, { method: 'POST', headers: bearer('lk-token') })).status).toBe(
      200,
    );
    for (const path of ['/ping', '/info', '/topics', '/lookup?topic=t', '/nodes', '/metrics']) {
      expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 200]);
    }

    const closed = await startLookupd({ httpAuthTokens: ['lk-token'], httpAuthReads: true });
    cleanups.push(() => closed.close());
    for (const path of ['/ping', '/info', '/topics', '/nodes', '/metrics']) {
      expect([path, (await fetch(`http://${closed.httpAddress}${path}`)).status]).toEqual([path, 401]);
      const ok = await fetch(`http://${closed.httpAddress}${path}`, { headers: bearer('lk-token') });
      expect([path, ok.status]).toEqual([path, 200]);
    }
  });
});

describe('nsqd → nsqlookupd over TLS', () => {
  async function producersOf(httpAddress: string, topic: string): Promise<number> {
    const res = await fetch(`http://${httpAddress}/lookup?topic=${topic}`);
    if (res.status !== 200) return 0;
    return ((await res.json()) as { producers: unknown[] }).producers.length;
  }

  it('registers over a verified TLS link', async () => {
    const l = await startLookupd({ tlsCert: certs.serverCertFile, tlsKey: certs.serverKeyFile });
    cleanups.push(() => l.close());
    const d = await startNsqd({
      lookupdTcpAddresses: [l.tcpAddress],
      lookupdTls: true,
      lookupdTlsRootCaFile: certs.caFile,
    });
    cleanups.push(() => d.close());
    d.nsqd.getTopic('secure');
    await eventually(async () => expect(await producersOf(l.httpAddress, 'secure')).toBe(1));
    const client = [...l.lookupd.clients][0] as { socket: { encrypted?: boolean } };
    expect(client.socket.encrypted).toBe(true);
  });

  it('does not register with an untrusted certificate or in plain text', async () => {
    const l = await startLookupd({ tlsCert: certs.serverCertFile, tlsKey: certs.serverKeyFile });
    cleanups.push(() => l.close());
    // No CA: the test CA is not among the system's, so verification fails.
    const untrusted = await startNsqd({ lookupdTcpAddresses: [l.tcpAddress], lookupdTls: true });
    cleanups.push(() => untrusted.close());
    // Plain TCP to a TLS listener: the handshake fails, nothing registers.
    const plain = await startNsqd({ lookupdTcpAddresses: [l.tcpAddress] });
    cleanups.push(() => plain.close());
    const untrustedWarns = vi.spyOn(untrusted.nsqd.logger, 'warn');
    const plainWarns = vi.spyOn(plain.nsqd.logger, 'warn');
    cleanups.push(
      () => untrustedWarns.mockRestore(),
      () => plainWarns.mockRestore(),
    );
    untrusted.nsqd.getTopic('t1');
    plain.nsqd.getTopic('t2');
    await eventually(() => {
      expect(untrustedWarns.mock.calls.flat().join('\n')).toMatch(/REGISTER t1 failed/);
      expect(plainWarns.mock.calls.flat().join('\n')).toMatch(/REGISTER t2 failed/);
    });
    expect(await producersOf(l.httpAddress, 't1')).toBe(0);
    expect(await producersOf(l.httpAddress, 't2')).toBe(0);
    expect(l.lookupd.db.findProducers(Category.Client, '', '').length).toBe(0);
  });
});

describe('no secret is ever logged', () => {
  it('nsqd and nsqlookupd at debug level: AUTH secrets, auth URLs and HTTP tokens stay out of the logs', async () => {
    const SECRET = 'tcp-auth-secret-7f3a';
    const WRONG_SECRET = 'wrong-auth-secret-91bc';
    const TOKEN = 'http-token-c0ffee';
    const WRONG_TOKEN = 'wrong-http-token-dead';
    const URL_SECRET = 'url-secret-5e5e';
    const LK_TOKEN = 'lookupd-token-beef';

    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    });
    cleanups.push(() => spy.mockRestore());

    const server: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const ok = url.searchParams.get('secret') === SECRET;
      res.writeHead(ok ? 200 : 403, { 'Content-Type': 'application/json' });
      const grant = { topic: '.*', channels: ['.*'], permissions: ['publish', 'subscribe'] };
      res.end(JSON.stringify(ok ? { ttl: 3600, identity: 'alice', authorizations: [grant] } : { message: 'denied' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const authUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/auth?key=${URL_SECRET}`;

    const l = await startLookupd({ httpAuthTokens: [LK_TOKEN], logLevel: 'debug' });
    cleanups.push(() => l.close());
    const d = await startNsqd({
      authHttpAddresses: [authUrl],
      httpAuthTokens: [TOKEN],
      lookupdTcpAddresses: [l.tcpAddress],
      logLevel: 'debug',
    });
    cleanups.push(() => d.close());

    async function auth(secret: string): Promise<string> {
      const c = await RawClient.connect(d.tcpAddress);
      cleanups.push(() => c.close());
      c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ client_id: 'x' })));
      await c.readFrame();
      c.write(encodeCommand('AUTH', [], secret));
      const f = await c.readFrame();
      if (f.type === FrameType.Response) {
        c.write(encodeCommand('PUB', ['t'], 'm'));
        await c.readFrame();
      }
      return `${f.type} ${f.data.toString()}`;
    }
    expect(await auth(SECRET)).toContain('alice');
    expect(await auth(WRONG_SECRET)).toContain('E_AUTH_FAILED');

    const base = `http://${d.httpAddress}`;
    expect((await fetch(`${base}/pub?topic=t`, { method: 'POST', body: 'x', headers: bearer(TOKEN) })).status).toBe(
      200,
    );
    expect(
      (await fetch(`${base}/pub?topic=t`, { method: 'POST', body: 'x', headers: bearer(WRONG_TOKEN) })).status,
    ).toBe(401);
    expect(
      (await fetch(`${base}/config/log_level`, { method: 'PUT', body: 'debug', headers: bearer(TOKEN) })).status,
    ).toBe(200);
    const lk = `http://${l.httpAddress}`;
    expect((await fetch(`${lk}/topic/create?topic=u`, { method: 'POST', headers: bearer(LK_TOKEN) })).status).toBe(200);
    expect((await fetch(`${lk}/topic/create?topic=u`, { method: 'POST', headers: bearer(TOKEN) })).status).toBe(401);
    await eventually(async () => expect(lines.join('')).toContain('TOPIC(t): created'));

    const log = lines.join('');
    expect(log).toContain('DEBUG'); // the capture works and debug lines were written
    for (const secret of [SECRET, WRONG_SECRET, TOKEN, WRONG_TOKEN, URL_SECRET, LK_TOKEN]) {
      expect({ secret, found: log.includes(secret) }).toEqual({ secret, found: false });
    }
  });
});
