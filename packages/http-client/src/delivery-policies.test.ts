/**
 * The delivery-policy calls against a real local HTTP server that answers as nsq-ts nsqd's
 * endpoints do (README "Delivery policies"): the query each call sends, the typed replies, and
 * NSQ-style errors — REPLAY_UNAVAILABLE with the earliest time, a bad setting, replies of the
 * wrong shape. (The same calls against a real nsqd: packages/cli's config/replay/redrive tests.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  getChannelConfig,
  getTopicConfig,
  isReplayUnavailable,
  redriveTopic,
  replayChannel,
  setChannelConfig,
  setTopicConfig,
} from './delivery-policies.js';
import { failure, serve, stopServers } from './http-server.test-util.js';
import { NsqHttpClient } from './nsq-http-client.js';

afterEach(stopServers);

const V1 = { 'content-type': 'application/json; charset=utf-8', 'x-nsq-content-type': 'nsq; version=1.0' };
const http = new NsqHttpClient({ timeoutMs: 2_000 });
const EARLIEST = '2024-05-01T10:00:00Z';

/** A stand-in nsqd: `GET` config replies are given, POSTs answer as nsqd does. */
function policyNsqd(replies: { channel?: unknown; topic?: unknown; redrive?: unknown } = {}) {
  return serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const send = (status: number, body: unknown) =>
      res.writeHead(status, V1).end(typeof body === 'string' ? body : JSON.stringify(body));
    const route = `${req.method} ${url.pathname}`;
    if (q.get('topic') === 'missing') return send(404, { message: 'TOPIC_NOT_FOUND' });
    if (route === 'GET /channel/config') return send(200, replies.channel);
    if (route === 'GET /topic/config') return send(200, replies.topic);
    if (route === 'POST /channel/config') {
      if (q.get('max_attempts') === '70000') return send(400, { message: 'INVALID_MAX_ATTEMPTS' });
      return send(200, 'OK');
    }
    if (route === 'POST /topic/config') return send(200, 'OK');
    if (route === 'POST /channel/replay') {
      const since = q.get('since') ?? '';
      const sinceMs = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
      if (sinceMs < Date.parse(EARLIEST)) {
        return send(400, { message: `REPLAY_UNAVAILABLE earliest available ${EARLIEST}` });
      }
      return send(200, 'OK');
    }
    if (route === 'POST /topic/redrive') return send(200, replies.redrive ?? { moved: 3 });
    send(404, { message: 'NOT_FOUND' });
  });
}

/** The requests the server saw, without the Accept header every one carries. */
const sent = (s: { requests: string[] }) => s.requests.map((r) => r.replace(/ accept=.*$/, ''));

describe('channel and topic settings', () => {
  it('reads a channel config into camelCase and sends only the fields of an update', async () => {
    const s = await policyNsqd({ channel: { max_attempts: 5, dead_letter_topic: 'o.dead' } });
    expect(await getChannelConfig(http, s.address, 'orders', 'billing')).toEqual({
      maxAttempts: 5,
      deadLetterTopic: 'o.dead',
    });
    await setChannelConfig(http, s.address, 'orders', 'billing', { maxAttempts: 0 });
    await setChannelConfig(http, s.address, 'orders', 'billing', { deadLetterTopic: '' });
    await setChannelConfig(http, s.address, 'orders', 'billing', { maxAttempts: 3, deadLetterTopic: 'x' });
    expect(sent(s)).toEqual([
      'GET /channel/config?topic=orders&channel=billing',
      'POST /channel/config?topic=orders&channel=billing&max_attempts=0',
      'POST /channel/config?topic=orders&channel=billing&dead_letter_topic=',
      'POST /channel/config?topic=orders&channel=billing&max_attempts=3&dead_letter_topic=x',
    ]);
  });

  it("refuses with nsqd's code, and refuses a reply that is not a config", async () => {
    const s = await policyNsqd({ channel: { max_attempts: '5' }, topic: { max_depth: 1 } });
    const bad = await failure(setChannelConfig(http, s.address, 't', 'c', { maxAttempts: 70000 }));
    expect([bad.status, bad.nsqMessage]).toEqual([400, 'INVALID_MAX_ATTEMPTS']);
    const missing = await failure(getTopicConfig(http, s.address, 'missing'));
    expect(missing.message).toBe(`GET http://${s.address}/topic/config?topic=missing: HTTP 404 TOPIC_NOT_FOUND`);
    const odd = await failure(getChannelConfig(http, s.address, 't', 'c'));
    expect(odd.message).toBe(
      `GET http://${s.address}/channel/config?topic=t&channel=c: the reply is not a channel config`,
    );
    expect((await failure(getTopicConfig(http, s.address, 't'))).message).toContain('the reply is not a topic config');
  });

  it('reads topic caps, and TTL/retention as Go durations or milliseconds', async () => {
    const plain = await policyNsqd({ topic: { max_depth: 1000, max_bytes: 0, overflow: 'reject' } });
    expect(await getTopicConfig(http, plain.address, 'orders')).toEqual({
      maxDepth: 1000,
      maxBytes: 0,
      overflow: 'reject',
    });
    const timed = await policyNsqd({
      topic: { max_depth: 0, max_bytes: 0, overflow: 'drop_oldest', message_ttl: '1h30m0s', retention: 86_400_000 },
    });
    expect(await getTopicConfig(http, timed.address, 'orders')).toEqual({
      maxDepth: 0,
      maxBytes: 0,
      overflow: 'drop_oldest',
      messageTtlMs: 5_400_000,
      retentionMs: 86_400_000,
    });
  });

  it('sends topic updates with durations as Go durations', async () => {
    const s = await policyNsqd();
    await setTopicConfig(http, s.address, 'orders', { maxDepth: 10, overflow: 'drop_oldest' });
    await setTopicConfig(http, s.address, 'orders', { messageTtl: '24h', retention: 1500 });
    await setTopicConfig(http, s.address, 'orders', { maxBytes: 0, messageTtl: 0 });
    expect(sent(s)).toEqual([
      'POST /topic/config?topic=orders&max_depth=10&overflow=drop_oldest',
      'POST /topic/config?topic=orders&message_ttl=24h&retention=1500ms',
      'POST /topic/config?topic=orders&max_bytes=0&message_ttl=0',
    ]);
  });
});

describe('replay and redrive', () => {
  it('replays from a Date, unix ms, RFC 3339 or an offset', async () => {
    const s = await policyNsqd();
    const at = Date.parse('2024-06-01T00:00:00Z');
    await replayChannel(http, s.address, 'orders', 'billing', { since: new Date(at) });
    await replayChannel(http, s.address, 'orders', 'billing', { since: at });
    await replayChannel(http, s.address, 'orders', 'billing', { since: '2024-06-01T00:00:00Z' });
    await replayChannel(http, s.address, 'orders', 'billing', { offset: 42 });
    expect(sent(s)).toEqual([
      `POST /channel/replay?topic=orders&channel=billing&since=${at}`,
      `POST /channel/replay?topic=orders&channel=billing&since=${at}`,
      'POST /channel/replay?topic=orders&channel=billing&since=2024-06-01T00%3A00%3A00Z',
      'POST /channel/replay?topic=orders&channel=billing&offset=42',
    ]);
  });

  it('reports a time no longer retained with the earliest one still available', async () => {
    const s = await policyNsqd();
    const err = await failure(replayChannel(http, s.address, 'orders', 'billing', { since: 1 }));
    expect(isReplayUnavailable(err)).toBe(true);
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      `POST http://${s.address}/channel/replay?topic=orders&channel=billing&since=1: HTTP 400 REPLAY_UNAVAILABLE earliest available ${EARLIEST}`,
    );
    expect(isReplayUnavailable(await failure(getTopicConfig(http, s.address, 'missing')))).toBe(false);
    expect(isReplayUnavailable(new Error('REPLAY_UNAVAILABLE'))).toBe(false);
  });

  it('redrives with an optional max and answers how many moved', async () => {
    const s = await policyNsqd();
    expect(await redriveTopic(http, s.address, 'orders.dead', 'orders')).toEqual({ moved: 3 });
    expect(await redriveTopic(http, s.address, 'orders.dead', 'orders', { max: 2 })).toEqual({ moved: 3 });
    expect(sent(s)).toEqual([
      'POST /topic/redrive?topic=orders.dead&to=orders',
      'POST /topic/redrive?topic=orders.dead&to=orders&max=2',
    ]);
    const odd = await policyNsqd({ redrive: 'OK' });
    expect((await failure(redriveTopic(http, odd.address, 'd', 't'))).message).toBe(
      `POST http://${odd.address}/topic/redrive?topic=d&to=t: the reply is not a redrive result ({"moved": N})`,
    );
  });
});
