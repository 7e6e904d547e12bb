/**
 * A rolling deploy of a replica group of three real nsqds under load (docs/replication.md), every
 * process on a "host" of its own (test/support/ha-lab.ts): producers publish with sync acks and
 * `--min-insync=2` over TCP and HTTP, a consumer reads through lookupd, and each member in turn is
 * handed over from (`POST /ha/handover`, if it leads), stopped with SIGTERM, started again and
 * waited for until it is back in the in-sync set. Afterwards every acknowledged message is
 * delivered and no refused one is; how long publishing was interrupted by each handover and each
 * restart is printed (not asserted: wall-clock figures on a shared machine).
 *
 * Skipped, with the reason, without root, iproute2, iptables or etcd.
 */
import { describe, expect, it } from 'vitest';
import { etcdSupport } from './support/etcd.js';
import { haLabPerTest, type Interruption, interruptions } from './support/ha-lab.js';
import { netnsSupport } from './support/netns.js';
import { waitUntil } from './support/processes.js';

const skipReason = (await netnsSupport()) ?? etcdSupport();
if (skipReason !== null) console.warn(`[ha-rolling-netns] SKIPPED: ${skipReason}`);

const MEMBERS = ['a', 'b', 'c'] as const;

describe.skipIf(skipReason !== null)(
  `rolling deploy of a replica group across network namespaces${skipReason === null ? '' : ` — skipped: ${skipReason}`}`,
  () => {
    const createLab = haLabPerTest();

    it('handover, SIGTERM and restart of every member in turn under load: nothing acknowledged lost, nothing refused delivered', async () => {
      const lab = await createLab(MEMBERS, ['--min-insync=2']);
      await lab.form();
      await lab.produce('r');
      await waitUntil('acknowledged before the deploy', () => lab.client.progress.ok > 100, { timeoutMs: 30_000 });

      /** What was done when: each interrupts publishing for a while, printed afterwards. */
      const steps: { what: string; at: number; done: number }[] = [];
      /** Publishing has gone on for a second since `t` (the next step's interruption is its own). */
      const flowing = (t: number) =>
        waitUntil('acknowledgements flowing again', () => lab.client.progress.lastOkAt > t + 1_000, {
          timeoutMs: 30_000,
        });
      for (const [i, member] of MEMBERS.entries()) {
        const leader = await waitUntil('a leader', async () => (await lab.leader()) ?? undefined);
        if (leader.name === member) {
          const to = MEMBERS[(i + 1) % MEMBERS.length] as string;
          const at = Date.now();
          expect(await lab.handover(member, to)).toBe(200);
          await waitUntil(`${to} leads`, async () => (await lab.ha(to))?.role === 'leader', { timeoutMs: 20_000 });
          steps.push({ what: `handover ${member}→${to}`, at, done: Date.now() });
          await flowing(Date.now());
        }
        const at = Date.now();
        await lab.kill(member, 'SIGTERM');
        lab.start(member);
        await lab.anySettled(60_000);
        steps.push({ what: `SIGTERM + start of ${member}`, at, done: Date.now() });
        await flowing(Date.now());
      }
      const history = await lab.stopProducing();
      const verdict = await lab.verdict(history);

      const worst = interruptions(
        history,
        steps.map((s) => s.at),
      );
      for (const [i, s] of steps.entries()) {
        const w = worst[i] as Interruption;
        console.log(
          `rolling: ${s.what}: done after ${s.done - s.at} ms (the target leads / the member is back in sync); publishes refused or unanswered for at most ${w.outageMs} ms; no acknowledgement over HTTP for at most ${w.httpGapMs} ms, over TCP ${w.tcpGapMs} ms`,
        );
      }
      console.log(
        `rolling: ${JSON.stringify(history.counts)}; ${verdict.lost.length} lost, ${verdict.refusedDelivered.length} refused delivered, ${verdict.indeterminateDelivered} indeterminate delivered, ${verdict.duplicates} duplicates`,
      );
      expect(steps.filter((s) => s.what.startsWith('handover')).length).toBeGreaterThanOrEqual(MEMBERS.length - 1);
      expect(verdict).toMatchObject({ lost: [], refusedDelivered: [] });
    }, 240_000);
  },
);
