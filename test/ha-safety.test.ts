/**
 * What a replica group answers a publisher when it cannot acknowledge, and what it delivers
 * afterwards (docs/replication.md "Refusals"), with real nsqd processes, etcd and nsqlookupd on
 * loopback: a publish refused after it was stored is never delivered, even by a leader SIGKILLed
 * right after refusing; one whose outcome the leader cannot know (its fence shut while it waited)
 * gets no answer; an old leader's records nobody acknowledged are dropped when it rejoins.
 * Skipped, with the reason, without /usr/bin/etcd.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { etcdSupport } from './support/etcd.js';
import { Firewall, probeFirewall } from './support/firewall.js';
import { HaLoopback, type Member, pub, status, tcpAddressOf } from './support/ha-loopback.js';
import { WireClient } from './support/nsq-wire.js';
import { portOf, waitUntil } from './support/processes.js';

const skipReason = etcdSupport();
/** The forced truncation cuts the stream with iptables (root). */
const firewallUnusable = await probeFirewall();
const firewall = new Firewall();

let ha: HaLoopback;

beforeEach(() => {
  ha = new HaLoopback();
});

afterEach(async (ctx) => {
  // Without iptables there is nothing to heal (and spawning it would fail every test).
  if (firewallUnusable === null) await firewall.healAll();
  await ha.cleanup(ctx.task.result?.state === 'fail');
}, 60_000);

async function post(m: Member, path: string): Promise<void> {
  const res = await fetch(`http://${m.http}/${path}`, { method: 'POST' });
  expect(res.status).toBe(200);
}

async function topicWithChannels(m: Member, channels: readonly string[]): Promise<void> {
  await post(m, 'topic/create?topic=t');
  for (const c of channels) await post(m, `channel/create?topic=t&channel=${c}`);
}

/** The member that leads, once every other follows it. */
async function settledLeader(members: readonly Member[]): Promise<Member> {
  return waitUntil(
    'a leader followed by every other member',
    async () => {
      const all = await Promise.all(members.map(status));
      const leader = all.findIndex((s) => s.role === 'leader');
      if (leader < 0 || !all.every((s, i) => i === leader || s.connected === true)) return undefined;
      return members[leader];
    },
    { timeoutMs: 30_000 },
  );
}

describe.skipIf(skipReason !== null)('refusals and unknown outcomes in a replica group', () => {
  it('a leader SIGKILLed right after refusing a stored publish (--min-insync=2) never delivers it, nor does the follower', async () => {
    await ha.start();
    // The flush after a refusal (the one storing its skips) starts 1.5 s late: the kill lands in that window.
    const options = { extra: ['--min-insync=2'], env: { NSQ_TS_TEST_STALL_AFTER_REFUSAL_MS: '1500' } };
    const [a, b] = await ha.formGroup(options);
    await topicWithChannels(a, ['c', 'd']);
    expect(await pub(a, 't', 'one')).toBe(200);
    await ha.kill(b);
    // Stored, then refused once the shrink below --min-insync is committed; killed the moment the answer arrives.
    expect(await pub(a, 't', 'two', 15_000)).toBe(503);
    await ha.kill(a);

    const a2 = await ha.startMember(a, options);
    await waitUntil('a leads again', async () => (await status(a2)).role === 'leader', { timeoutMs: 20_000 });
    const b2 = await ha.startMember(b, options);
    await waitUntil('b in sync again', async () => (await status(a2)).in_sync.includes('b'), { timeoutMs: 20_000 });
    expect(await pub(a2, 't', 'three')).toBe(200);
    expect(await ha.readUntil('t', 'c', 'three')).toEqual(['one', 'three']);
    await ha.kill(a2);
    await waitUntil('b leads', async () => (await status(b2)).role === 'leader', { timeoutMs: 20_000 });
    expect(await ha.readUntil('t', 'd', 'three')).toEqual(['one', 'three']);
  }, 120_000);

  it('the fence shuts while publishes wait for the follower: no answer, the connection closes; later ones are refused unstored', async () => {
    await ha.start();
    // No shrink while the test runs: the fence shuts first.
    const options = { extra: ['--replication-timeout=10s'] };
    const [a, b] = await ha.formGroup(options);
    await topicWithChannels(a, ['c']);
    expect(await pub(a, 't', 'one')).toBe(200);
    const tcp = await WireClient.connect(tcpAddressOf(a) as string);
    b.proc.signal('SIGSTOP');
    const tcpAnswer = tcp.pub('t', 'tcp-waiting').then(
      () => 'OK',
      (err: Error) => err.message,
    );
    const httpAnswer = pub(a, 't', 'http-waiting', 30_000).then(String, (err: Error) => `no status: ${err.message}`);
    await waitUntil('the publishes wait for b', async () => {
      const lag = (await status(a)).followers?.find((f) => f.member_id === 'b')?.lag_batches ?? 0;
      return lag > 0;
    });
    // a can renew its lease no more: its fence shuts while both publishes wait.
    ha.etcd?.signal('SIGSTOP');
    expect(await tcp.closed).toBe('connection closed');
    expect(tcp.fatalError).toBeNull();
    expect(await tcpAnswer).toMatch(/connection closed/);
    expect(await httpAnswer).toMatch(/^no status/);
    // After the fence: refused before it is stored.
    expect(await pub(a, 't', 'refused')).toBe(503);

    ha.etcd?.signal('SIGCONT');
    b.proc.signal('SIGCONT');
    const leader = await settledLeader([a, b]);
    expect(await pub(leader, 't', 'two')).toBe(200);
    const got = await ha.readUntil('t', 'c', 'two');
    // The unanswered ones may be delivered or not; the refused one never is.
    expect(got.filter((body) => !body.endsWith('-waiting'))).toEqual(['one', 'two']);
    console.log(`fence shut: ${leader.id} leads after; delivered ${JSON.stringify(got)}`);
  }, 120_000);

  it.skipIf(firewallUnusable !== null)(
    'an old leader drops the records no one acknowledged when it rejoins the member elected after it',
    async () => {
      await ha.start();
      const options = { extra: ['--replication-timeout=60s'] };
      const [a, b] = await ha.formGroup(options);
      await topicWithChannels(a, ['c']);
      expect(await pub(a, 't', 'one')).toBe(200);
      // The stream a → b is cut (nothing reaches b, b stays in the set): a stores `lost`, waits for b, dies.
      await firewall.isolatePort(portOf(a.replication));
      const lost = pub(a, 't', 'lost', 30_000).catch(() => 0);
      await waitUntil('a waits for b', async () => {
        const lag = (await status(a)).followers?.find((f) => f.member_id === 'b')?.lag_batches ?? 0;
        return lag > 0;
      });
      await ha.kill(a);
      expect(await lost).toBe(0);
      // Healed only once b leads: a's kernel would otherwise still retransmit the batch to b's open stream.
      await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 20_000 });
      await firewall.healAll();
      expect(await pub(b, 't', 'two')).toBe(200);

      const a2 = await ha.startMember(a, options);
      await waitUntil('a in sync', async () => (await status(b)).in_sync.includes('a'), { timeoutMs: 20_000 });
      expect(a2.proc.logs()).toMatch(/taking a full copy from b/);
      await ha.kill(b);
      await waitUntil('a leads', async () => (await status(a2)).role === 'leader', { timeoutMs: 20_000 });
      expect(await ha.readUntil('t', 'c', 'two')).toEqual(['one', 'two']);
    },
    120_000,
  );
});
