import { afterEach, describe, expect, it } from 'vitest';
import {
  bearerMatches,
  createV1App,
  EMPTY,
  goJson,
  HttpError,
  JsonText,
  Text,
  type V1App,
  type V1AppOptions,
} from './http-v1.js';

let v1: V1App | null = null;
afterEach(async () => {
  await v1?.app.close();
  v1 = null;
});

async function serve(setup: (app: V1App) => void, options: V1AppOptions = {}): Promise<string> {
  v1 = createV1App({ error: () => undefined }, options);
  setup(v1);
  await v1.app.listen({ host: '127.0.0.1', port: 0 });
  const address = v1.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}

describe('createV1App', () => {
  it('maps results and errors to NSQ V1 responses', async () => {
    const base = await serve(({ route }) => {
      route('GET', '/obj', () => ({ a: '<&>' }));
      route('GET', '/text', () => new Text('OK'));
      route('GET', '/raw', () => new JsonText('{"n":1}'));
      route('POST', '/empty', () => EMPTY);
      route('GET', '/err', () => {
        throw new HttpError(404, 'TOPIC_NOT_FOUND');
      });
      route('GET', '/boom', () => {
        throw new Error('boom');
      });
      route('GET', '/param/:name', (req) => ({ name: (req.params as { name: string }).name }));
    });
    const obj = await fetch(`${base}/obj`);
    expect(obj.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
    expect(await obj.text()).toBe('{"a":"\\u003c\\u0026\\u003e"}');
    expect(await (await fetch(`${base}/text`)).text()).toBe('OK');
    expect(await (await fetch(`${base}/raw`)).text()).toBe('{"n":1}');
    const empty = await fetch(`${base}/empty`, { method: 'POST' });
    expect([empty.status, empty.headers.get('content-type'), await empty.text()]).toEqual([200, null, '']);
    const err = await fetch(`${base}/err`);
    expect([err.status, await err.text()]).toEqual([404, '{"message":"TOPIC_NOT_FOUND"}']);
    const boom = await fetch(`${base}/boom`);
    expect([boom.status, await boom.text()]).toEqual([500, '{"message":"INTERNAL_ERROR"}']);
    const bad = await fetch(`${base}/obj?x=%zz`);
    expect([bad.status, await bad.text()]).toEqual([400, '{"message":"INVALID_REQUEST"}']);
    const wrong = await fetch(`${base}/param/x`, { method: 'POST' });
    expect([wrong.status, wrong.headers.get('allow'), await wrong.text()]).toEqual([
      405,
      'GET',
      '{"message":"METHOD_NOT_ALLOWED"}',
    ]);
    const missing = await fetch(`${base}/nope`);
    expect([missing.status, await missing.text()]).toEqual([404, '{"message":"NOT_FOUND"}']);
  });

  it('goJson escapes like Go', () => {
    expect(goJson({ s: 'a<b>&\u2028' })).toBe('{"s":"a\\u003cb\\u003e\\u0026\\u2028"}');
  });
});

describe('createV1App bearer-token auth', () => {
  const setup = ({ route, plain }: V1App) => {
    route('GET', '/stats', () => ({ ok: true }));
    route('POST', '/pub', () => new Text('OK'));
    route('PUT', '/config/:opt', () => EMPTY);
    plain('GET', '/ping', async (_req, reply) => reply.send('OK'));
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('is off without tokens (NSQ behaviour)', async () => {
    const base = await serve(setup, { auth: { tokens: [''] } });
    expect((await fetch(`${base}/pub`, { method: 'POST' })).status).toBe(200);
  });

  it('guards state-changing endpoints and leaves reads open', async () => {
    const base = await serve(setup, { auth: { tokens: ['s3cret', 'other'] } });
    const denied = await fetch(`${base}/pub`, { method: 'POST' });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toBe('Bearer');
    expect(denied.headers.get('x-nsq-content-type')).toBe('nsq; version=1.0');
    expect(await denied.text()).toBe('{"message":"UNAUTHORIZED"}');
    expect((await fetch(`${base}/pub`, { method: 'POST', headers: bearer('wrong') })).status).toBe(401);
    expect((await fetch(`${base}/pub`, { method: 'POST', headers: { authorization: 's3cret' } })).status).toBe(401);
    expect((await fetch(`${base}/config/x`, { method: 'PUT' })).status).toBe(401);
    expect((await fetch(`${base}/pub`, { method: 'POST', headers: bearer('s3cret') })).status).toBe(200);
    expect((await fetch(`${base}/pub`, { method: 'POST', headers: bearer('other') })).status).toBe(200);
    expect((await fetch(`${base}/config/x`, { method: 'PUT', headers: bearer('other') })).status).toBe(200);
    expect((await fetch(`${base}/stats`)).status).toBe(200);
    expect((await fetch(`${base}/ping`)).status).toBe(200);
  });

  it('guards reads too with reads: true', async () => {
    const base = await serve(setup, { auth: { tokens: ['s3cret'], reads: true } });
    expect((await fetch(`${base}/stats`)).status).toBe(401);
    expect((await fetch(`${base}/ping`)).status).toBe(401);
    expect((await fetch(`${base}/stats`, { headers: bearer('s3cret') })).status).toBe(200);
    expect((await fetch(`${base}/ping`, { headers: bearer('s3cret') })).status).toBe(200);
    // Unknown paths still answer 404 (nothing to protect).
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('bearerMatches', () => {
    expect(bearerMatches('Bearer abc', ['abc'])).toBe(true);
    expect(bearerMatches('bearer abc', ['x', 'abc'])).toBe(true);
    expect(bearerMatches('Bearer abcd', ['abc'])).toBe(false);
    expect(bearerMatches('Bearer ', [''])).toBe(false);
    expect(bearerMatches(undefined, ['abc'])).toBe(false);
    expect(bearerMatches('Basic abc', ['abc'])).toBe(false);
  });
});
