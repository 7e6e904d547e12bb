/**
 * The real `bin/nsq.js` against a real nsqlookupd and two nsqds registered with it: topics and
 * channels (through lookupd and through the nsqds), stat's summed counters and rates, and the
 * effects of empty/pause/unpause/delete as /stats shows them.
 */
import { Consumer, Producer } from '@nsq-ts/client';
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, finished, hasScript, nsq, nsqOnTerminal, startNsq, statRows } from './testing/run.js';

let lookupd: TestLookupd;
let a: TestNsqd;
let b: TestNsqd;
let viaLookupd: string;
let viaNsqds: string[];
const cleanups: Array<() => Promise<void>> = [];

interface ChannelJson {
  channel_name: string;
  depth: number;
  paused: boolean;
}
interface TopicJson {
  topic_name: string;
  depth: number;
  paused: boolean;
  channels: ChannelJson[];
}

async function post(nsqd: TestNsqd, path: string, body?: string): Promise<void> {
  const res = await fetch(`http://${nsqd.httpAddress}${path}`, { method: 'POST', body });
  expect(res.status).toBe(200);
}

async function topicOn(nsqd: TestNsqd, topic: string): Promise<TopicJson | undefined> {
  const res = await fetch(`http://${nsqd.httpAddress}/stats?format=json&topic=${topic}`);
  return (((await res.json()) as { topics: TopicJson[] | null }).topics ?? []).find((t) => t.topic_name === topic);
}

async function lookupdList(path: string, key: 'topics' | 'channels'): Promise<string[]> {
  const res = await fetch(`http://${lookupd.httpAddress}${path}`);
  return ((await res.json()) as Record<typeof key, string[]>)[key];
}

/** Until lookupd lists `topic` with both nsqds as producers. */
async function registeredOnBoth(topic: string): Promise<void> {
  await eventually(async () => {
    const res = await fetch(`http://${lookupd.httpAddress}/lookup?topic=${topic}`);
    expect(((await res.json()) as { producers: unknown[] }).producers).toHaveLength(2);
  });
}

beforeAll(async () => {
  lookupd = await startLookupd();
  a = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [lookupd.tcpAddress] });
  b = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [lookupd.tcpAddress] });
  viaLookupd = `--lookupd-http-address=${lookupd.httpAddress}`;
  viaNsqds = ['--nsqd-http-address', a.httpAddress, '--nsqd-http-address', b.httpAddress];
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await a?.close();
  await b?.close();
  await lookupd?.close();
});

describe('nsq topics and nsq channels', () => {
  it('list what lookupd knows, and what the nsqds have', async () => {
    await post(a, '/topic/create?topic=alpha');
    await post(a, '/channel/create?topic=alpha&channel=c1');
    await post(b, '/topic/create?topic=beta');
    await post(b, '/channel/create?topic=beta&channel=c2');
    await post(b, '/channel/create?topic=beta&channel=c3');
    await eventually(async () => {
      expect(await lookupdList('/topics', 'topics')).toEqual(expect.arrayContaining(['alpha', 'beta']));
      expect(await lookupdList('/channels?topic=beta', 'channels')).toHaveLength(2);
    });

    const [topicsL, topicsN, chanL, chanN] = await Promise.all([
      nsq(['topics', viaLookupd]),
      nsq(['topics', ...viaNsqds]),
      nsq(['channels', 'beta', viaLookupd]),
      nsq(['channels', 'alpha', ...viaNsqds]),
    ]);
    for (const run of [topicsL, topicsN]) {
      expect(run.code).toBe(0);
      expect(run.stdout.split('\n')).toEqual(expect.arrayContaining(['alpha', 'beta']));
    }
    expect(chanL).toMatchObject({ code: 0, stdout: 'c2\nc3\n' });
    expect(chanN).toMatchObject({ code: 0, stdout: 'c1\n' });

    // One node down: what the others know is still printed, the failure is shown, the exit is 1.
    const dead = `127.0.0.1:${await closedPort()}`;
    const partial = await nsq(['topics', '--nsqd-http-address', b.httpAddress, '--nsqd-http-address', dead]);
    expect(partial.code).toBe(1);
    expect(partial.stdout.split('\n')).toContain('beta');
    expect(partial.stderr).toContain(
      `GET http://${dead}/stats?format=json&include_clients=false: connect ECONNREFUSED`,
    );
  });
});

describe('nsq stat', () => {
  it('prints the channel counters summed over every nsqd, and message rates', async () => {
    for (const n of [a, b]) {
      await post(n, '/topic/create?topic=orders');
      await post(n, '/channel/create?topic=orders&channel=billing');
    }
    await post(a, '/mpub?topic=orders', 'a1\na2\na3\na4\na5\na6');
    await post(b, '/mpub?topic=orders', 'b1\nb2\nb3\nb4');
    await post(a, '/pub?topic=orders&defer=600000', 'later');
    // A consumer on nsqd a that keeps 3 messages in flight.
    const consumer = new Consumer({
      topic: 'orders',
      channel: 'billing',
      nsqdAddresses: [a.tcpAddress],
      maxInFlight: 3,
      closeTimeoutMs: 100,
      handler: () => new Promise(() => {}),
    });
    cleanups.push(() => consumer.close());
    await consumer.connect();
    await eventually(async () => {
      const c = (await topicOn(a, 'orders'))?.channels[0] as unknown as { in_flight_count: number };
      expect(c.in_flight_count).toBe(3);
    });
    await registeredOnBoth('orders');

    // ingress egress | total mem disk inflt def | req t-o msgs clients
    const expected = ['-', '-', '7', '7', '0', '3', '1', '0', '0', '11', '1'];
    const [lookupdRun, nsqdRun] = await Promise.all([
      nsq(['stat', 'orders', 'billing', viaLookupd, '--count', '1']),
      nsq(['stat', 'orders', 'billing', ...viaNsqds, '--count=1']),
    ]);
    for (const run of [lookupdRun, nsqdRun]) {
      expect(run.code).toBe(0);
      const lines = run.stdout.split('\n');
      expect(lines[0]).toMatch(/^-+rate-+\+-+depth-+\+-+metadata-+$/);
      expect(lines[1].trim().split(/\s+/)).toEqual(
        'ingress egress | total mem disk inflt def | req t-o msgs clients'.split(' '),
      );
      expect(statRows(run.stdout)).toEqual([expected]);
    }

    // A second row 1 s later sees 10 more messages: rates and counts move.
    const child = startNsq(['stat', 'orders', 'billing', viaLookupd, '--count', '2', '--interval', '1s']);
    const done = finished(child);
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    const producer = new Producer({ nsqdAddress: b.tcpAddress });
    await producer.publishMany(
      'orders',
      Array.from({ length: 10 }, (_, i) => `more${i}`),
    );
    await producer.close();
    const run = await done;
    expect(run.code).toBe(0);
    const rows = statRows(run.stdout);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toEqual(expected);
    const [ingress, egress, total, , , , , , , msgs] = rows[1].map(Number);
    expect(total).toBe(17);
    expect(msgs).toBe(21);
    for (const rate of [ingress, egress]) {
      expect(rate).toBeGreaterThanOrEqual(5);
      expect(rate).toBeLessThanOrEqual(10);
    }
  });

  it('exits 1 when the channel does not exist', async () => {
    const run = await nsq(['stat', 'orders', 'nope', ...viaNsqds, '--count', '1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('nsq stat: channel orders/nope not found');
  });
});

describe('nsq empty, pause, unpause, delete', () => {
  it('act on every nsqd that has the topic or channel', async () => {
    for (const n of [a, b]) {
      await post(n, '/topic/create?topic=ops');
      await post(n, '/channel/create?topic=ops&channel=ch');
      await post(n, '/mpub?topic=ops', 'x\ny\nz');
    }
    await registeredOnBoth('ops');
    const both = async () => [await topicOn(a, 'ops'), await topicOn(b, 'ops')];

    const pauseCh = await nsq(['pause', 'ops', 'ch', viaLookupd]);
    expect(pauseCh.code).toBe(0);
    expect(pauseCh.stdout).toContain(`paused channel ops/ch on nsqd 127.0.0.1:${a.httpAddress.split(':')[1]}`);
    expect(pauseCh.stdout.trim().split('\n')).toHaveLength(2);
    for (const t of await both()) expect(t?.channels[0].paused).toBe(true);

    expect((await nsq(['unpause', 'ops', 'ch', ...viaNsqds])).code).toBe(0);
    for (const t of await both()) expect(t?.channels[0].paused).toBe(false);

    expect((await nsq(['pause', 'ops', viaLookupd])).code).toBe(0);
    for (const t of await both()) expect(t?.paused).toBe(true);
    expect((await nsq(['unpause', 'ops', viaLookupd])).code).toBe(0);
    for (const t of await both()) expect(t?.paused).toBe(false);

    for (const t of await both()) expect(t?.channels[0].depth).toBe(3);
    expect((await nsq(['empty', 'ops', 'ch', viaLookupd])).code).toBe(0);
    for (const t of await both()) expect(t?.channels[0].depth).toBe(0);

    expect((await nsq(['delete', 'ops', 'ch', ...viaNsqds])).code).toBe(0);
    for (const t of await both()) expect(t?.channels).toEqual([]);

    const del = await nsq(['delete', 'ops', viaLookupd]);
    expect(del.code).toBe(0);
    expect(
      del.stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('deleted topic ops on nsqd')),
    ).toHaveLength(2);
    expect(await both()).toEqual([undefined, undefined]);
    await eventually(async () => expect(await lookupdList('/topics', 'topics')).not.toContain('ops'));

    const missing = await nsq(['pause', 'ops', viaLookupd]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nsq pause: topic ops not found');
    // A delete of something nobody has is "not found" too (lookupds answer 200 to any delete).
    const [noTopic, noTopicN, noChannel] = await Promise.all([
      nsq(['delete', 'no_such_topic', viaLookupd]),
      nsq(['delete', 'no_such_topic', ...viaNsqds]),
      nsq(['delete', 'alpha', 'no_such_channel', viaLookupd]),
    ]);
    expect(noTopic).toMatchObject({ code: 1, stdout: '' });
    expect(noTopic.stderr).toContain('nsq delete: topic no_such_topic not found');
    expect(noTopicN).toMatchObject({ code: 1, stdout: '' });
    expect(noTopicN.stderr).toContain('nsq delete: topic no_such_topic not found');
    expect(noChannel).toMatchObject({ code: 1, stdout: '' });
    expect(noChannel.stderr).toContain('nsq delete: channel alpha/no_such_channel not found');
  });

  describe.skipIf(!hasScript)(
    `on a terminal (a pty from util-linux script${hasScript ? '' : ' — skipped: no script(1)'})`,
    () => {
      it('delete and empty ask first: no keeps everything, yes acts, --yes does not ask', async () => {
        await post(a, '/topic/create?topic=asked');
        await post(a, '/mpub?topic=asked', 'x\ny');
        await post(a, '/channel/create?topic=asked&channel=ch');
        const at = `--nsqd-http-address=${a.httpAddress}`;

        const no = await nsqOnTerminal(['delete', 'asked', at], 'n\n');
        expect(no.code).toBe(1);
        expect(no.output).toContain('Delete topic asked on 1 nsqd(s)? [y/N]');
        expect(no.output).toContain('nsq delete: aborted: nothing was changed');
        expect(await topicOn(a, 'asked')).toBeDefined();

        const empty = await nsqOnTerminal(['empty', 'asked', 'ch', at], 'y\n');
        expect(empty.code).toBe(0);
        expect(empty.output).toContain('Empty (drop every queued message of) channel asked/ch on 1 nsqd(s)? [y/N]');
        expect((await topicOn(a, 'asked'))?.channels[0].depth).toBe(0);

        const yes = await nsqOnTerminal(['delete', 'asked', at, '--yes'], '');
        expect(yes.code).toBe(0);
        expect(yes.output).not.toContain('[y/N]');
        expect(await topicOn(a, 'asked')).toBeUndefined();
      });
    },
  );

  it('send --http-auth-token (or $NSQ_HTTP_AUTH_TOKEN) to nodes that require it', async () => {
    const guarded = await startNsqd({ httpAuthTokens: ['cli-tok'], httpAuthReads: true });
    try {
      const create = await fetch(`http://${guarded.httpAddress}/topic/create?topic=sec`, {
        method: 'POST',
        headers: { authorization: 'Bearer cli-tok' },
      });
      expect(create.status).toBe(200);
      const at = `--nsqd-http-address=${guarded.httpAddress}`;
      const refused = await nsq(['pause', 'sec', at]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('HTTP 401 UNAUTHORIZED');
      expect(guarded.nsqd.topics.get('sec')?.paused).toBe(false);
      expect((await nsq(['pause', 'sec', at, '--http-auth-token', 'cli-tok'])).code).toBe(0);
      expect(guarded.nsqd.topics.get('sec')?.paused).toBe(true);
      process.env.NSQ_HTTP_AUTH_TOKEN = 'cli-tok';
      try {
        expect((await nsq(['unpause', 'sec', at])).code).toBe(0);
      } finally {
        delete process.env.NSQ_HTTP_AUTH_TOKEN;
      }
      expect(guarded.nsqd.topics.get('sec')?.paused).toBe(false);
    } finally {
      await guarded.close();
    }
  });
});
