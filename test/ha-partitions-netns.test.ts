/**
 * Partitions inside a replica group of two real nsqds (docs/replication.md), every process on a
 * "host" of its own (test/support/ha-lab.ts: etcd, lookupd, members a and b, a client, a control
 * host, each in a network namespace; cuts are iptables DROP rules there):
 *
 * - leader ↔ follower, both still reaching etcd: with `--min-insync=2` publishes are refused and
 *   none of the refused ones is ever delivered, by the leader once healed nor by the follower after
 *   a failover; with `--min-insync=1` the follower leaves the in-sync set, the leader goes on
 *   acknowledging, and once the leader is killed the follower is not elected (the group stays
 *   leaderless and refuses); healed and the leader back, the follower catches up and rejoins.
 * - client ↔ leader: the cut-off client gets no answer from the leader (indeterminate) and 503
 *   from the follower, the leader keeps its term (no failover: it still reaches etcd and its
 *   follower); healed, the client's producer and lookupd consumer resume with nothing
 *   acknowledged lost.
 *
 * Skipped, with the reason, without root, iproute2, iptables or etcd.
 */
import { describe, expect, it } from 'vitest';
import { etcdSupport } from './support/etcd.js';
import { type HaLab, haLabPerTest, judge } from './support/ha-lab.js';
import { netnsSupport } from './support/netns.js';
import { waitUntil } from './support/processes.js';

const skipReason = (await netnsSupport()) ?? etcdSupport();
if (skipReason !== null) console.warn(`[ha-partitions-netns] SKIPPED: ${skipReason}`);

describe.skipIf(skipReason !== null)('partitions in a replica group across network namespaces', () => {
  const createLab = haLabPerTest();

  /** a leads, b is in sync; topic t with channel c exists; the client consumes c through lookupd. */
  async function formGroup(args: string[]): Promise<HaLab> {
    const lab = await createLab(['a', 'b'], args);
    await lab.form();
    return lab;
  }

  it('leader ↔ follower with --min-insync=2: publishes are refused, and no refused one is ever delivered', async () => {
    const lab = await formGroup(['--min-insync=2']);
    await lab.produce('x');
    await waitUntil('acknowledged before the cut', () => lab.client.progress.ok > 100, { timeoutMs: 30_000 });
    await lab.lab.partition('a', 'b');
    await waitUntil('b out of the in-sync set', async () => (await lab.ha('a'))?.in_sync.join() === 'a', {
      timeoutMs: 20_000,
    });
    const refusedAtShrink = lab.client.progress.refused;
    await waitUntil('publishes refused', () => lab.client.progress.refused > refusedAtShrink + 20, {
      timeoutMs: 20_000,
    });
    const okDuringCut = lab.client.progress.ok;
    await lab.lab.heal();
    await lab.settled('a');
    await waitUntil('acknowledged again', () => lab.client.progress.ok > okDuringCut + 50, { timeoutMs: 30_000 });
    const first = await lab.stopProducing();
    // Everything a had to deliver: every acknowledged one, no refused one.
    const onA = judge(first, await lab.drained('t', 'c', first.bodies.ok));
    console.log(
      `leader↔follower, --min-insync=2: ${JSON.stringify(first.counts)}; on a: ${onA.lost.length} lost, ${onA.refusedDelivered.length} refused delivered, ${onA.duplicates} duplicates`,
    );
    expect(first.counts.refused).toBeGreaterThan(20);
    expect(onA).toMatchObject({ lost: [], refusedDelivered: [] });

    // The follower, caught up, takes over: it delivers nothing refused either (the skips reached it).
    await lab.kill('a');
    await waitUntil('b leads', async () => (await lab.ha('b'))?.role === 'leader', { timeoutMs: 20_000 });
    // Alone it refuses before storing (--min-insync=2).
    const alone = await lab.ctl.request('http', {
      url: `http://${lab.http('b')}/pub?topic=t`,
      method: 'POST',
      body: 'alone',
    });
    expect(alone.status).toBe(503);
    lab.start('a');
    await lab.settled('b');
    expect(
      (await lab.ctl.request('http', { url: `http://${lab.http('b')}/pub?topic=t`, method: 'POST', body: 'last' }))
        .status,
    ).toBe(200);
    const onB = await lab.drained('t', 'c', ['last']);
    expect(judge(first, onB)).toMatchObject({ lost: [], refusedDelivered: [] });
    expect(onB.alone).toBeUndefined();
  }, 180_000);

  it('leader ↔ follower with --min-insync=1: the follower leaves the set and cannot be elected; healed, it rejoins', async () => {
    const lab = await formGroup([]);
    await lab.produce('y');
    await waitUntil('acknowledged before the cut', () => lab.client.progress.ok > 100, { timeoutMs: 30_000 });
    await lab.lab.partition('a', 'b');
    await waitUntil('b out of the in-sync set', async () => (await lab.ha('a'))?.in_sync.join() === 'a', {
      timeoutMs: 20_000,
    });
    // The leader goes on alone.
    const okAtShrink = lab.client.progress.ok;
    await waitUntil('acknowledged without b', () => lab.client.progress.ok > okAtShrink + 50, { timeoutMs: 30_000 });
    const history = await lab.stopProducing();
    await lab.kill('a');
    await waitUntil('the dead leader key expired', async () => (await lab.ha('b'))?.leader === null, {
      timeoutMs: 20_000,
    });
    // An observation window of two lease TTLs (not a synchronisation): b, not in the set, never campaigns.
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      const s = await lab.ha('b');
      expect([s?.role, s?.epoch]).toEqual(['follower', 1]);
      const pub = await lab.ctl.request('http', {
        url: `http://${lab.http('b')}/pub?topic=t`,
        method: 'POST',
        body: 'z',
      });
      expect(pub.status).toBe(503);
      await new Promise((r) => setTimeout(r, 250));
    }
    await lab.lab.heal();
    lab.start('a');
    const s = await lab.settled('a');
    expect(s.epoch).toBe(2);
    // b caught up: it holds what a holds, and everything acknowledged is delivered.
    await waitUntil('b at a position', async () => {
      const [sa, sb] = [await lab.ha('a'), await lab.ha('b')];
      return sa !== null && JSON.stringify(sa.position) === JSON.stringify(sb?.position);
    });
    const verdict = judge(history, await lab.drained('t', 'c', history.bodies.ok));
    console.log(
      `leader↔follower, --min-insync=1: ${JSON.stringify(history.counts)}; ${verdict.lost.length} lost, ${verdict.duplicates} duplicates`,
    );
    expect(verdict).toMatchObject({ lost: [], refusedDelivered: [] });
  }, 180_000);

  it('client ↔ leader: no failover, the client gets no answer meanwhile, and resumes with nothing acknowledged lost', async () => {
    const lab = await formGroup([]);
    await lab.produce('w');
    await waitUntil('acknowledged before the cut', () => lab.client.progress.ok > 100, { timeoutMs: 30_000 });
    await lab.lab.partition('client', 'a');
    // Observation windows (not synchronisation): after a second cut off, over three lease TTLs, a
    // keeps its term and b stays its follower, and nothing the client sends is acknowledged.
    await new Promise((r) => setTimeout(r, 1_000));
    const before = { ...lab.client.progress };
    const until = Date.now() + 6_000;
    while (Date.now() < until) {
      const s = await lab.ha('a');
      expect([s?.role, s?.epoch, s?.in_sync]).toEqual(['leader', 1, ['a', 'b']]);
      await new Promise((r) => setTimeout(r, 500));
    }
    const during = { ...lab.client.progress };
    await lab.lab.heal();
    await waitUntil('acknowledged again', () => lab.client.progress.ok > during.ok + 50, { timeoutMs: 30_000 });
    await waitUntil('delivered again', () => lab.client.progress.received > during.received + 50, {
      timeoutMs: 30_000,
    });
    const history = await lab.stopProducing();
    const verdict = judge(history, await lab.drained('t', 'c', history.bodies.ok));
    console.log(
      `client↔leader: during the cut ${during.ok - before.ok} acknowledged, ${during.refused - before.refused} refused (the follower), ${during.indeterminate - before.indeterminate} unanswered; in all ${JSON.stringify(history.counts)}, ${verdict.lost.length} lost, ${verdict.duplicates} duplicates`,
    );
    // Nothing reaches a from the client: what it sent meanwhile is unanswered (or refused by b).
    expect(during.ok).toBe(before.ok);
    expect(during.indeterminate).toBeGreaterThan(before.indeterminate);
    expect(verdict).toMatchObject({ lost: [], refusedDelivered: [] });
  }, 180_000);
});
