/**
 * The real `bin/nsq.js` as a child process: --help, command-line and connection errors, and
 * pub → tail round trips against a real nsqd registered with a real nsqlookupd.
 */
import { eventually, startLookupd, startNsqd, type TestLookupd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, finished, nsq, startNsq } from './testing/run.js';

let lookupd: TestLookupd;
let nsqd: TestNsqd;
let lookupdFlag: string;

beforeAll(async () => {
  lookupd = await startLookupd();
  nsqd = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [lookupd.tcpAddress] });
  lookupdFlag = `--lookupd-http-address=${lookupd.httpAddress}`;
  await eventually(async () => {
    const res = await fetch(`http://${lookupd.httpAddress}/nodes`);
    expect(((await res.json()) as { producers: unknown[] }).producers).toHaveLength(1);
  });
});

afterAll(async () => {
  await nsqd?.close();
  await lookupd?.close();
});

interface ChannelJson {
  depth: number;
  in_flight_count: number;
  deferred_count: number;
}

async function channelStats(topic: string, channel: string): Promise<ChannelJson> {
  const res = await fetch(`http://${nsqd.httpAddress}/stats?format=json&topic=${topic}&channel=${channel}`);
  const body = (await res.json()) as { topics: Array<{ channels: ChannelJson[] }> };
  return body.topics[0].channels[0];
}

describe('nsq --help', () => {
  it('lists every command, and every command explains its arguments and flags', async () => {
    const top = await nsq(['--help']);
    expect(top.code).toBe(0);
    const commands = [
      'pub',
      'tail',
      'stat',
      'topics',
      'channels',
      'empty',
      'pause',
      'unpause',
      'delete',
      'config',
      'replay',
      'redrive',
      'ha',
    ];
    for (const c of commands) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));

    const runs = await Promise.all(commands.map((c) => nsq([c, '--help'])));
    for (const [i, run] of runs.entries()) {
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: nsq ${commands[i]} `));
      // `ha` talks to the members themselves: a lookupd does not know followers.
      if (commands[i] !== 'ha') expect(run.stdout).toContain('-lookupd-http-address address');
      expect(run.stdout).toContain('-nsqd-http-address address');
    }
    expect(runs[0].stdout).toContain('-nsqd-tcp-address address');
    expect(runs[1].stdout).toContain('-n int');
    expect(runs[1].stdout).toContain('tail<6 digits>#ephemeral');
    expect(runs[2].stdout).toContain('-interval duration');
    expect(runs[2].stdout).toContain('(default 2s)');
    expect(runs[2].stdout).toContain('-count int');
    // `help <command>` is the same as `<command> --help`.
    expect((await nsq(['help', 'stat'])).stdout).toBe(runs[2].stdout);
  });
});

describe('nsq errors', () => {
  it('refuses bad command lines with status 2 and says why', async () => {
    const [unknown, none, missing, badFlag, badValue, noNodes, extra] = await Promise.all([
      nsq(['frobnicate']),
      nsq([]),
      nsq(['tail', lookupdFlag]),
      nsq(['topics', '--bogus', lookupdFlag]),
      nsq(['stat', 't', 'c', '--interval', 'soon', lookupdFlag]),
      nsq(['topics']),
      nsq(['channels', 't', 'extra', lookupdFlag]),
    ]);
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.stderr).toContain('nsq: unknown command "frobnicate"');
    expect(unknown.stderr).toContain('Usage: nsq <command>');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: nsq <command>');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nsq tail: missing arguments: nsq tail <topic>');
    expect(missing.stderr).toContain('Run "nsq tail --help" for usage.');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('flag provided but not defined: -bogus');
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toContain('invalid value "soon" for flag -interval');
    expect(noNodes.code).toBe(2);
    expect(noNodes.stderr).toContain('give --lookupd-http-address or --nsqd-http-address');
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('unexpected argument "extra"');
    const [badTcp, badHttp, badRate, badInFlight] = await Promise.all([
      nsq(['pub', 't', 'x', '--nsqd-tcp-address=localhost']),
      nsq(['topics', '--nsqd-http-address=localhost']),
      nsq(['pub', 't', 'x', `--nsqd-tcp-address=${nsqd.tcpAddress}`, '--rate=-1']),
      nsq(['tail', 't', `--nsqd-tcp-address=${nsqd.tcpAddress}`, '--max-in-flight=0']),
    ]);
    expect(badTcp.code).toBe(2);
    expect(badTcp.stderr).toContain('invalid value "localhost" for flag -nsqd-tcp-address: not host:port');
    expect(badHttp.code).toBe(2);
    expect(badRate.code).toBe(2);
    expect(badInFlight.code).toBe(2);
    expect(badInFlight.stderr).toContain('maxInFlight must be an integer');
  });

  it('nsq --version prints the version', async () => {
    const run = await nsq(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^nsq v0\.1\.0 \(nsq-ts, built w\/node\d+\.\d+\.\d+\)\n$/);
  });

  it('shows unreachable nodes and exits 1', async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const [topics, pub, tail, stat] = await Promise.all([
      nsq(['topics', '--lookupd-http-address', dead]),
      nsq(['pub', 'events', 'x', '--nsqd-tcp-address', dead]),
      nsq(['tail', 'events', '--nsqd-http-address', dead]),
      nsq(['stat', 'events', 'c', '--lookupd-http-address', dead, '--count', '1']),
    ]);
    expect(topics.code).toBe(1);
    expect(topics.stderr).toContain(`GET http://${dead}/topics: connect ECONNREFUSED ${dead}`);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain(`nsq pub: cannot connect to nsqd ${dead}`);
    expect(tail.code).toBe(1);
    expect(tail.stderr).toContain(`GET http://${dead}/info: connect ECONNREFUSED`);
    expect(stat.code).toBe(1);
    expect(stat.stderr).toContain(`GET http://${dead}/lookup?topic=events: connect ECONNREFUSED`);
    expect(stat.stderr).toContain('no lookupd answered');
  });
});

describe('nsq pub and nsq tail', () => {
  it('publishes an argument through lookupd and tails it back through lookupd', async () => {
    // A new topic has no producers yet: pub picks among every node lookupd knows.
    const pub = await nsq(['pub', 'greetings', 'hello world', lookupdFlag]);
    expect(pub).toMatchObject({ code: 0, stdout: '' });
    expect(pub.stderr).toContain('published 1 message to greetings');
    await eventually(async () => {
      const res = await fetch(`http://${lookupd.httpAddress}/lookup?topic=greetings`);
      expect(res.status).toBe(200);
    });
    // The topic buffered the message for its first channel: the tail's ephemeral one.
    const tail = await nsq(['tail', 'greetings', '-n', '1', lookupdFlag]);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toBe('hello world\n');
    expect(tail.stderr).toMatch(/consuming greetings\/tail\d{6}#ephemeral/);
  });

  it('publishes one message per stdin line over TCP and tails them over the nsqd HTTP address', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i}`);
    const pub = await nsq(
      ['pub', 'lines', '-', '--nsqd-tcp-address', nsqd.tcpAddress],
      `${lines.slice(0, 250).join('\n')}\n\n${lines.slice(250).join('\r\n')}\n`,
    );
    expect(pub.code).toBe(0);
    expect(pub.stderr).toContain('published 500 of 500 message(s) to lines');
    const tail = await nsq(['tail', 'lines', '-n', '500', '--nsqd-http-address', nsqd.httpAddress]);
    expect(tail.code).toBe(0);
    expect(tail.stdout.split('\n').slice(0, -1).sort()).toEqual([...lines].sort());
  });

  it('reports progress every second while stdin keeps coming', async () => {
    const child = startNsq(['pub', 'slow', '-', '--nsqd-tcp-address', nsqd.tcpAddress]);
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const done = finished(child);
    child.stdin?.write('first\n');
    // stdin stays open until a progress line has been printed, however long that takes.
    await eventually(() => /nsq pub: 1 published \(\d+\/s\)/.test(stderr), { timeoutMs: 15_000, intervalMs: 50 });
    child.stdin?.end('second\n');
    const run = await done;
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('published 2 of 2 message(s) to slow');
  });

  it('--delimiter splits stdin into records, --defer publishes them deferred, --rate is accepted', async () => {
    for (const path of ['/topic/create?topic=later', '/channel/create?topic=later&channel=c']) {
      expect((await fetch(`http://${nsqd.httpAddress}${path}`, { method: 'POST' })).status).toBe(200);
    }
    const at = ['--nsqd-tcp-address', nsqd.tcpAddress];
    const pub = await nsq(
      ['pub', 'later', '-', '--delimiter', ',', '--defer', '1h', '--rate', '1000', ...at],
      'a,b,,c',
    );
    expect(pub.code).toBe(0);
    expect(pub.stderr).toContain('published 3 of 3 message(s) to later, deferred 3600000 ms');
    const one = await nsq(['pub', 'later', 'd', '--defer=1h', ...at]);
    expect(one.stderr).toContain('published 1 message to later, deferred 3600000 ms');
    expect(await channelStats('later', 'c')).toMatchObject({ depth: 0, deferred_count: 4 });
    // An escape for what a shell makes awkward: a tab.
    const tabs = await nsq(['pub', 'tabs', '-', '--delimiter=\\t', ...at], 'x\ty\tz');
    expect(tabs.stderr).toContain('published 3 of 3 message(s) to tabs');
  });

  it('a refused line is reported as that line, and publishing goes on (exit 1)', async () => {
    const small = await startNsqd({ maxMsgSize: 10 });
    try {
      const pub = await nsq(
        ['pub', 'lines', '-', '--nsqd-tcp-address', small.tcpAddress],
        `short\n${'x'.repeat(50)}\nend\n`,
      );
      expect(pub.code).toBe(1);
      expect(pub.stderr).toContain(
        `nsq pub: line 2 not published: E_INVALID_ARGUMENT PUB message too big: 50 bytes > --max-msg-size 10 of nsqd ${small.tcpAddress}`,
      );
      expect(pub.stderr).toContain('nsq pub: published 2 of 3 message(s) to lines; 1 failed (line 2)');
      expect(small.nsqd.topics.get('lines')?.messageCount).toBe(2);
    } finally {
      await small.close();
    }
  });

  it('tail through a lookupd that closes reads: --http-auth-token reaches its lookupd polls too', async () => {
    const TOKEN = 'cli-tail-token-3c3c';
    const locked = await startLookupd({ httpAuthTokens: [TOKEN], httpAuthReads: true });
    const node = await startNsqd({ broadcastAddress: '127.0.0.1', lookupdTcpAddresses: [locked.tcpAddress] });
    try {
      expect((await nsq(['pub', 'guarded', 'secret stuff', '--nsqd-tcp-address', node.tcpAddress])).code).toBe(0);
      await eventually(() => expect(locked.lookupd.db.findProducers('topic', 'guarded', '')).toHaveLength(1));
      const at = `--lookupd-http-address=${locked.httpAddress}`;
      const refused = await nsq(['tail', 'guarded', '-n', '1', at]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('HTTP 401 UNAUTHORIZED');
      const tail = await nsq(['tail', 'guarded', '-n', '1', at, '--http-auth-token', TOKEN]);
      expect(tail).toMatchObject({ code: 0, stdout: 'secret stuff\n' });
      expect(tail.stderr).not.toContain(TOKEN);
    } finally {
      await node.close();
      await locked.close();
    }
  });

  it('tail --channel -n N exits after N and leaves the rest on the channel', async () => {
    expect((await nsq(['pub', 'rest', '-', '--nsqd-tcp-address', nsqd.tcpAddress], 'a\nb\nc\nd\ne\n')).code).toBe(0);
    const tail = await nsq(['tail', 'rest', '--channel', 'keep', '-n', '2', '--nsqd-tcp-address', nsqd.tcpAddress]);
    expect(tail.code).toBe(0);
    expect(tail.stdout.split('\n').slice(0, -1)).toHaveLength(2);
    await eventually(async () => {
      const c = await channelStats('rest', 'keep');
      expect(c.depth + c.in_flight_count).toBe(3);
    });
  });
});
