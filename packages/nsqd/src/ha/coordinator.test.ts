/**
 * HaCoordinator against a real etcd on loopback (one per file, a fresh group per test). Each
 * member has its own etcd client, as separate processes would. Leases are 2 s: etcd (run with
 * a 500 ms election timeout) would allow 1 s, but a 2-core machine shared with other tests can
 * stall an event loop long enough to lose a 1 s fence by accident.
 */
import { execFile } from 'node:child_process';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type EtcdServer, etcdSupport, startEtcd } from '../../../../test/support/etcd.js';
import { waitUntil } from '../../../../test/support/processes.js';
import { AckFence } from './ack-fence.js';
import {
  createHaCoordinator,
  type DeposeReason,
  type HaCoordinator,
  type HaCoordinatorOptions,
  HaFencedError,
  HaNotLeaderError,
  type IsrRecord,
} from './coordinator.js';
import { connectEtcd } from './etcd-client.js';
import { GroupKeys } from './keys.js';

const TTL_S = 2;
const unsupported = etcdSupport();
if (unsupported !== null) console.warn(`[ha] coordinator tests SKIPPED: ${unsupported}`);

/**
 * A TCP proxy to `targetUrl` whose `cut()` stops every byte both ways, on the connections it
 * carries and on new ones, until `heal()`: nothing is closed and nothing is lost (the kernel
 * buffers it, as TCP retransmits across a real partition), both ends just stop hearing.
 */
async function partitionableProxy(
  targetUrl: string,
): Promise<{ url: string; cut(): void; heal(): void; close(): void }> {
  const target = new URL(targetUrl);
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = netConnect({ host: target.hostname, port: Number(target.port) });
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(from);
      from.pipe(to);
      if (cut) from.pause();
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      cut = true;
      for (const s of sockets) s.pause();
    },
    heal: () => {
      cut = false;
      for (const s of sockets) s.resume();
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('AckFence', () => {
  it('is the latest renewal send time + TTL − margin, and stays shut once revoked', () => {
    const fence = new AckFence(100);
    expect(fence.open(0)).toBe(false);
    fence.renewed(1_000, 2_000);
    expect(fence.deadline()).toBe(2_900);
    // An answer to an older keepalive arriving late does not move the fence back.
    fence.renewed(500, 2_000);
    expect(fence.deadline()).toBe(2_900);
    expect(fence.open(2_899)).toBe(true);
    expect(fence.open(2_900)).toBe(false);
    fence.revoke();
    fence.renewed(3_000, 2_000);
    expect(fence.deadline()).toBe(Number.NEGATIVE_INFINITY);
    expect(fence.open(3_000)).toBe(false);
  });
});

describe('loading', () => {
  it('imports etcd3 only when a coordinator is created, not with the module', async () => {
    // A fresh process imports the built module; etcd3 (CommonJS) shows in require.cache once loaded.
    const dist = new URL('../../dist/ha/coordinator.js', import.meta.url).href;
    const script = `
      const cache = (await import('node:module')).createRequire(import.meta.url).cache;
      const loaded = () => Object.keys(cache).some((k) => k.includes('/node_modules/etcd3/'));
      const { createHaCoordinator } = await import(${JSON.stringify(dist)});
      const before = loaded();
      const c = await createHaCoordinator({ group: 'g', memberId: 'm', etcdEndpoints: ['http://127.0.0.1:1'],
        addresses: { replicationAddress: '', tcpAddress: '', httpAddress: '', broadcastAddress: '' } });
      await c.close();
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({ before: false, after: true });
  });
});

describe.skipIf(unsupported !== null)('HaCoordinator (real etcd)', () => {
  let etcd: EtcdServer;
  let admin: Etcd3;
  let group = '';
  let groupSeq = 0;
  const open: HaCoordinator[] = [];
  const cleanups: Array<() => unknown> = [];
  // Every member's events, printed when a test fails.
  const eventLog: string[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    admin = await connectEtcd({ endpoints: [etcd.clientUrl] });
  });
  afterAll(async () => {
    admin?.close();
    await etcd?.stop();
  });
  beforeEach(({ onTestFailed }) => {
    eventLog.length = 0;
    onTestFailed(() => console.error(`---- coordinator events ----\n${eventLog.join('\n')}\n${etcd.logs()}`));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await Promise.all(open.splice(0).map((c) => c.close()));
    group = '';
  });

  function newGroup(): string {
    group = `g${process.pid}-${++groupSeq}`;
    return group;
  }

  async function member(
    memberId: string,
    extra: Partial<HaCoordinatorOptions & { etcdEndpoints: readonly string[] }> = {},
  ): Promise<HaCoordinator> {
    const c = await createHaCoordinator({
      group,
      memberId,
      addresses: {
        replicationAddress: `10.0.0.1:${memberId.length}`,
        tcpAddress: `${memberId}:4150`,
        httpAddress: `${memberId}:4151`,
        broadcastAddress: memberId,
      },
      etcdEndpoints: [etcd.clientUrl],
      leaseTtlSeconds: TTL_S,
      ...extra,
    });
    open.push(c);
    for (const ev of ['elected', 'deposed', 'leader', 'isr', 'fenceExpired', 'etcdError'] as const) {
      c.on(ev, (x: unknown) => {
        const what = x instanceof Object && 'error' in x && 'op' in x ? `${x.op}: ${x.error}` : JSON.stringify(x);
        eventLog.push(`${performance.now().toFixed(0)} ${memberId} ${ev} ${what}`);
      });
    }
    return c;
  }

  async function readIsr(): Promise<{ epoch: number; members: string[] } | null> {
    const v = await admin.get(new GroupKeys(group).isr).string();
    return v === null ? null : JSON.parse(v);
  }

  async function readEpoch(): Promise<number> {
    return Number(await admin.get(new GroupKeys(group).epoch).string());
  }

  async function leaderOf(cs: readonly HaCoordinator[]): Promise<HaCoordinator> {
    return waitUntil('one leader', () => {
      const leaders = cs.filter((c) => c.role === 'leader');
      return leaders.length === 1 ? leaders[0] : undefined;
    });
  }

  it('elects exactly one of several members that campaign at once; the first election bootstraps epoch 1', async () => {
    newGroup();
    const cs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => member(id)));
    const elected: string[] = [];
    for (const c of cs) c.on('elected', () => elected.push(c.memberId));
    await Promise.all(cs.map((c) => c.start()));
    const leader = await leaderOf(cs);
    // Everyone learns the same leader through the watch.
    await waitUntil('all see the leader', () => cs.every((c) => c.leader?.memberId === leader.memberId));
    // Losers also tried directly: none of them wins while a leader exists.
    expect(await Promise.all(cs.filter((c) => c !== leader).map((c) => c.campaign()))).toEqual([
      null,
      null,
      null,
      null,
    ]);
    expect(elected).toEqual([leader.memberId]);
    expect(leader.term?.epoch).toBe(1);
    expect(await readEpoch()).toBe(1);
    expect(await readIsr()).toEqual({ epoch: 1, members: [leader.memberId] });
    expect(leader.leader).toMatchObject({ memberId: leader.memberId, epoch: 1, tcpAddress: `${leader.memberId}:4150` });
    await waitUntil('all see five members', () => cs.every((c) => c.members.size === 5));
    expect(leader.canAcknowledge()).toBe(true);
    expect(cs.filter((c) => c !== leader).every((c) => !c.canAcknowledge())).toBe(true);
  });

  it('never elects a member outside the in-sync set, and each election adds exactly one to the epoch', async () => {
    newGroup();
    const a = await member('a');
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    const b = await member('b', { autoCampaign: false });
    await b.start();
    await waitUntil('b sees a', () => b.leader?.memberId === 'a');
    await a.close();
    await waitUntil('b sees no leader', () => b.leader === null);
    expect(b.isr?.members).toEqual(['a']);
    expect(await b.campaign()).toBeNull();
    expect(b.role).toBe('follower');
    // a comes back (same id) and is elected again: epoch 2.
    const a2 = await member('a');
    await a2.start();
    await waitUntil('a leads again', () => a2.role === 'leader');
    expect(a2.term?.epoch).toBe(2);
    // b caught up: a admits it, then leaves; now b can win, at epoch 3.
    await a2.expandIsr('b');
    await a2.close();
    await waitUntil('b sees no leader', () => b.leader === null);
    expect(await b.campaign()).toBe(3);
    expect(b.role).toBe('leader');
    expect(await readEpoch()).toBe(3);
    expect(await readIsr()).toEqual({ epoch: 3, members: ['a', 'b'] });
  });

  it('refuses to bootstrap a group without an in-sync set for a member told not to', async () => {
    newGroup();
    const a = await member('a', { bootstrap: false, autoCampaign: false });
    await a.start();
    expect(await a.campaign()).toBeNull();
    expect(await readEpoch()).toBe(0);
  });

  it('shrinks and expands the in-sync set only once committed, and a watcher sees each change', async () => {
    newGroup();
    const a = await member('a');
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    const b = await member('b');
    const c = await member('c');
    await Promise.all([b.start(), c.start()]);
    const seenByC: string[][] = [];
    c.on('isr', (isr) => {
      if (isr !== null) seenByC.push([...isr.members]);
    });
    const expanded = await a.expandIsr('b');
    expect(expanded.members).toEqual(['a', 'b']);
    // Committed when it resolves: a fresh read already shows it.
    expect((await readIsr())?.members).toEqual(['a', 'b']);
    await a.expandIsr('c');
    const shrunk: IsrRecord = await a.shrinkIsr('b');
    expect(shrunk).toMatchObject({ epoch: 1, members: ['a', 'c'] });
    expect((await readIsr())?.members).toEqual(['a', 'c']);
    // A no-op still asks etcd (and so still proves the term), and changes nothing.
    const again = await a.shrinkIsr('b');
    expect(again.members).toEqual(['a', 'c']);
    await waitUntil('c saw every change', () => seenByC.length === 3 && c.isr?.members.join() === 'a,c');
    expect(seenByC).toEqual([
      ['a', 'b'],
      ['a', 'b', 'c'],
      ['a', 'c'],
    ]);
    await expect(a.shrinkIsr('a')).rejects.toThrow(/cannot leave/);
    await expect(b.shrinkIsr('c')).rejects.toBeInstanceOf(HaNotLeaderError);
  });

  it('makes a deposed leader’s guarded write fail in etcd, even before it noticed', async () => {
    newGroup();
    // a would otherwise win again at once (it is in the in-sync set too).
    const a = await member('a', { autoCampaign: false });
    await a.start();
    expect(await a.campaign()).toBe(1);
    const b = await member('b');
    await b.start();
    await a.expandIsr('b');
    const deposed: DeposeReason[] = [];
    a.on('deposed', (d) => deposed.push(d.reason));
    // Take a's term away behind its back: revoke its lease with another client.
    const leaderKey = await admin.get(new GroupKeys(group).leader).exec();
    const lease = leaderKey.kvs[0]?.lease;
    expect(lease).toBeDefined();
    await admin.leaseClient.leaseRevoke({ ID: lease as string });
    await waitUntil('b leads', () => b.role === 'leader');
    expect(b.term?.epoch).toBe(2);
    await expect(a.shrinkIsr('b')).rejects.toBeInstanceOf(HaFencedError);
    await expect(a.expandIsr('c')).rejects.toMatchObject({ code: 'E_HA_FENCED', epoch: 1 });
    expect(await readIsr()).toEqual({ epoch: 2, members: ['a', 'b'] });
    await waitUntil('a was deposed', () => deposed.length === 1);
    expect(['leader-changed', 'lease-lost', 'fenced-write']).toContain(deposed[0]);
    expect(a.canAcknowledge()).toBe(false);
  });

  it('hands leadership over to the preferred member on resign', async () => {
    newGroup();
    const opts = { handoverDelayMs: 3_000 };
    const a = await member('a', opts);
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    const b = await member('b', opts);
    const c = await member('c', opts);
    await Promise.all([b.start(), c.start()]);
    await a.expandIsr('b');
    await a.expandIsr('c');
    await expect(a.resign('zz')).rejects.toThrow(/not in the in-sync set/);
    expect(a.role).toBe('leader');
    const order: string[] = [];
    a.on('deposed', (d) => order.push(`a deposed ${d.reason}`));
    c.on('elected', (t) => order.push(`c elected ${t.epoch}`));
    b.on('elected', (t) => order.push(`b elected ${t.epoch}`));
    await a.resign('c');
    await waitUntil('c leads', () => c.role === 'leader');
    expect(order).toEqual(['a deposed resigned', 'c elected 2']);
    await waitUntil('everyone sees c', () => [a, b].every((m) => m.leader?.memberId === 'c'));
    expect(c.handover).toBeNull();
    // And back again to b, the other way round.
    await c.resign('b');
    await waitUntil('b leads', () => b.role === 'leader');
    expect(b.term?.epoch).toBe(3);
    expect(order).toEqual(['a deposed resigned', 'c elected 2', 'b elected 3']);
    await expect(a.resign()).rejects.toBeInstanceOf(HaNotLeaderError);
  });

  it('lets the others take over after the handover delay when the preferred member does not', async () => {
    newGroup();
    const delayMs = 1_000;
    const cs = await Promise.all(['a', 'b', 'c'].map((id) => member(id, { handoverDelayMs: delayMs })));
    const [a, b, c] = cs;
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    await Promise.all([b.start(), c.start()]);
    await a.expandIsr('b');
    await a.expandIsr('c');
    await c.close();
    const resignedAt = performance.now();
    let electedAt = 0;
    for (const m of [a, b]) m.on('elected', () => (electedAt = performance.now()));
    await a.resign('c');
    const next = await leaderOf([a, b]);
    expect(next.term?.epoch).toBe(2);
    // Neither may campaign before the delay the handover asks of them.
    expect(electedAt - resignedAt).toBeGreaterThanOrEqual(delayMs);
  });

  it('shuts the ack fence before etcd can elect anyone else when the leader is cut off from etcd', async () => {
    newGroup();
    // a reaches etcd only through a proxy that can stop all traffic (a partition: no FIN, no
    // RST), while b and etcd carry on; etcd expires a's lease by its own clock.
    const proxy = await partitionableProxy(etcd.clientUrl);
    cleanups.push(() => proxy.close());
    // One monotonic source for every recorded time; the coordinators use it as their clock too.
    const clock = () => performance.now();
    const a = await member('a', { clock, etcdEndpoints: [proxy.url] });
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    const b = await member('b', { clock });
    await b.start();
    await a.expandIsr('b');
    const ttlMs = TTL_S * 1_000;
    // The fence is a renewal's send time + TTL − margin: within one TTL of now, never beyond.
    expect(a.ackFenceDeadline()).toBeGreaterThan(clock());
    expect(a.ackFenceDeadline()).toBeLessThanOrEqual(clock() + ttlMs - 200);

    const times: Record<string, number> = {};
    a.on('fenceExpired', (f) => {
      times.fence = clock();
      times.fenceDeadline = f.deadlineMs;
      times.canAckAtFence = a.canAcknowledge() ? 1 : 0;
    });
    a.on('deposed', (d) => {
      times.deposed = clock();
      times.deposedByFence = d.reason === 'fence-expired' ? 1 : 0;
    });
    b.on('elected', () => {
      times.elected = clock();
    });
    proxy.cut();
    await waitUntil('b leads', () => b.role === 'leader', { timeoutMs: 15_000 });
    expect(times.fence).toBeDefined();
    expect(times.canAckAtFence).toBe(0);
    expect(times.fenceDeadline).toBeLessThanOrEqual(times.fence);
    expect(times.fence).toBeLessThan(times.elected);
    expect(times.deposed).toBeLessThan(times.elected);
    expect(times.deposedByFence).toBe(1);
    expect(a.canAcknowledge()).toBe(false);
    expect(b.term?.epoch).toBe(2);
    // Healed, a learns who leads; its write from epoch 1 is refused by etcd.
    proxy.heal();
    await waitUntil('a sees b', () => a.leader?.memberId === 'b', { timeoutMs: 15_000 });
    await expect(a.shrinkIsr('b')).rejects.toBeInstanceOf(HaFencedError);
    // Its member key (whose lease may have expired meanwhile) is there again, for b to see.
    await waitUntil('b sees a registered', () => b.members.has('a'), { timeoutMs: 15_000 });
  });

  it('cleans up on close: the leader key, the member keys and the leases go at once', async () => {
    newGroup();
    const a = await member('a');
    const b = await member('b');
    await a.start();
    await waitUntil('a leads', () => a.role === 'leader');
    await b.start();
    await waitUntil('b sees both members', () => b.members.size === 2);
    const before = await admin.leaseClient.leaseLeases();
    await a.close();
    await b.close();
    const keys = await admin.getAll().prefix(new GroupKeys(group).prefix).keys();
    expect(keys.sort()).toEqual([`/nsq-ts/ha/${group}/epoch`, `/nsq-ts/ha/${group}/isr`]);
    const after = await admin.leaseClient.leaseLeases();
    expect(after.leases.length).toBe(before.leases.length - 3);
  });
});
