/**
 * A replica group of two real nsqd processes on loopback, with a real etcd and nsqlookupd
 * (docs/replication.md): the follower serves no NSQ client and stores what the leader stores;
 * sync acks wait for it; SIGKILL of the leader while a producer publishes and a consumer reads
 * through lookupd loses no acknowledged message, and the old leader's in-flight ones come again.
 * Skipped, with the reason, without /usr/bin/etcd.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Consumer } from '@nsq-ts/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EtcdServer, etcdSupport, startEtcd } from './support/etcd.js';
import {
  formPair,
  freePort,
  type HaStatus,
  type Member,
  type MemberSpec,
  pub,
  spawnMember,
  status,
} from './support/ha-loopback.js';
import { ProcessGroup, waitUntil } from './support/processes.js';

const skipReason = etcdSupport();

let etcd: EtcdServer | null = null;
let group: ProcessGroup;
const members: Member[] = [];
const dirs: string[] = [];
const consumers: Consumer[] = [];
/** Ends the handlers that hold messages in flight (they finish on a dead connection then). */
let release: () => void = () => undefined;

beforeEach(() => {
  group = new ProcessGroup();
});

afterEach(async (ctx) => {
  release();
  for (const c of consumers.splice(0)) await c.close();
  if (ctx.task.result?.state === 'fail') {
    console.log(members.map((m) => m.proc.logs()).join('\n'));
    console.log(group.logs());
  }
  for (const m of members.splice(0)) {
    m.proc.signal('SIGKILL');
    await m.proc.exited;
  }
  await group.killAll();
  await etcd?.stop();
  etcd = null;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}, 60_000);

async function startMember(m: MemberSpec, lookupd: string, extra: string[] = []): Promise<Member> {
  const member = await spawnMember(m, lookupd, (etcd as EtcdServer).clientUrl, { extra });
  members.push(member);
  return member;
}

async function newMember(id: string): Promise<MemberSpec> {
  const dataPath = await mkdtemp(join(tmpdir(), `nsq-ts-ha-${id}-`));
  dirs.push(dataPath);
  return { id, replication: `127.0.0.1:${await freePort()}`, dataPath };
}

/** Both up: one leads, the other follows and is in the in-sync set. */
function formGroup(lookupd: string, extra: string[] = []): Promise<[Member, Member]> {
  return formPair(async (id) => startMember(await newMember(id), lookupd, extra));
}

describe.skipIf(skipReason !== null)('a replica group of two nsqds on loopback', () => {
  it('the follower serves no client and stores what the leader stores; sync acks wait for it', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a, b] = await formGroup(lookupd.tcpAddress);
    // The follower: no TCP listener, /ping says what it is, publishes are refused.
    expect(/listening on HTTP/.test(b.proc.logs())).toBe(true);
    const ping = await fetch(`http://${b.http}/ping`);
    expect([ping.status, await ping.text()]).toEqual([503, 'NOK - follower of a (epoch 1)']);
    expect(await pub(b, 't', 'x')).toBe(503);

    for (let i = 0; i < 20; i++) expect(await pub(a, 't', `m${i}`)).toBe(200);
    const leader = await status(a);
    // Sync acks: every answered publish was acknowledged by b first.
    const follower = leader.followers?.find((f) => f.member_id === 'b');
    expect(follower?.acked_seq).toBe(leader.position.seq);
    expect((await status(b)).position).toEqual(leader.position);
    // /stats carries the same block (an extension key), on both.
    for (const [m, role] of [
      [a, 'leader'],
      [b, 'follower'],
    ] as const) {
      const stats = (await (await fetch(`http://${m.http}/stats?format=json`)).json()) as { ha: HaStatus };
      expect(stats.ha).toMatchObject({ role, epoch: 1, leader: 'a', in_sync: ['a', 'b'] });
    }
  }, 60_000);

  it('SIGKILL of the leader under load: every acknowledged message is delivered after the failover', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a, b] = await formGroup(lookupd.tcpAddress);
    // The channel exists on both before the load: its messages are replicated as the topic's.
    expect(await pub(a, 'events', 'first')).toBe(200);
    const received = new Map<string, number>();
    const consumer = new Consumer({
      topic: 'events',
      channel: 'c',
      lookupdHttpAddresses: [lookupd.httpAddress],
      lookupdPollIntervalMs: 200,
      maxInFlight: 50,
      logger: null,
    });
    consumers.push(consumer);
    let killedAt = 0;
    // Some messages are held in flight unanswered on the old leader: they must come again.
    const held = new Set<string>();
    /** Attempts of each held message's later delivery: the count kept across the failover. */
    const attemptsAgain = new Map<string, number>();
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    consumer.on('message', async (msg) => {
      const body = msg.body.toString();
      received.set(body, (received.get(body) ?? 0) + 1);
      if (held.has(body)) attemptsAgain.set(body, msg.attempts);
      else if (killedAt === 0 && body.endsWith('7') && held.size < 20) {
        held.add(body);
        await released;
      }
    });
    await consumer.connect();

    const acked = new Set<string>(['first']);
    let stop = false;
    const producers = [0, 1, 2, 3].map(async (p) => {
      for (let i = 0; !stop; i++) {
        const body = `p${p}-${i}`;
        for (const m of [a, b]) {
          const status = await pub(m, 'events', body).catch(() => 0);
          if (status === 200) {
            acked.add(body);
            break;
          }
        }
        if (killedAt > 0 && !a.proc.running) await new Promise((r) => setTimeout(r, 20));
      }
    });
    await waitUntil('some acknowledged', () => acked.size > 200, { timeoutMs: 20_000 });
    killedAt = performance.now();
    a.proc.signal('SIGKILL');
    await a.proc.exited;
    const ackedBefore = acked.size;
    await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 20_000 });
    const leading = performance.now();
    await waitUntil('publishes acknowledged by b', () => acked.size > ackedBefore + 50, { timeoutMs: 20_000 });
    stop = true;
    await Promise.all(producers);
    await waitUntil('every acknowledged message delivered', () => [...acked].every((body) => received.has(body)), {
      timeoutMs: 30_000,
    }).catch(async (err: Error) => {
      const missing = [...acked].filter((body) => !received.has(body));
      const stats = await (await fetch(`http://${b.http}/stats?format=json`)).text();
      throw new Error(
        `${err.message}: ${missing.length} missing of ${acked.size}, e.g. ${missing.slice(0, 10).join(' ')}; b: ${stats}`,
      );
    });
    await waitUntil('the held messages delivered again', () => attemptsAgain.size === held.size, { timeoutMs: 30_000 });
    const redelivered = [...received.values()].filter((n) => n > 1).length;
    console.log(
      `failover: b led ${Math.round(leading - killedAt)} ms after the SIGKILL; ${acked.size} acknowledged, all delivered; ${held.size} held in flight on a, ${redelivered} delivered twice`,
    );
    expect(held.size).toBeGreaterThan(0);
    expect(Math.min(...attemptsAgain.values())).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('a new member takes a full copy; a restarted old leader rejoins as a follower and catches up', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const aSpec = await newMember('a');
    let a = await startMember(aSpec, lookupd.tcpAddress);
    await waitUntil('a leads', async () => (await status(a)).role === 'leader', { timeoutMs: 15_000 });
    for (const path of ['topic/create?topic=events', 'channel/create?topic=events&channel=c']) {
      expect((await fetch(`http://${a.http}/${path}`, { method: 'POST' })).status).toBe(200);
    }
    for (let i = 0; i < 20; i++) expect(await pub(a, 'events', `m${i}`)).toBe(200);
    // A restart: a leads again at epoch 2 from what it stored, so its stream starts past seq 0.
    await a.proc.stop('SIGTERM');
    members.splice(members.indexOf(a), 1);
    a = await startMember(aSpec, lookupd.tcpAddress);
    await waitUntil(
      'a leads epoch 2',
      async () => (await status(a)).epoch === 2 && (await status(a)).role === 'leader',
      {
        timeoutMs: 15_000,
      },
    );
    const b = await startMember(await newMember('b'), lookupd.tcpAddress);
    await waitUntil('b in sync', async () => (await status(a)).in_sync.includes('b'), { timeoutMs: 15_000 });
    expect(b.proc.logs()).toMatch(/taking a full copy from a/);
    expect((await status(a)).counters).toMatchObject({ full_copies_served: 1, isr_expands: 1 });
    expect((await status(b)).counters).toMatchObject({ full_copies_received: 1, elections_won: 0 });
    for (let i = 20; i < 30; i++) expect(await pub(a, 'events', `m${i}`)).toBe(200);
    expect((await status(b)).position).toEqual((await status(a)).position);

    a.proc.signal('SIGKILL');
    await a.proc.exited;
    members.splice(members.indexOf(a), 1);
    await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 20_000 });
    const received = new Set<string>();
    const consumer = new Consumer({
      topic: 'events',
      channel: 'c',
      lookupdHttpAddresses: [lookupd.httpAddress],
      lookupdPollIntervalMs: 200,
      logger: null,
    });
    consumers.push(consumer);
    consumer.on('message', async (msg) => {
      received.add(msg.body.toString());
    });
    await consumer.connect();
    await waitUntil('all 30 delivered by b', () => received.size === 30, { timeoutMs: 20_000 });

    // The old leader comes back: a follower of b, in sync again, holding what b holds.
    a = await startMember(aSpec, lookupd.tcpAddress);
    await waitUntil('a back in sync', async () => (await status(b)).in_sync.includes('a'), { timeoutMs: 20_000 });
    expect(await pub(b, 'events', 'after')).toBe(200);
    await waitUntil('a holds what b holds', async () => {
      const [sa, sb] = [await status(a), await status(b)];
      return sa.role === 'follower' && JSON.stringify(sa.position) === JSON.stringify(sb.position);
    });
  }, 120_000);

  it('--min-insync=2: with the follower gone publishes are refused and never delivered, before or after a failover', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a, b] = await formGroup(lookupd.tcpAddress, ['--min-insync=2']);
    // Two channels: one read on a once b is back, one read on b after a failover.
    for (const path of [
      'topic/create?topic=t',
      'channel/create?topic=t&channel=c',
      'channel/create?topic=t&channel=d',
    ]) {
      expect((await fetch(`http://${a.http}/${path}`, { method: 'POST' })).status).toBe(200);
    }
    expect(await pub(a, 't', 'one')).toBe(200);
    b.proc.signal('SIGKILL');
    await b.proc.exited;
    members.splice(members.indexOf(b), 1);
    // Stored, then answered only after --replication-timeout (the shrink is committed to etcd first): refused.
    expect(await pub(a, 't', 'two')).toBe(503);
    expect((await status(a)).in_sync).toEqual(['a']);
    // Refused before it is stored.
    expect(await pub(a, 't', 'three')).toBe(503);
    // Both refusals and the shrink are counted where they happened, in /ha and /metrics.
    expect((await status(a)).counters).toMatchObject({
      elections_won: 1,
      isr_shrinks: 1,
      isr_expands: 1,
      refused_publishes: 2,
      unanswered_publishes: 0,
    });
    const scraped = await (await fetch(`http://${a.http}/metrics`)).text();
    expect(scraped).toMatch(/^nsq_ha_refused_publishes_total 2$/m);
    expect(scraped).toMatch(/^nsq_ha_isr_shrinks_total 1$/m);
    const back = await startMember({ id: 'b', replication: b.replication, dataPath: b.dataPath }, lookupd.tcpAddress, [
      '--min-insync=2',
    ]);
    await waitUntil('b in sync again', async () => (await status(a)).in_sync.includes('b'), { timeoutMs: 20_000 });
    expect(await pub(a, 't', 'four')).toBe(200);
    expect((await status(back)).position).toEqual((await status(a)).position);
    expect((await status(a)).counters.isr_expands).toBe(2);

    /** Bodies `channel` delivers, in order, until `last` (one in flight at a time: log order). */
    const readUntil = async (channel: string, last: string): Promise<string[]> => {
      const got: string[] = [];
      const consumer = new Consumer({
        topic: 't',
        channel,
        lookupdHttpAddresses: [lookupd.httpAddress],
        lookupdPollIntervalMs: 200,
        maxInFlight: 1,
        logger: null,
      });
      consumers.push(consumer);
      consumer.on('message', async (msg) => {
        got.push(msg.body.toString());
      });
      await consumer.connect();
      await waitUntil(`${channel} delivers ${last}`, () => got.includes(last), { timeoutMs: 20_000 });
      await consumer.close();
      consumers.splice(consumers.indexOf(consumer), 1);
      return got;
    };
    expect(await readUntil('c', 'four')).toEqual(['one', 'four']);

    a.proc.signal('SIGKILL');
    await a.proc.exited;
    members.splice(members.indexOf(a), 1);
    await waitUntil('b leads', async () => (await status(back)).role === 'leader', { timeoutMs: 20_000 });
    expect((await status(back)).counters.elections_won).toBe(1);
    expect(await readUntil('d', 'four')).toEqual(['one', 'four']);
  }, 90_000);

  it('--min-insync=1: a follower that left the in-sync set cannot be elected; back in sync, it can', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a0, b0] = await formGroup(lookupd.tcpAddress);
    const aSpec = { id: 'a', replication: a0.replication, dataPath: a0.dataPath };
    const bSpec = { id: 'b', replication: b0.replication, dataPath: b0.dataPath };
    const kill = async (m: Member) => {
      m.proc.signal('SIGKILL');
      await m.proc.exited;
      members.splice(members.indexOf(m), 1);
    };
    await kill(b0);
    // a goes on alone (--min-insync=1): b leaves the set, and a acknowledges what b lacks.
    await waitUntil('b out of the in-sync set', async () => !(await status(a0)).in_sync.includes('b'), {
      timeoutMs: 20_000,
    });
    expect(await pub(a0, 't', 'only-on-a')).toBe(200);
    await kill(a0);
    // b comes back with the leader dead: it is not listed, so it never campaigns; the group stays leaderless.
    const b = await startMember(bSpec, lookupd.tcpAddress);
    await waitUntil('the dead leader key expired', async () => (await status(b)).leader === null, {
      timeoutMs: 20_000,
    });
    // An observation window of two lease TTLs (not a synchronisation): b stays a follower that refuses publishes.
    const until = performance.now() + 4_000;
    while (performance.now() < until) {
      const s = await status(b);
      expect([s.role, s.epoch]).toEqual(['follower', 1]);
      expect(await pub(b, 't', 'refused')).toBe(503);
      await new Promise((r) => setTimeout(r, 250));
    }
    // a, in the set, comes back and leads; b catches up, rejoins the set and then wins when a dies.
    const a = await startMember(aSpec, lookupd.tcpAddress);
    await waitUntil('a leads epoch 2', async () => {
      const s = await status(a);
      return s.role === 'leader' && s.epoch === 2;
    });
    await waitUntil('b in sync again', async () => (await status(a)).in_sync.includes('b'), { timeoutMs: 20_000 });
    await kill(a);
    await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 20_000 });
    const stats = (await (await fetch(`http://${b.http}/stats?format=json&topic=t`)).json()) as {
      topics: { depth: number }[];
    };
    // What only a held when b was out of the set came to b by the catch-up.
    expect(stats.topics[0]?.depth).toBe(1);
  }, 90_000);

  it('POST /ha/handover moves leadership to the named member with nothing lost; the old leader follows it', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a, b] = await formGroup(lookupd.tcpAddress);
    for (let i = 0; i < 10; i++) expect(await pub(a, 't', `m${i}`)).toBe(200);
    const refused = await fetch(`http://${a.http}/ha/handover?to=nobody`, { method: 'POST' });
    expect([refused.status, await refused.json()]).toEqual([400, { message: 'TARGET_NOT_IN_SYNC' }]);
    const res = await fetch(`http://${a.http}/ha/handover?to=b`, { method: 'POST' });
    expect(res.status).toBe(200);
    await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 15_000 });
    expect((await status(b)).epoch).toBe(2);
    expect(await pub(b, 't', 'after')).toBe(200);
    // a resumes the stream where it stood (its last flush reached b before it resigned): no full copy.
    await waitUntil('a follows b in sync', async () => (await status(b)).in_sync.includes('a'), { timeoutMs: 15_000 });
    expect(a.proc.logs()).not.toMatch(/full copy/);
    const stats = (await (await fetch(`http://${b.http}/stats?format=json&topic=t`)).json()) as {
      topics: { depth: number; message_count: number }[];
    };
    expect(stats.topics[0]).toMatchObject({ depth: 11 });
  }, 60_000);

  it('a member whose --max-bytes-per-file or --max-msg-size differs is refused at its hello: said on both sides and in GET /ha, kept out of the in-sync set', async () => {
    etcd = await startEtcd();
    const lookupd = await group.startLookupd('lookupd');
    const [a, b0] = await formGroup(lookupd.tcpAddress);
    expect(await pub(a, 't', 'one')).toBe(200);
    const bSpec = { id: 'b', replication: b0.replication, dataPath: b0.dataPath };
    b0.proc.signal('SIGKILL');
    await b0.proc.exited;
    members.splice(members.indexOf(b0), 1);
    // The same member, restarted with settings that would split or read the leader's segment files differently.
    const b = await startMember(bSpec, lookupd.tcpAddress, ['--max-bytes-per-file=65536', '--max-msg-size=2048']);
    const reason =
      "settings differ from the leader's: --max-bytes-per-file=65536 (the leader has 104857600), --max-msg-size=2048 (the leader has 1048576)";
    await waitUntil('b refused', async () => (await status(b)).refused === reason, { timeoutMs: 15_000 });
    await waitUntil('b out of the in-sync set', async () => (await status(a)).in_sync.join() === 'a', {
      timeoutMs: 15_000,
    });
    const leader = await status(a);
    expect(leader.followers).toEqual([
      expect.objectContaining({ member_id: 'b', connected: false, in_sync: false, refused: reason }),
    ]);
    // b retries; each side says it once (an error), and counts every refusal.
    await waitUntil('b retried', async () => (await status(a)).counters.stream_refusals_sent >= 2, {
      timeoutMs: 15_000,
    });
    expect(a.proc.logs().split(`ERROR: REPLICATION: follower b refused - ${reason}`).length).toBe(2);
    expect(b.proc.logs().split(`ERROR: REPLICATION: a refused to stream - ${reason}`).length).toBe(2);
    expect((await status(b)).counters.stream_refusals_received).toBeGreaterThanOrEqual(2);
    expect((await status(b)).connected).toBe(false);
    expect(await pub(a, 't', 'two')).toBe(200);
    expect((await status(a)).in_sync).toEqual(['a']);

    // With the group's settings it follows again and rejoins the set.
    await b.proc.stop('SIGTERM');
    members.splice(members.indexOf(b), 1);
    const back = await startMember(bSpec, lookupd.tcpAddress);
    await waitUntil('b in sync again', async () => (await status(a)).in_sync.includes('b'), { timeoutMs: 20_000 });
    expect((await status(a)).followers).toEqual([expect.objectContaining({ member_id: 'b', refused: '' })]);
    expect((await status(back)).refused).toBe('');
  }, 90_000);
});
