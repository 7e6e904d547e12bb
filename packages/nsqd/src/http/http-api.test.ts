import { connect } from 'node:net';
import { decodeMessage, encodeMpubBody } from '@nsq-ts/protocol';
import { RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { NsqdOptions } from '../options.js';

let daemon: TestNsqd | null = null;

async function nsqd(options: Partial<NsqdOptions> = {}): Promise<TestNsqd> {
  daemon = await startNsqd(options);
  return daemon;
}

afterEach(async () => {
  await daemon?.close();
  daemon = null;
});

async function call(d: TestNsqd, method: string, path: string, body?: string | Buffer) {
  const res = await fetch(`http://${d.httpAddress}${path}`, { method, body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function expectError(
  d: TestNsqd,
  method: string,
  path: string,
  status: number,
  code: string,
  body?: string | Buffer,
) {
  const res = await call(d, method, path, body);
  expect({ status: res.status, text: res.text }).toEqual({ status, text: JSON.stringify({ message: code }) });
  expect(res.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
}

async function consume(d: TestNsqd, topic: string, n: number): Promise<string[]> {
  const c = await RawClient.connect(d.tcpAddress);
  c.write(`SUB ${topic} c\nRDY 100\n`);
  await c.readFrame();
  const bodies = (await c.readFrames(n)).map((f) => decodeMessage(f.data).body.toString());
  c.close();
  return bodies;
}

describe('conventions', () => {
  it('/ping is plain text without the V1 header', async () => {
    const d = await nsqd();
    const res = await call(d, 'GET', '/ping');
    expect(res).toMatchObject({ status: 200, text: 'OK' });
    expect(res.headers.get('x-nsq-content-type')).toBeNull();
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  });

  it('answers unknown paths 404, wrong methods 405 with Allow, bad queries 400', async () => {
    const d = await nsqd();
    await expectError(d, 'GET', '/nope', 404, 'NOT_FOUND');
    await expectError(d, 'GET', '/pub?topic=t', 405, 'METHOD_NOT_ALLOWED');
    expect((await call(d, 'DELETE', '/topic/create')).headers.get('allow')).toBe('OPTIONS, POST');
    await expectError(d, 'POST', '/topic/create?topic=t%zz', 400, 'INVALID_REQUEST');
    await expectError(d, 'POST', '/topic/create?topic=t;x=1', 400, 'INVALID_REQUEST');
    // Handlers that take no parameters never parse them (doInfo, doConfig).
    expect((await call(d, 'GET', '/info?x=%zz')).status).toBe(200);
  });

  it("sets httprouter's Allow on a 405 and answers OPTIONS with it", async () => {
    const d = await nsqd();
    const allow = async (method: string, path: string) => {
      const res = await call(d, method, path);
      return [res.status, res.headers.get('allow')];
    };
    expect(await allow('POST', '/ping')).toEqual([405, 'GET, OPTIONS']);
    expect(await allow('HEAD', '/ping')).toEqual([405, 'GET, OPTIONS']);
    expect(await allow('GET', '/pub')).toEqual([405, 'OPTIONS, POST']);
    expect(await allow('DELETE', '/config/log_level')).toEqual([405, 'GET, OPTIONS, PUT']);
    const options = await call(d, 'OPTIONS', '/config/log_level');
    expect([options.status, options.headers.get('allow'), options.text]).toEqual([200, 'GET, OPTIONS, PUT', '']);
    expect(options.headers.get('content-type')).toBeNull();
    expect(options.headers.get('x-nsq-content-type')).toBeNull();
    expect(await allow('OPTIONS', '/stats')).toEqual([200, 'GET, OPTIONS']);
    await expectError(d, 'OPTIONS', '/nope', 404, 'NOT_FOUND');
  });

  it('redirects a trailing slash or a mis-cased path as httprouter does (301 for GET, 307 otherwise)', async () => {
    const d = await nsqd();
    const redirect = async (method: string, path: string) => {
      const res = await fetch(`http://${d.httpAddress}${path}`, { method, redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location'), body: await res.text() };
    };
    expect(await redirect('GET', '/ping/')).toEqual({
      status: 301,
      location: '/ping',
      body: '<a href="/ping">Moved Permanently</a>.\n\n',
    });
    expect(await redirect('GET', '/STATS?format=json&topic=t')).toEqual({
      status: 301,
      location: '/stats?format=json&topic=t',
      body: '<a href="/stats?format=json&amp;topic=t">Moved Permanently</a>.\n\n',
    });
    expect(await redirect('POST', '/topic//create?topic=t')).toEqual({
      status: 307,
      location: '/topic/create?topic=t',
      body: '',
    });
    expect(await redirect('GET', '/Config/log_level/')).toMatchObject({ status: 301, location: '/config/log_level' });
    // Only the request's own method counts: no POST route is /ping, so no redirect.
    await expectError(d, 'POST', '/ping/', 404, 'NOT_FOUND');
  });

  it('answers a TCP client on the HTTP port with HTTP/1.1 400', async () => {
    const d = await nsqd();
    const [host, port] = [d.httpAddress.split(':')[0] as string, Number(d.httpAddress.split(':')[1])];
    const reply = await new Promise<string>((resolve) => {
      const s = connect({ host, port }, () => s.write('  V2IDENTIFY\n\0\0\0\x02{}'));
      let data = '';
      s.on('data', (chunk) => {
        data += chunk.toString('latin1');
      });
      s.on('close', () => resolve(data));
    });
    expect(reply.startsWith('HTTP/1.1 400')).toBe(true);
  });

  it('/info reports ports, limits in ns and the version', async () => {
    const d = await nsqd({ broadcastAddress: 'node-a' });
    const res = await call(d, 'GET', '/info');
    const info = JSON.parse(res.text);
    expect(Object.keys(info)).toEqual([
      'version',
      'broadcast_address',
      'hostname',
      'http_port',
      'tcp_port',
      'start_time',
      'max_heartbeat_interval',
      'max_output_buffer_size',
      'max_output_buffer_timeout',
      'max_deflate_level',
    ]);
    expect(info).toMatchObject({
      version: '1.3.0',
      broadcast_address: 'node-a',
      http_port: Number(d.httpAddress.split(':')[1]),
      tcp_port: Number(d.tcpAddress.split(':')[1]),
      max_heartbeat_interval: 60_000_000_000,
      max_output_buffer_size: 65536,
      max_output_buffer_timeout: 30_000_000_000,
      max_deflate_level: 6,
    });
    expect(Math.abs(info.start_time - Date.now() / 1000)).toBeLessThan(60);
  });
});

describe('/pub and /mpub', () => {
  it('publishes, auto-creating the topic, and answers text OK', async () => {
    const d = await nsqd();
    const res = await call(d, 'POST', '/pub?topic=t', 'hello');
    expect(res).toMatchObject({ status: 200, text: 'OK' });
    expect(res.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
    expect(await consume(d, 't', 1)).toEqual(['hello']);
  });

  it('checks the body before the topic, and the defer range', async () => {
    const d = await nsqd({ maxMsgSize: 10, maxReqTimeoutMs: 1000 });
    await expectError(d, 'POST', '/pub?topic=bad!', 413, 'MSG_TOO_BIG', 'x'.repeat(11));
    await expectError(d, 'POST', '/pub?topic=bad!', 400, 'MSG_EMPTY', '');
    await expectError(d, 'POST', '/pub', 400, 'MISSING_ARG_TOPIC', 'x');
    await expectError(d, 'POST', '/pub?topic=bad!', 400, 'INVALID_TOPIC', 'x');
    await expectError(d, 'POST', '/pub?topic=t&defer=x', 400, 'INVALID_DEFER', 'x');
    await expectError(d, 'POST', '/pub?topic=t&defer=-1', 400, 'INVALID_DEFER', 'x');
    await expectError(d, 'POST', '/pub?topic=t&defer=1001', 400, 'INVALID_DEFER', 'x');
  });

  it('defers with ?defer=', async () => {
    const d = await nsqd();
    await call(d, 'POST', '/topic/create?topic=t');
    await call(d, 'POST', '/channel/create?topic=t&channel=c');
    expect((await call(d, 'POST', '/pub?topic=t&defer=300', 'later')).status).toBe(200);
    expect(d.nsqd.topics.get('t')?.channels.get('c')?.deferredCount).toBe(1);
    const start = Date.now();
    expect(await consume(d, 't', 1)).toEqual(['later']);
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
  });

  it('/mpub text mode splits lines and skips empty ones', async () => {
    const d = await nsqd();
    expect((await call(d, 'POST', '/mpub?topic=t', 'a\n\nb\nc\n')).text).toBe('OK');
    expect(await consume(d, 't', 3)).toEqual(['a', 'b', 'c']);
    expect((await call(d, 'POST', '/mpub?topic=e', '\n\n')).status).toBe(200);
    expect(d.nsqd.topics.get('e')?.messageCount).toBe(0);
  });

  it('/mpub binary mode takes count + sized messages, binary=false means text', async () => {
    const d = await nsqd();
    const body = encodeMpubBody([Buffer.from('x\ny'), Buffer.from('z')]);
    expect((await call(d, 'POST', '/mpub?topic=t&binary=true', body)).text).toBe('OK');
    expect(await consume(d, 't', 2)).toEqual(['x\ny', 'z']);
    expect((await call(d, 'POST', '/mpub?topic=u&binary=false', 'p\nq')).text).toBe('OK');
    expect(d.nsqd.topics.get('u')?.messageCount).toBe(2);
  });

  it('/mpub refuses oversized bodies and bad binary bodies with 413', async () => {
    const d = await nsqd({ maxMsgSize: 4, maxBodySize: 40 });
    await expectError(d, 'POST', '/mpub?topic=t', 413, 'BODY_TOO_BIG', 'x'.repeat(41));
    await expectError(d, 'POST', '/mpub?topic=t', 413, 'MSG_TOO_BIG', 'aaaaa\nb');
    await expectError(d, 'POST', '/mpub?topic=t&binary=1', 413, 'BAD_BODY', Buffer.from([0, 0, 0, 0]));
    await expectError(d, 'POST', '/mpub?topic=t&binary=1', 413, 'BAD_MESSAGE', encodeMpubBody([Buffer.from('12345')]));
    await expectError(d, 'POST', '/mpub?topic=bad!', 400, 'INVALID_TOPIC', 'x');
    expect(d.nsqd.topics.get('t')?.messageCount).toBe(0);
  });
});

describe('topics and channels', () => {
  it('create, pause, unpause, empty and delete topics', async () => {
    const d = await nsqd();
    const created = await call(d, 'POST', '/topic/create?topic=t');
    expect(created).toMatchObject({ status: 200, text: '' });
    expect(created.headers.get('content-type')).toBeNull();
    expect(created.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
    await call(d, 'POST', '/pub?topic=t', 'm');
    expect((await call(d, 'POST', '/topic/pause?topic=t')).status).toBe(200);
    expect(d.nsqd.topics.get('t')?.paused).toBe(true);
    expect((await call(d, 'POST', '/topic/unpause?topic=t')).status).toBe(200);
    expect(d.nsqd.topics.get('t')?.paused).toBe(false);
    expect((await call(d, 'POST', '/topic/empty?topic=t')).status).toBe(200);
    expect(d.nsqd.topics.get('t')?.depth).toBe(0);
    expect((await call(d, 'POST', '/topic/delete?topic=t')).status).toBe(200);
    expect(d.nsqd.topics.has('t')).toBe(false);
  });

  it('topic errors use INVALID_TOPIC and TOPIC_NOT_FOUND', async () => {
    const d = await nsqd();
    for (const action of ['create', 'delete', 'empty', 'pause', 'unpause']) {
      await expectError(d, 'POST', `/topic/${action}`, 400, 'MISSING_ARG_TOPIC');
    }
    await expectError(d, 'POST', '/topic/create?topic=bad!', 400, 'INVALID_TOPIC');
    await expectError(d, 'POST', '/topic/empty?topic=bad!', 400, 'INVALID_TOPIC');
    for (const action of ['delete', 'empty', 'pause', 'unpause']) {
      await expectError(d, 'POST', `/topic/${action}?topic=missing`, 404, 'TOPIC_NOT_FOUND');
    }
  });

  it('channel endpoints need an existing topic and use the *_ARG_* names', async () => {
    const d = await nsqd();
    await expectError(d, 'POST', '/channel/create?channel=c', 400, 'MISSING_ARG_TOPIC');
    await expectError(d, 'POST', '/channel/create?topic=bad!&channel=c', 400, 'INVALID_ARG_TOPIC');
    await expectError(d, 'POST', '/channel/create?topic=t', 400, 'MISSING_ARG_CHANNEL');
    await expectError(d, 'POST', '/channel/create?topic=t&channel=bad!', 400, 'INVALID_ARG_CHANNEL');
    await expectError(d, 'POST', '/channel/create?topic=t&channel=c', 404, 'TOPIC_NOT_FOUND');
    await call(d, 'POST', '/topic/create?topic=t');
    for (const action of ['delete', 'empty', 'pause', 'unpause']) {
      await expectError(d, 'POST', `/channel/${action}?topic=t&channel=c`, 404, 'CHANNEL_NOT_FOUND');
    }
    expect((await call(d, 'POST', '/channel/create?topic=t&channel=c')).status).toBe(200);
    const channel = d.nsqd.topics.get('t')?.channels.get('c');
    await call(d, 'POST', '/channel/pause?topic=t&channel=c');
    expect(channel?.paused).toBe(true);
    await call(d, 'POST', '/channel/unpause?topic=t&channel=c');
    expect(channel?.paused).toBe(false);
    await call(d, 'POST', '/pub?topic=t', 'm');
    expect(channel?.depth).toBe(1);
    await call(d, 'POST', '/channel/empty?topic=t&channel=c');
    expect(channel?.depth).toBe(0);
    await call(d, 'POST', '/channel/delete?topic=t&channel=c');
    expect(d.nsqd.topics.get('t')?.channels.has('c')).toBe(false);
  });
});

describe('/config', () => {
  it('reads options as Go JSON and writes the two writable ones', async () => {
    const d = await nsqd({ memQueueSize: 7 });
    expect(JSON.parse((await call(d, 'GET', '/config/mem_queue_size')).text)).toBe(7);
    expect(JSON.parse((await call(d, 'GET', '/config/msg_timeout')).text)).toBe(60_000_000_000);
    expect(JSON.parse((await call(d, 'GET', '/config/nsqlookupd_tcp_addresses')).text)).toEqual([]);
    await expectError(d, 'GET', '/config/nope', 400, 'INVALID_OPTION');
    const put = await call(d, 'PUT', '/config/nsqlookupd_tcp_addresses', '["127.0.0.1:4160"]');
    expect(JSON.parse(put.text)).toEqual(['127.0.0.1:4160']);
    expect(JSON.parse((await call(d, 'PUT', '/config/log_level', 'debug')).text)).toBe(1);
    expect(d.nsqd.logger.level).toBe('debug');
    await expectError(d, 'PUT', '/config/log_level', 400, 'INVALID_VALUE', 'loud');
    // Go's lg.ParseLogLevel does not trim: a trailing newline (curl --data-binary @file) is refused.
    await expectError(d, 'PUT', '/config/log_level', 400, 'INVALID_VALUE', 'info\n');
    expect(JSON.parse((await call(d, 'PUT', '/config/log_level', 'WARN')).text)).toBe(3);
    await expectError(d, 'PUT', '/config/nsqlookupd_tcp_addresses', 400, 'INVALID_VALUE', '{');
    await expectError(d, 'PUT', '/config/log_level', 413, 'INVALID_VALUE', '');
    await expectError(d, 'PUT', '/config/mem_queue_size', 400, 'INVALID_OPTION', '5');
  });
});

describe('/stats and /metrics over HTTP', () => {
  it('serves JSON and text stats with filters, and a Prometheus scrape that agrees', async () => {
    const d = await nsqd();
    await call(d, 'POST', '/mpub?topic=t', 'a\nb\nc');
    await call(d, 'POST', '/channel/create?topic=t&channel=c');
    await call(d, 'POST', '/topic/create?topic=other');
    const json = await call(d, 'GET', '/stats?format=json&include_mem=false');
    expect(json.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const stats = JSON.parse(json.text);
    expect(Object.keys(stats)).toEqual(['version', 'health', 'start_time', 'topics', 'producers']);
    expect(stats.topics.map((t: { topic_name: string }) => t.topic_name)).toEqual(['other', 't']);
    const filtered = JSON.parse((await call(d, 'GET', '/stats?format=json&topic=t&channel=c')).text);
    expect(filtered.topics).toHaveLength(1);
    expect(filtered.topics[0].channels[0]).toMatchObject({ channel_name: 'c', depth: 3, message_count: 3 });
    expect(JSON.parse((await call(d, 'GET', '/stats?format=json&topic=missing')).text).topics).toBeNull();
    const text = await call(d, 'GET', '/stats');
    expect(text.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(text.text.startsWith('nsqd v1.3.0')).toBe(true);

    const scrape = await call(d, 'GET', '/metrics');
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('content-type')).toContain('text/plain');
    const samples = new Map<string, number>();
    for (const line of scrape.text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/i.exec(line);
      expect(m, line).not.toBeNull();
      samples.set((m as RegExpExecArray)[1] as string, Number((m as RegExpExecArray)[2]));
    }
    expect(samples.get('nsq_channel_depth{topic="t",channel="c"}')).toBe(filtered.topics[0].channels[0].depth);
    expect(samples.get('nsq_topic_messages_total{topic="t"}')).toBe(3);
    expect(samples.get('nsq_topic_messages_total{topic="other"}')).toBe(0);
  });
});

describe('--http-auth-token', () => {
  const auth = { authorization: 'Bearer tok-1' };

  it('guards pub, mpub, topic, channel and config PUT; reads stay open', async () => {
    const d = await nsqd({ httpAuthTokens: ['tok-1'] });
    const base = `http://${d.httpAddress}`;
    for (const [method, path] of [
      ['POST', '/pub?topic=t'],
      ['POST', '/mpub?topic=t'],
      ['POST', '/topic/create?topic=t'],
      ['POST', '/topic/delete?topic=t'],
      ['POST', '/channel/create?topic=t&channel=c'],
      ['PUT', '/config/log_level'],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, body: 'x' });
      expect([path, res.status, res.headers.get('www-authenticate'), await res.text()]).toEqual([
        path,
        401,
        'Bearer',
        '{"message":"UNAUTHORIZED"}',
      ]);
    }
    expect(d.nsqd.topics.has('t')).toBe(false);
    expect((await fetch(`${base}/pub?topic=t`, { method: 'POST', body: 'm', headers: auth })).status).toBe(200);
    const put = await fetch(`${base}/config/log_level`, { method: 'PUT', body: 'debug', headers: auth });
    expect(put.status).toBe(200);
    for (const path of ['/stats?format=json', '/info', '/ping', '/metrics', '/config/log_level']) {
      expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 200]);
    }
    // The token is not an option one can read back.
    await expectError(d, 'GET', '/config/http_auth_tokens', 400, 'INVALID_OPTION');
  });

  it('--http-auth-reads guards reads too', async () => {
    const d = await nsqd({ httpAuthTokens: ['tok-1'], httpAuthReads: true });
    const base = `http://${d.httpAddress}`;
    for (const path of ['/stats', '/info', '/ping', '/metrics']) {
      expect([path, (await fetch(`${base}${path}`)).status]).toEqual([path, 401]);
      expect([path, (await fetch(`${base}${path}`, { headers: auth })).status]).toEqual([path, 200]);
    }
  });
});
