/**
 * The shared NSQ HTTP client against real local HTTP servers answering in each shape NSQ's
 * daemons have used (nsq-spec §3.1): bare 1.x JSON with and without X-NSQ-Content-Type, the
 * pre-1.0 envelope, NSQ's `{"message"}` errors, bodies that are not JSON, and no answer at all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closedPort, failure, type Handler, serve, stopServers } from './http-server.test-util.js';
import { NsqHttpClient, nsqBaseUrl, nsqQuery } from './nsq-http-client.js';

afterEach(stopServers);

const V1 = { 'content-type': 'application/json; charset=utf-8', 'x-nsq-content-type': 'nsq; version=1.0' };

function json(status: number, body: unknown, headers: Record<string, string> = V1): Handler {
  return (_req, res) => res.writeHead(status, headers).end(JSON.stringify(body));
}

describe('NsqHttpClient', () => {
  it("sends NSQ's V1 Accept header, and a bearer token only when it has one", async () => {
    const s = await serve(json(200, { version: '1.3.0' }));
    expect(await new NsqHttpClient({ timeoutMs: 2_000 }).get(s.address, '/info')).toEqual({ version: '1.3.0' });
    await new NsqHttpClient({ timeoutMs: 2_000, authToken: 'tok' }).post(s.address, '/topic/create?topic=t');
    await new NsqHttpClient({ timeoutMs: 2_000, authToken: '' }).get(s.address, '/info');
    expect(s.requests).toEqual([
      'GET /info accept=application/vnd.nsq; version=1.0',
      'POST /topic/create?topic=t accept=application/vnd.nsq; version=1.0 authorization=Bearer tok',
      'GET /info accept=application/vnd.nsq; version=1.0',
    ]);
  });

  it('reads bare JSON with or without X-NSQ-Content-Type, and unwraps the pre-1.0 envelope', async () => {
    const http = new NsqHttpClient({ timeoutMs: 2_000 });
    const bare = await serve(json(200, { producers: [] }, { 'content-type': 'application/json' }));
    expect(await http.get(bare.address, '/lookup?topic=t')).toEqual({ producers: [] });
    const legacy = await serve(json(200, { status_code: 200, status_txt: 'OK', data: { producers: [1] } }, {}));
    expect(await http.get(legacy.address, '/lookup?topic=t')).toEqual({ producers: [1] });
    // With the V1 header a body is taken as it is, even one that looks like an envelope.
    const v1 = await serve(json(200, { status_code: 200, data: 'x' }));
    expect(await http.get(v1.address, '/x')).toEqual({ status_code: 200, data: 'x' });
  });

  it("turns NSQ's error replies into NsqHttpError with the status and NSQ's code", async () => {
    const http = new NsqHttpClient({ timeoutMs: 2_000 });
    const s = await serve(json(404, { message: 'TOPIC_NOT_FOUND' }));
    const err = await failure(http.get(s.address, '/lookup?topic=t'));
    expect(err.message).toBe(`GET http://${s.address}/lookup?topic=t: HTTP 404 TOPIC_NOT_FOUND`);
    expect([err.method, err.address, err.status, err.nsqMessage]).toEqual(['GET', s.address, 404, 'TOPIC_NOT_FOUND']);

    const legacy = await serve(json(500, { status_code: 500, status_txt: 'TOPIC_NOT_FOUND', data: null }, {}));
    const old = await failure(http.get(legacy.address, '/lookup?topic=t'));
    expect([old.status, old.nsqMessage]).toEqual([500, 'TOPIC_NOT_FOUND']);
    expect(old.message).toBe(`GET http://${legacy.address}/lookup?topic=t: HTTP 500 TOPIC_NOT_FOUND`);

    const text = await serve((_req, res) => res.writeHead(502).end(`bad gateway ${'x'.repeat(300)}`));
    const proxy = await failure(http.post(text.address, '/topic/pause?topic=t'));
    expect(proxy.message).toBe(
      `POST http://${text.address}/topic/pause?topic=t: HTTP 502 bad gateway ${'x'.repeat(188)}`,
    );
    expect(proxy.nsqMessage).toBe('');
  });

  it('says whether a token was sent when the daemon answers 401, never the token', async () => {
    const s = await serve(json(401, { message: 'UNAUTHORIZED' }));
    const none = await failure(new NsqHttpClient({ timeoutMs: 2_000 }).get(s.address, '/stats'));
    expect(none.message).toBe(`GET http://${s.address}/stats: HTTP 401 UNAUTHORIZED (no bearer token sent)`);
    const wrong = await failure(new NsqHttpClient({ timeoutMs: 2_000, authToken: 's3cret' }).get(s.address, '/stats'));
    expect(wrong.message).toBe(`GET http://${s.address}/stats: HTTP 401 UNAUTHORIZED (bearer token refused)`);
    expect(wrong.message).not.toContain('s3cret');
  });

  it('gives up on a daemon that does not answer within the timeout', async () => {
    const s = await serve(() => {}); // reads the request, never replies
    const err = await failure(new NsqHttpClient({ timeoutMs: 50 }).get(s.address, '/stats'));
    expect(err.message).toBe(`GET http://${s.address}/stats: no answer within 50 ms`);
    expect(err.status).toBe(0);
  });

  it('names the cause when nothing listens', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    const err = await failure(new NsqHttpClient({ timeoutMs: 2_000 }).get(address, '/info'));
    expect(err.message).toBe(`GET http://${address}/info: connect ECONNREFUSED ${address}`);
    expect(err.status).toBe(0);
  });

  it('hands back text and empty replies from request(), and refuses them from get()', async () => {
    const http = new NsqHttpClient({ timeoutMs: 2_000 });
    const ok = await serve((_req, res) => res.writeHead(200, { 'x-nsq-content-type': 'nsq; version=1.0' }).end('OK'));
    expect(await http.post(ok.address, '/pub?topic=t')).toBe('OK');
    const empty = await serve((_req, res) => res.writeHead(200).end());
    expect(await http.post(empty.address, '/topic/empty?topic=t')).toBeNull();
    const err = await failure(http.get(ok.address, '/info'));
    expect(err.message).toBe(`GET http://${ok.address}/info: the reply is not JSON (is it an NSQ HTTP address?)`);
    await failure(http.get(empty.address, '/info'));
  });
});

describe('nsqBaseUrl and nsqQuery', () => {
  it('adds http:// to a bare address, keeps a given scheme and drops trailing slashes', () => {
    expect(nsqBaseUrl('127.0.0.1:4161')).toBe('http://127.0.0.1:4161');
    expect(nsqBaseUrl('https://lookupd.example:4161//')).toBe('https://lookupd.example:4161');
    expect(nsqBaseUrl('[::1]:4161')).toBe('http://[::1]:4161');
  });

  it('encodes the defined parameters only', () => {
    expect(nsqQuery({ topic: 'a b#ephemeral', channel: undefined, format: 'json' })).toBe(
      '?topic=a+b%23ephemeral&format=json',
    );
  });
});
