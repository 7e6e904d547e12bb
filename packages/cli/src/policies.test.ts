/**
 * `nsq config`, `nsq replay`, `nsq redrive` as the real `bin/nsq.js`. Config against two real
 * nsqds registered with a real nsqlookupd (set on both, read back per nsqd, refusals); redrive
 * (--max over both) and replay on them too. Local HTTP stand-ins record the exact requests (TTL and
 * retention as Go durations, replay times), give REPLAY_UNAVAILABLE, and show that a declined
 * terminal confirmation sends nothing.
 */
import { createServer, type Server } from 'node:http';
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasScript, nsq, nsqOnTerminal } from './testing/run.js';

let lookupd: TestLookupd;
let a: TestNsqd;
let b: TestNsqd;
let viaLookupd: string;
const servers: Server[] = [];

async function post(nsqd: TestNsqd, path: string): Promise<void> {
  const res = await fetch(`http://${nsqd.httpAddress}${path}`, { method: 'POST' });
  expect(res.status).toBe(200);
}

async function getJson(nsqd: TestNsqd, path: string): Promise<unknown> {
  return (await fetch(`http://${nsqd.httpAddress}${path}`)).json();
}

beforeAll(async () => {
  lookupd = await startLookupd();
  a = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [lookupd.tcpAddress] });
  b = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [lookupd.tcpAddress] });
  viaLookupd = `--lookupd-http-address=${lookupd.httpAddress}`;
  for (const n of [a, b]) {
    await post(n, '/topic/create?topic=orders');
    await post(n, '/channel/create?topic=orders&channel=billing');
  }
  await eventually(async () => {
    const res = await fetch(`http://${lookupd.httpAddress}/lookup?topic=orders`);
    expect(((await res.json()) as { producers: unknown[] }).producers).toHaveLength(2);
  });
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  await a?.close();
  await b?.close();
  await lookupd?.close();
});

describe('nsq config', () => {
  it("sets a channel's max attempts and dead-letter topic on every nsqd, and prints each one's settings", async () => {
    const set = await nsq(['config', 'orders', 'billing', viaLookupd, '--max-attempts=5', '--dead-letter-topic', 'd']);
    expect(set.code).toBe(0);
    expect(set.stdout.trim().split('\n').sort()).toEqual(
      [a, b]
        .map((n) => `configured channel orders/billing on nsqd ${n.httpAddress}: max_attempts=5 dead_letter_topic=d`)
        .sort(),
    );
    for (const n of [a, b]) {
      expect(await getJson(n, '/channel/config?topic=orders&channel=billing')).toEqual({
        max_attempts: 5,
        dead_letter_topic: 'd',
      });
    }
    // Only what is given changes.
    expect((await nsq(['config', 'orders', 'billing', viaLookupd, '--dead-letter-topic='])).code).toBe(0);
    const show = await nsq(['config', 'orders', 'billing', '--nsqd-http-address', a.httpAddress]);
    expect(show).toMatchObject({ code: 0, stdout: `nsqd ${a.httpAddress}: max_attempts=5 dead_letter_topic=\n` });
  });

  it("sets a topic's cap and overflow, and reads it back", async () => {
    const set = await nsq(['config', 'orders', viaLookupd, '--max-depth', '100', '--overflow=drop_oldest']);
    expect(set.code).toBe(0);
    for (const n of [a, b]) {
      expect(set.stdout).toContain(
        `configured topic orders on nsqd ${n.httpAddress}: max_depth=100 max_bytes=0 overflow=drop_oldest`,
      );
      expect(await getJson(n, '/topic/config?topic=orders')).toMatchObject({ max_depth: 100, overflow: 'drop_oldest' });
    }
    const show = await nsq(['config', 'orders', '--nsqd-http-address', b.httpAddress]);
    expect(show.stdout).toMatch(new RegExp(`^nsqd ${b.httpAddress}: max_depth=100 max_bytes=0 overflow=drop_oldest`));
  });

  it('refuses settings of the wrong kind or out of range (exit 2), and reports what nsqd refuses (exit 1)', async () => {
    const wrongKind = await nsq(['config', 'orders', viaLookupd, '--max-attempts=3']);
    expect(wrongKind.code).toBe(2);
    expect(wrongKind.stderr).toContain(
      'nsq config: -max-attempts is a channel setting: nsq config <topic> <channel> --max-attempts=…',
    );
    const topicOnChannel = await nsq(['config', 'orders', 'billing', viaLookupd, '--max-depth=3']);
    expect(topicOnChannel.code).toBe(2);
    expect(topicOnChannel.stderr).toContain('-max-depth is a topic setting');
    const overflow = await nsq(['config', 'orders', viaLookupd, '--overflow=block']);
    expect(overflow.code).toBe(2);
    expect(overflow.stderr).toContain('invalid value "block" for flag -overflow: reject or drop_oldest');
    const attempts = await nsq(['config', 'orders', 'billing', viaLookupd, '--max-attempts=65536']);
    expect(attempts.code).toBe(2);
    expect(attempts.stderr).toContain('invalid value 65536 for flag -max-attempts: must be 0 to 65535');

    const badTopic = await nsq(['config', 'orders', 'billing', viaLookupd, '--dead-letter-topic=no*good']);
    expect(badTopic.code).toBe(1);
    expect(badTopic.stderr).toContain('HTTP 400 INVALID_TOPIC');
    const missing = await nsq(['config', 'orders', 'nope', viaLookupd]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nsq config: channel orders/nope not found');
  });
});

interface FakeNsqd {
  address: string;
  /** `METHOD path?query` per request, /stats left out. */
  requests: string[];
}

/**
 * An HTTP server answering as an nsq-ts nsqd holding `topics` (name → channels): /stats, the
 * topic config with TTL and retention, /channel/replay (anything before `earliest` is
 * REPLAY_UNAVAILABLE) and /topic/redrive (`deadLetters` to move, at most `max`).
 */
async function fakeNsqd(topics: Record<string, string[]>, deadLetters = 0, earliest = 0): Promise<FakeNsqd> {
  const state: FakeNsqd = { address: '', requests: [] };
  let left = deadLetters;
  let ttl = '0s';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const reply = (status: number, body: unknown) =>
      res.writeHead(status, { 'x-nsq-content-type': 'nsq; version=1.0' }).end(JSON.stringify(body));
    if (url.pathname === '/stats') {
      const list = Object.entries(topics).map(([topic_name, channels]) => ({
        topic_name,
        channels: channels.map((channel_name) => ({ channel_name })),
      }));
      return reply(200, { topics: list });
    }
    state.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (url.pathname === '/topic/config' && req.method === 'POST') {
      ttl = q.get('message_ttl') ?? ttl;
      return res.writeHead(200).end('OK');
    }
    if (url.pathname === '/topic/config') {
      return reply(200, { max_depth: 0, max_bytes: 0, overflow: 'reject', message_ttl: ttl, retention: '168h0m0s' });
    }
    if (url.pathname === '/channel/replay') {
      if (Number(q.get('since') ?? earliest) < earliest) {
        return reply(400, { message: `REPLAY_UNAVAILABLE: earliest available ${new Date(earliest).toISOString()}` });
      }
      return res.writeHead(200).end('OK');
    }
    if (url.pathname === '/topic/redrive') {
      const moved = Math.min(left, Number(q.get('max') ?? left));
      left -= moved;
      return reply(200, { moved });
    }
    reply(404, { message: 'NOT_FOUND' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  state.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return state;
}

const at = (n: FakeNsqd) => `--nsqd-http-address=${n.address}`;
const on = (n: TestNsqd) => `--nsqd-http-address=${n.httpAddress}`;

describe('nsq config: TTL and retention (nsqd stand-in)', () => {
  it('sends them as Go durations and prints them as Go durations', async () => {
    const n = await fakeNsqd({ orders: [] });
    const run = await nsq(['config', 'orders', at(n), '--message-ttl=90m']);
    expect(run).toMatchObject({
      code: 0,
      stdout: `configured topic orders on nsqd ${n.address}: max_depth=0 max_bytes=0 overflow=reject message_ttl=1h30m0s retention=168h0m0s\n`,
    });
    expect(n.requests).toEqual([
      'POST /topic/config?topic=orders&message_ttl=5400000ms',
      'GET /topic/config?topic=orders',
    ]);
  });
});

describe('nsq replay (nsqd stand-in)', () => {
  it('rewinds the channel on every nsqd that has it, from a time, a duration ago or an offset', async () => {
    const one = await fakeNsqd({ orders: ['billing'] });
    const two = await fakeNsqd({ orders: ['billing'] });
    const other = await fakeNsqd({ orders: ['audit'] });
    const since = '2024-06-01T00:00:00Z';
    const run = await nsq(['replay', 'orders', 'billing', at(one), at(two), at(other), `--since=${since}`]);
    expect(run.code).toBe(0);
    const ms = Date.parse(since);
    for (const n of [one, two]) {
      expect(run.stdout).toContain(
        `replayed channel orders/billing from 2024-06-01T00:00:00.000Z on nsqd ${n.address}`,
      );
      expect(n.requests).toEqual([`POST /channel/replay?topic=orders&channel=billing&since=${ms}`]);
    }
    expect(other.requests).toEqual([]);

    const before = Date.now();
    expect((await nsq(['replay', 'orders', 'billing', at(one), '--since', '1h'])).code).toBe(0);
    const sent = Number(one.requests[1]?.split('since=')[1]);
    expect(sent).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(sent).toBeLessThanOrEqual(Date.now() - 3_600_000);
    expect((await nsq(['replay', 'orders', 'billing', at(one), '--offset=7'])).code).toBe(0);
    expect(one.requests[2]).toBe('POST /channel/replay?topic=orders&channel=billing&offset=7');
  });

  it('reports a time no longer retained with the earliest one (exit 1), and refuses a bad command line (exit 2)', async () => {
    const earliest = Date.parse('2024-06-01T00:00:00Z');
    const n = await fakeNsqd({ orders: ['billing'] }, 0, earliest);
    const old = await nsq(['replay', 'orders', 'billing', at(n), `--since=${earliest - 1}`]);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('HTTP 400 REPLAY_UNAVAILABLE: earliest available 2024-06-01T00:00:00.000Z');
    expect(old.stdout).toBe('');
    for (const args of [[], ['--since=1h', '--offset=1'], ['--since=yesterday']]) {
      const bad = await nsq(['replay', 'orders', 'billing', at(n), ...args]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/give either --since or --offset|invalid value "yesterday" for flag -since/);
    }
    const missing = await nsq(['replay', 'orders', 'nope', at(n), '--since=1h']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nsq replay: channel orders/nope not found');
  });
});

describe('nsq redrive and replay (real nsqds)', () => {
  const depth = async (n: TestNsqd, topic: string, channel?: string) => {
    const stats = (await getJson(n, `/stats?format=json&topic=${topic}`)) as {
      topics: { topic_name: string; depth: number; channels: { channel_name: string; depth: number }[] }[];
    };
    const t = stats.topics.find((x) => x.topic_name === topic);
    return channel === undefined ? t?.depth : t?.channels.find((c) => c.channel_name === channel)?.depth;
  };

  it('moves the dead letters on every nsqd that has the topic, --max bounding the total', async () => {
    for (const n of [a, b]) {
      for (const body of ['x', 'y', 'z']) {
        const res = await fetch(`http://${n.httpAddress}/pub?topic=orders.dead`, { method: 'POST', body });
        expect(res.status).toBe(200);
      }
    }
    const before = [await depth(a, 'orders', 'billing'), await depth(b, 'orders', 'billing')];
    const run = await nsq(['redrive', 'orders.dead', 'orders', on(a), on(b), '--max=4']);
    expect(run).toMatchObject({
      code: 0,
      stdout:
        `moved 3 dead letter(s) from orders.dead to orders on nsqd ${a.httpAddress}\n` +
        `moved 1 dead letter(s) from orders.dead to orders on nsqd ${b.httpAddress}\n` +
        'moved 4 dead letter(s) in all\n',
    });
    expect([await depth(a, 'orders.dead'), await depth(b, 'orders.dead')]).toEqual([0, 2]);
    const rest = await nsq(['redrive', 'orders.dead', 'orders', on(b)]);
    expect(rest.stdout).toBe(`moved 2 dead letter(s) from orders.dead to orders on nsqd ${b.httpAddress}\n`);
    expect([await depth(a, 'orders', 'billing'), await depth(b, 'orders', 'billing')]).toEqual(
      before.map((d) => (d ?? 0) + 3),
    );
    const missing = await nsq(['redrive', 'nope.dead', 'orders', on(a)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nsq redrive: topic nope.dead not found');
  });

  it('replays a retained channel on every nsqd, and reports an offset nsqd refuses', async () => {
    for (const n of [a, b]) await post(n, '/topic/config?topic=orders&retention=1h');
    const run = await nsq(['replay', 'orders', 'billing', viaLookupd, '--offset=0']);
    expect(run.code).toBe(0);
    for (const n of [a, b]) expect(run.stdout).toContain(`on nsqd ${n.httpAddress}`);
    const past = await nsq(['replay', 'orders', 'billing', on(a), '--offset=1000000']);
    expect(past.code).toBe(1);
    expect(past.stderr).toContain('HTTP 400 INVALID_ARG_OFFSET');
  });
});

describe('nsq redrive and replay confirmation (nsqd stand-in)', () => {
  describe.skipIf(!hasScript)(
    `on a terminal (a pty from util-linux script${hasScript ? '' : ' — skipped: no script(1)'})`,
    () => {
      it('redrive and replay ask first: no sends nothing, yes acts', async () => {
        const n = await fakeNsqd({ 'orders.dead': [], orders: ['billing'] }, 2);
        const no = await nsqOnTerminal(['redrive', 'orders.dead', 'orders', at(n)], 'n\n');
        expect(no.code).toBe(1);
        expect(no.output).toContain('Move the dead letters of orders.dead into orders on 1 nsqd(s)? [y/N]');
        expect(no.output).toContain('nsq redrive: aborted: nothing was changed');
        const replayNo = await nsqOnTerminal(['replay', 'orders', 'billing', at(n), '--offset=0'], '\n');
        expect(replayNo.code).toBe(1);
        expect(replayNo.output).toContain(
          'Replay channel orders/billing from offset 0 on 1 nsqd(s) (its consumers receive those messages again)? [y/N]',
        );
        expect(n.requests).toEqual([]);
        const yes = await nsqOnTerminal(['redrive', 'orders.dead', 'orders', at(n), '--max', '1'], 'y\n');
        expect(yes.code).toBe(0);
        expect(yes.output).toContain('Move at most 1 dead letters of orders.dead into orders on 1 nsqd(s)? [y/N]');
        expect(n.requests).toEqual(['POST /topic/redrive?topic=orders.dead&to=orders&max=1']);
      });
    },
  );
});
