/**
 * A checker in the style of Jepsen for a replica group of three real nsqds (docs/replication.md),
 * every process on a "host" of its own (test/support/ha-lab.ts). With `--min-insync=2` and sync
 * acks, producers publish unique bodies, each sent once, over TCP and HTTP, and a consumer reads
 * through lookupd, while a random schedule of faults runs: SIGKILL of a member (restarted after a
 * while), a member cut off from the other members, from etcd, or from every host, sometimes two
 * faults at once; each held a while, then healed. After the last heal and once the group settled,
 * the history is judged: every acknowledged message delivered at least once, no refused one
 * delivered (indeterminate ones may go either way).
 *
 * The schedule comes from a seed, printed; `NSQ_TS_CHAOS_SEED=<seed>` replays it (the faults, not
 * the timing of everything else), `NSQ_TS_CHAOS_SECONDS` sets how long faults are injected
 * (default 75). Skipped, with the reason, without root, iproute2, iptables or etcd.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { etcdSupport } from './support/etcd.js';
import { type HaLab, haLabPerTest } from './support/ha-lab.js';
import { netnsSupport } from './support/netns.js';
import { waitUntil } from './support/processes.js';

const skipReason = (await netnsSupport()) ?? etcdSupport();
if (skipReason !== null) console.warn(`[ha-chaos-netns] SKIPPED: ${skipReason}`);

const MEMBERS = ['a', 'b', 'c'] as const;
const SEED = process.env.NSQ_TS_CHAOS_SEED !== undefined ? Number(process.env.NSQ_TS_CHAOS_SEED) : Date.now() % 2 ** 31;
const SECONDS = Number(process.env.NSQ_TS_CHAOS_SECONDS ?? 75);

type Fault = 'kill' | 'peers' | 'etcd' | 'isolate';
const FAULTS: readonly Fault[] = ['kill', 'peers', 'etcd', 'isolate'];

/**
 * One step of the schedule: faults on distinct members, held `holdMs`, then healed; `gapMs` before
 * the next. A target is a member, or 'leader' (whichever leads when the step starts: most faults
 * worth finding are the leader's).
 */
interface Step {
  faults: { fault: Fault; target: string }[];
  holdMs: number;
  gapMs: number;
}

/** Enough steps for any run (one lasts 0.8–7 s), uniformly drawn (no bias to edge values); one seed, one schedule. */
function schedule(seed: number): Step[] {
  const target = fc.constantFrom('leader', 'leader', ...MEMBERS);
  const step = fc.record({
    faults: fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.record({ fault: fc.constantFrom(...FAULTS), target })) },
      {
        weight: 1,
        arbitrary: fc.uniqueArray(fc.record({ fault: fc.constantFrom(...FAULTS), target }), {
          minLength: 2,
          maxLength: 2,
          selector: (f) => f.target,
        }),
      },
    ),
    holdMs: fc.integer({ min: 500, max: 4_000 }),
    gapMs: fc.integer({ min: 300, max: 3_000 }),
  });
  return fc.sample(fc.noBias(step), { numRuns: Math.ceil(SECONDS / 0.8) + 1, seed });
}

/** The members a step's targets name now; a fault of the leader is dropped when there is none or another fault names it. */
async function resolveTargets(lab: HaLab, step: Step): Promise<{ fault: Fault; member: string; label: string }[]> {
  const leader = step.faults.some((f) => f.target === 'leader') ? ((await lab.leader())?.name ?? null) : null;
  const named = step.faults.filter((f) => f.target !== 'leader').map((f) => f.target);
  const out: { fault: Fault; member: string; label: string }[] = [];
  for (const f of step.faults) {
    if (f.target !== 'leader') out.push({ fault: f.fault, member: f.target, label: `${f.fault} ${f.target}` });
    else if (leader !== null && !named.includes(leader)) {
      out.push({ fault: f.fault, member: leader, label: `${f.fault} ${leader} (leader)` });
    }
  }
  return out;
}

async function inject(lab: HaLab, fault: Fault, member: string): Promise<void> {
  if (fault === 'kill') await lab.kill(member);
  else if (fault === 'peers') {
    for (const other of MEMBERS) if (other !== member) await lab.lab.partition(member, other);
  } else if (fault === 'etcd') await lab.lab.partition(member, 'etcd');
  else await lab.lab.isolate(member);
}

/** Heals every partition and starts every member that is down. */
async function recover(lab: HaLab): Promise<void> {
  await lab.lab.heal();
  for (const m of MEMBERS) if (!lab.running(m)) lab.start(m);
}

describe.skipIf(skipReason !== null)(
  `random kills and partitions of a replica group (Jepsen-style)${skipReason === null ? '' : ` — skipped: ${skipReason}`}`,
  () => {
    const createLab = haLabPerTest();

    it(`every acknowledged message delivered, no refused one delivered (seed ${SEED})`, async () => {
      console.log(`chaos: seed ${SEED} (NSQ_TS_CHAOS_SEED=${SEED} replays it), ${SECONDS} s of faults`);
      const lab = await createLab(MEMBERS, ['--min-insync=2']);
      await lab.form();
      await lab.produce('k');
      await waitUntil('acknowledged before the faults', () => lab.client.progress.ok > 100, { timeoutMs: 30_000 });

      const steps = schedule(SEED);
      const started = Date.now();
      const log: string[] = [];
      const note = (what: string) => {
        const line = `+${((Date.now() - started) / 1_000).toFixed(1)}s ${what}`;
        log.push(line);
      };
      try {
        for (const step of steps) {
          if (Date.now() - started >= SECONDS * 1_000) break;
          const faults = await resolveTargets(lab, step);
          for (const { fault, member } of faults) await inject(lab, fault, member);
          const p = lab.client.progress;
          const what = faults.map((f) => f.label);
          note(
            `${what.join(' + ') || 'nothing (no leader)'} for ${step.holdMs} ms (so far ok ${p.ok}, refused ${p.refused}, indeterminate ${p.indeterminate})`,
          );
          await new Promise((r) => setTimeout(r, step.holdMs));
          await recover(lab);
          note(`healed; ${step.gapMs} ms until the next`);
          await new Promise((r) => setTimeout(r, step.gapMs));
        }
        await recover(lab);
        const leader = await lab.anySettled(90_000);
        note(`settled: ${leader} leads epoch ${(await lab.ha(leader))?.epoch} with every member in sync`);
        await waitUntil('acknowledged after the faults', () => lab.client.progress.lastOkAt > Date.now() - 200, {
          timeoutMs: 30_000,
        });
      } finally {
        console.log(`chaos: seed ${SEED}; schedule:\n  ${log.join('\n  ')}`);
      }
      const history = await lab.stopProducing();
      const verdict = await lab.verdict(history);
      console.log(
        `chaos: seed ${SEED}: ${JSON.stringify(history.counts)}; ${verdict.lost.length} lost, ${verdict.refusedDelivered.length} refused delivered, ${verdict.indeterminateDelivered} indeterminate delivered, ${verdict.duplicates} duplicates`,
      );
      if (verdict.lost.length + verdict.refusedDelivered.length > 0) {
        console.log(
          `chaos: seed ${SEED}: lost ${verdict.lost.slice(0, 20).join(' ')}; refused delivered ${verdict.refusedDelivered.slice(0, 20).join(' ')}`,
        );
      }
      expect(history.counts.ok).toBeGreaterThan(100);
      expect(verdict).toMatchObject({ lost: [], refusedDelivered: [] });
    }, 300_000);
  },
);
