/**
 * Replica-group coordination across separate "hosts": etcd and every member run in network
 * namespaces of their own (test/support/netns.ts), and partitions are real packet drops there.
 *
 * - The harness itself: traffic flows between members, a partition and an isolation really drop
 *   it (a connection attempt times out), nothing routes out of the lab, and cleanup leaves no
 *   namespace and no interface behind.
 * - The leader cut off from etcd: its ack fence passes strictly before another member is elected
 *   (both events timed by this process's one monotonic clock as their lines arrive), the epoch
 *   grows by one, and once healed the old leader's in-sync-set write is refused by etcd.
 *
 * Members are node processes running HaCoordinator from dist/ (so `npm run build` first) that
 * print their events as JSON lines and take commands on stdin. Skipped, with the reason, without
 * root, iproute2, iptables or etcd.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EtcdServer, etcdSupport, startEtcdInLab } from './support/etcd.js';
import { listNamespaces, NetnsLab, netnsSupport } from './support/netns.js';
import { waitUntil } from './support/processes.js';

const run = promisify(execFile);
const COORDINATOR_URL = new URL('../packages/nsqd/dist/ha/coordinator.js', import.meta.url).href;
const TTL_S = 2;

const skipReason = (await netnsSupport()) ?? etcdSupport();
if (skipReason !== null) console.warn(`[ha-netns] SKIPPED: ${skipReason}`);

/** The member process: a coordinator whose events go to stdout and whose commands come from stdin. */
const MEMBER_SCRIPT = `
const { createHaCoordinator } = await import(process.env.HA_COORDINATOR_URL);
const { createInterface } = await import('node:readline');
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const c = await createHaCoordinator(JSON.parse(process.env.HA_MEMBER));
for (const ev of ['elected', 'fenceExpired', 'deposed', 'leader', 'isr', 'etcdError']) {
  c.on(ev, (x) => out({ event: ev, data: ev === 'etcdError' ? { op: x.op, error: String(x.error) } : x }));
}
await c.start();
out({ event: 'started' });
createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  try {
    let result = null;
    if (cmd.op === 'expand') result = await c.expandIsr(cmd.member);
    else if (cmd.op === 'shrink') result = await c.shrinkIsr(cmd.member);
    else if (cmd.op === 'state') result = { role: c.role, term: c.term, leader: c.leader, isr: c.isr };
    out({ reply: cmd.id, ok: true, result });
  } catch (err) {
    out({ reply: cmd.id, ok: false, code: err.code ?? null, message: String(err.message) });
  }
});
`;

interface Line {
  atMs: number;
  event?: string;
  data?: Record<string, unknown> | null;
  reply?: number;
  ok?: boolean;
  code?: string | null;
  result?: unknown;
}

/** One member process and every line it printed, stamped on arrival. */
class Member {
  readonly lines: Line[] = [];
  private readonly stderr: string[] = [];
  private nextId = 1;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      const atMs = performance.now();
      try {
        this.lines.push({ atMs, ...JSON.parse(text) });
      } catch {
        this.stderr.push(text);
      }
    });
    child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString('utf8')));
  }

  events(name: string): Line[] {
    return this.lines.filter((l) => l.event === name);
  }

  async request(op: string, member?: string): Promise<Line> {
    const id = this.nextId++;
    this.child.stdin?.write(`${JSON.stringify({ id, op, member })}\n`);
    return waitUntil(`${this.name} answers ${op}`, () => this.lines.find((l) => l.reply === id), { timeoutMs: 15_000 });
  }

  logs(): string {
    const lines = this.lines.map((l) => `${l.atMs.toFixed(0)} ${JSON.stringify({ ...l, atMs: undefined })}`);
    return [...lines, ...this.stderr].map((l) => `${this.name} | ${l}`).join('\n');
  }
}

async function rootLinks(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':')[1]?.trim() ?? '')
    .sort();
}

/** A node one-liner run inside a member: connects to host:port, prints "connected" or the error code. */
function probeConnect(host: string, port: number, timeoutMs: number): string {
  return `const s = require('node:net').connect(${port}, '${host}');
s.setTimeout(${timeoutMs}, () => { console.log('timeout'); process.exit(0); });
s.on('connect', () => { console.log('connected'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
}

describe.skipIf(skipReason !== null)('replica group coordination across network namespaces', () => {
  let lab: NetnsLab | null = null;
  let etcd: EtcdServer | null = null;
  const members: Member[] = [];

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      console.error(`---- member output ----\n${members.map((m) => m.logs()).join('\n')}\n${etcd?.logs() ?? ''}`);
    });
  });
  afterEach(async () => {
    members.length = 0;
    await etcd?.stop();
    etcd = null;
    await lab?.cleanup();
    lab = null;
  });

  async function connectFrom(from: string, host: string, port: number): Promise<string> {
    const { stdout } = await (lab as NetnsLab).exec(from, process.execPath, ['-e', probeConnect(host, port, 1_500)]);
    return stdout.trim();
  }

  it('drops packets for partitions and isolation, routes nothing out, and cleans up everything', async () => {
    const linksBefore = await rootLinks();
    lab = await NetnsLab.create(['a', 'b', 'c']);
    const l = lab;
    expect(await listNamespaces()).toEqual(expect.arrayContaining(['a', 'b', 'c', 'hub'].map((m) => `${l.id}-${m}`)));
    // A server in b, on its lab address.
    const server = l.spawn('b', process.execPath, [
      '-e',
      `require('node:net').createServer((s) => s.end()).listen(7000, '${l.address('b')}', () => console.log('up'));`,
    ]);
    await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
    expect(await connectFrom('a', l.address('b'), 7000)).toBe('connected');
    expect(await connectFrom('c', l.address('b'), 7000)).toBe('connected');
    await l.partition('a', 'b');
    expect(await connectFrom('a', l.address('b'), 7000)).toBe('timeout');
    expect(await connectFrom('c', l.address('b'), 7000)).toBe('connected');
    await l.heal();
    expect(await connectFrom('a', l.address('b'), 7000)).toBe('connected');
    await l.isolate('b');
    expect(await connectFrom('a', l.address('b'), 7000)).toBe('timeout');
    expect(await connectFrom('c', l.address('b'), 7000)).toBe('timeout');
    expect((await l.rules()).b).toHaveLength(2);
    await l.heal();
    expect(await l.rules()).toEqual({ a: [], b: [], c: [] });
    // No route out of the /24: an address outside it is unreachable from inside.
    expect(await connectFrom('a', '10.99.99.99', 7000)).toBe('ENETUNREACH');
    // The root namespace gained no interface while the lab existed.
    expect(await rootLinks()).toEqual(linksBefore);
    await l.cleanup();
    lab = null;
    expect((await listNamespaces()).filter((ns) => ns.startsWith(`${l.id}-`))).toEqual([]);
    expect(await rootLinks()).toEqual(linksBefore);
    expect(server.exitCode !== null || server.signalCode !== null).toBe(true);
  });

  it('shuts the cut-off leader’s ack fence before another member is elected; etcd refuses its later write', async () => {
    lab = await NetnsLab.create(['etcd', 'a', 'b', 'c']);
    const l = lab;
    etcd = await startEtcdInLab(l, 'etcd');
    const names = ['a', 'b', 'c'];
    for (const name of names) {
      const config = {
        group: 'netns',
        memberId: name,
        addresses: {
          replicationAddress: `${l.address(name)}:4153`,
          tcpAddress: `${l.address(name)}:4150`,
          httpAddress: `${l.address(name)}:4151`,
          broadcastAddress: l.address(name),
        },
        etcdEndpoints: [etcd.clientUrl],
        leaseTtlSeconds: TTL_S,
      };
      const child = l.spawn(name, process.execPath, ['--input-type=module', '-e', MEMBER_SCRIPT], {
        ...process.env,
        NODE_OPTIONS: '',
        HA_COORDINATOR_URL: COORDINATOR_URL,
        HA_MEMBER: JSON.stringify(config),
      });
      members.push(new Member(name, child));
    }
    await waitUntil('every member started', () => members.every((m) => m.events('started').length === 1), {
      timeoutMs: 20_000,
    });
    const leader = await waitUntil('one member elected', () => {
      const elected = members.filter((m) => m.events('elected').length > 0);
      return elected.length === 1 ? elected[0] : undefined;
    });
    const followers = members.filter((m) => m !== leader);
    for (const f of followers) expect((await leader.request('expand', f.name)).ok).toBe(true);
    for (const f of followers) {
      await waitUntil(`${f.name} sees all three in sync`, async () => {
        const state = (await f.request('state')).result as { isr: { members: string[] } | null };
        return state.isr?.members.length === 3;
      });
    }

    await l.partition(leader.name, 'etcd');
    const next = await waitUntil('a follower elected', () => followers.find((f) => f.events('elected').length > 0), {
      timeoutMs: 30_000,
    });
    const fence = leader.events('fenceExpired')[0];
    const deposed = leader.events('deposed')[0];
    const elected = next.events('elected')[0];
    expect(fence).toBeDefined();
    expect(fence.atMs).toBeLessThan(elected.atMs);
    expect(deposed.data).toMatchObject({ epoch: 1, reason: 'fence-expired' });
    expect(deposed.atMs).toBeLessThan(elected.atMs);
    expect(elected.data).toMatchObject({ epoch: 2 });
    expect(followers.filter((f) => f.events('elected').length > 0)).toEqual([next]);
    console.log(
      `[ha-netns] ${leader.name} cut from etcd: fence expired ${(elected.atMs - fence.atMs).toFixed(0)} ms before ${next.name} was elected`,
    );

    await l.heal();
    const third = followers.find((f) => f !== next) as Member;
    // Until gRPC has reconnected after the heal, the write fails without reaching etcd (no code).
    const refused = await waitUntil(
      `${leader.name}'s write reaches etcd`,
      async () => {
        const reply = await leader.request('shrink', third.name);
        return reply.ok || reply.code !== null ? reply : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(refused).toMatchObject({ ok: false, code: 'E_HA_FENCED' });
    const state = (await next.request('state')).result as { role: string; isr: { epoch: number; members: string[] } };
    expect(state.role).toBe('leader');
    expect(state.isr.members.sort()).toEqual(['a', 'b', 'c']);
    await waitUntil(
      `${leader.name} learns the new leader`,
      async () => {
        const s = (await leader.request('state')).result as { role: string; leader: { memberId: string } | null };
        return s.role === 'follower' && s.leader?.memberId === next.name;
      },
      { timeoutMs: 30_000 },
    );
  });
});
