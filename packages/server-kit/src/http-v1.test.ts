import { createServer, request, type Server } from 'node:http';
import type { GoQuery } from '@nsq-ts/go-compat';
import { afterEach, describe, expect, it } from 'vitest';
import { createV1App } from './fastify-v1.js';
import {
  bearerMatches,
  createV1Router,
  EMPTY,
  goJson,
  HttpError,
  JsonText,
  Text,
  type V1AppOptions,
} from './http-v1.js';

/** A route for both stacks: the handler sees the path parameters and reads the query lazily. */
type Handler = (params: Record<string, string>, query: () => GoQuery) => unknown;
type Routes = Array<[method: 'GET' | 'POST' | 'PUT', path: string, handler: Handler | 'plain']>;

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** Serves `routes` on the daemons' node:http router or on nsqadmin's Fastify app; returns the base URL. */
async function serve(stack: 'router' | 'fastify', routes: Routes, options: V1AppOptions = {}): Promise<string> {
  const logger = { error: () => undefined };
  let server: Server;
  if (stack === 'router') {
    const v1 = createV1Router(logger, options);
    for (const [method, path, handler] of routes) {
      if (handler === 'plain') v1.plain(method, path, (_req, res) => void res.end('OK'));
      else v1.route(method, path, (req) => handler(req.params as Record<string, string>, () => req.query()));
    }
    server = createServer(v1.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
  } else {
    const v1 = createV1App(logger, options);
    for (const [method, path, handler] of routes) {
      if (handler === 'plain') v1.plain(method, path, async (_req, reply) => reply.send('OK'));
      else v1.route(method, path, (req, query) => handler(req.params as Record<string, string>, () => query));
    }
    await v1.app.listen({ host: '127.0.0.1', port: 0 });
    server = v1.app.server;
    closers.push(() => v1.app.close());
  }
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

async function call(base: string, method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** `OPTIONS *` (fetch cannot send it): [status, Allow]. */
function optionsStar(base: string): Promise<[number | undefined, string | undefined]> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'OPTIONS', path: '*' }, (res) => {
      res.resume();
      resolve([res.statusCode, res.headers.allow]);
    });
    req.on('error', reject);
    req.end();
  });
}

for (const stack of ['router', 'fastify'] as const) {
  describe(`V1 conventions (${stack})`, () => {
    it('maps results and errors to NSQ V1 responses', async () => {
      const base = await serve(stack, [
        ['GET', '/obj', () => ({ a: '<&>' })],
        ['GET', '/text', () => new Text('OK')],
        ['GET', '/raw', () => new JsonText('{"n":1}')],
        ['POST', '/empty', () => EMPTY],
        [
          'GET',
          '/err',
          () => {
            throw new HttpError(404, 'TOPIC_NOT_FOUND');
          },
        ],
        [
          'GET',
          '/boom',
          async () => {
            throw new Error('boom');
          },
        ],
        ['GET', '/param/:name', (params) => ({ name: params.name })],
        ['GET', '/query', (_p, query) => ({ n: query().get('n') })],
      ]);
      const obj = await call(base, 'GET', '/obj');
      expect(obj.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
      expect(obj.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(obj.text).toBe('{"a":"\\u003c\\u0026\\u003e"}');
      const text = await call(base, 'GET', '/text');
      expect([text.text, text.headers.get('content-type')]).toEqual(['OK', 'text/plain; charset=utf-8']);
      expect((await call(base, 'GET', '/raw')).text).toBe('{"n":1}');
      const empty = await call(base, 'POST', '/empty');
      expect([empty.status, empty.headers.get('content-type'), empty.text]).toEqual([200, null, '']);
      expect(empty.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
      const err = await call(base, 'GET', '/err');
      expect([err.status, err.text]).toEqual([404, '{"message":"TOPIC_NOT_FOUND"}']);
      const boom = await call(base, 'GET', '/boom');
      expect([boom.status, boom.text]).toEqual([500, '{"message":"INTERNAL_ERROR"}']);
      expect((await call(base, 'GET', '/param/x%20y')).text).toBe('{"name":"x y"}');
      expect((await call(base, 'GET', '/query?n=1&n=2')).text).toBe('{"n":["1","2"]}');
      const bad = await call(base, 'GET', '/query?x=%zz');
      expect([bad.status, bad.text]).toEqual([400, '{"message":"INVALID_REQUEST"}']);
    });

    it('answers what no route takes as julienschmidt/httprouter does: redirect, OPTIONS, 405, 404', async () => {
      const base = await serve(stack, [
        ['GET', '/ping', 'plain'],
        ['GET', '/config/:opt', () => EMPTY],
        ['PUT', '/config/:opt', () => EMPTY],
        ['POST', '/topic/create', () => EMPTY],
      ]);
      const wrong = await call(base, 'POST', '/ping');
      expect([wrong.status, wrong.headers.get('allow'), wrong.text]).toEqual([
        405,
        'GET, OPTIONS',
        '{"message":"METHOD_NOT_ALLOWED"}',
      ]);
      expect(wrong.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
      expect((await call(base, 'DELETE', '/config/x')).headers.get('allow')).toBe('GET, OPTIONS, PUT');
      const options = await call(base, 'OPTIONS', '/topic/create');
      expect([options.status, options.headers.get('allow'), options.text]).toEqual([200, 'OPTIONS, POST', '']);
      expect(options.headers.get('x-nsq-content-type')).toBeNull();
      if (stack === 'router') expect(await optionsStar(base)).toEqual([200, 'GET, OPTIONS, POST, PUT']);
      const slash = await call(base, 'GET', '/ping/?a=1');
      expect([slash.status, slash.headers.get('location'), slash.headers.get('content-type')]).toEqual([
        301,
        '/ping?a=1',
        'text/html; charset=utf-8',
      ]);
      expect(slash.text).toBe('<a href="/ping?a=1">Moved Permanently</a>.\n\n');
      const cased = await call(base, 'PUT', '/CONFIG/Log_Level');
      expect([cased.status, cased.headers.get('location'), cased.text]).toEqual([307, '/config/Log_Level', '']);
      expect((await call(base, 'POST', '//topic//create')).headers.get('location')).toBe('/topic/create');
      const missing = await call(base, 'GET', '/nope');
      expect([missing.status, missing.text]).toEqual([404, '{"message":"NOT_FOUND"}']);
      // An empty :param: httprouter takes no route (Fastify's router, nsqadmin's, does).
      if (stack === 'router') expect((await call(base, 'GET', '/config/')).status).toBe(404);
    });
  });

  describe(`bearer-token auth (${stack})`, () => {
    const routes: Routes = [
      ['GET', '/stats', () => ({ ok: true })],
      ['POST', '/pub', () => new Text('OK')],
      ['PUT', '/config/:opt', () => EMPTY],
      ['GET', '/ping', 'plain'],
    ];
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    it('is off without tokens (NSQ behaviour)', async () => {
      const base = await serve(stack, routes, { auth: { tokens: [''] } });
      expect((await call(base, 'POST', '/pub')).status).toBe(200);
    });

    it('guards state-changing endpoints and leaves reads open', async () => {
      const base = await serve(stack, routes, { auth: { tokens: ['s3cret', 'other'] } });
      const denied = await call(base, 'POST', '/pub');
      expect(denied.status).toBe(401);
      expect(denied.headers.get('www-authenticate')).toBe('Bearer');
      expect(denied.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
      expect(denied.text).toBe('{"message":"UNAUTHORIZED"}');
      expect((await call(base, 'POST', '/pub', bearer('wrong'))).status).toBe(401);
      expect((await call(base, 'POST', '/pub', { authorization: 's3cret' })).status).toBe(401);
      expect((await call(base, 'PUT', '/config/x')).status).toBe(401);
      expect((await call(base, 'POST', '/pub', bearer('s3cret'))).status).toBe(200);
      expect((await call(base, 'POST', '/pub', bearer('other'))).status).toBe(200);
      expect((await call(base, 'PUT', '/config/x', bearer('other'))).status).toBe(200);
      expect((await call(base, 'GET', '/stats')).status).toBe(200);
      expect((await call(base, 'GET', '/ping')).status).toBe(200);
    });

    it('guards reads too with reads: true', async () => {
      const base = await serve(stack, routes, { auth: { tokens: ['s3cret'], reads: true } });
      expect((await call(base, 'GET', '/stats')).status).toBe(401);
      expect((await call(base, 'GET', '/ping')).status).toBe(401);
      expect((await call(base, 'GET', '/stats', bearer('s3cret'))).status).toBe(200);
      expect((await call(base, 'GET', '/ping', bearer('s3cret'))).status).toBe(200);
      // Unknown paths still answer 404 (nothing to protect).
      expect((await call(base, 'GET', '/nope')).status).toBe(404);
    });
  });
}

describe('helpers', () => {
  it('goJson escapes like Go', () => {
    expect(goJson({ s: 'a<b>&\u2028' })).toBe('{"s":"a\\u003cb\\u003e\\u0026\\u2028"}');
  });

  it('bearerMatches', () => {
    expect(bearerMatches('Bearer abc', ['abc'])).toBe(true);
    expect(bearerMatches('bearer abc', ['x', 'abc'])).toBe(true);
    expect(bearerMatches('Bearer abcd', ['abc'])).toBe(false);
    expect(bearerMatches('Bearer ', [''])).toBe(false);
    expect(bearerMatches(undefined, ['abc'])).toBe(false);
    expect(bearerMatches('Basic abc', ['abc'])).toBe(false);
  });

  it("refuses a bad escape in the path with Go's plain 400", async () => {
    const base = await serve('router', [['GET', '/ping', 'plain']]);
    const res = await call(base, 'GET', '/pi%zzng');
    expect([res.status, res.text, res.headers.get('content-type')]).toEqual([
      400,
      '400 Bad Request',
      'text/plain; charset=utf-8',
    ]);
  });
});
