/**
 * The operator surfaces of a replica group (README "Replication"), against a real etcd and two
 * in-process nsqds: `nsq ha status|handover` (the real bin/nsq.js), /metrics' nsq_ha_* series and
 * event counters, nsqadmin's nodes API and (with /usr/bin/chromium) its node page in a real browser.
 * Skipped, with the reason, without /usr/bin/etcd.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdmin, type NodeSummary } from '@nsq-ts/admin';
import { startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, nsq } from '../packages/cli/src/testing/run.js';
import { hasChromium, launchChromium } from './support/chromium.js';
import { type EtcdServer, etcdSupport, startEtcd } from './support/etcd.js';
import { waitUntil } from './support/processes.js';

const skipReason = etcdSupport();

interface Status {
  role: string;
  epoch: number;
  leader: string | null;
  in_sync: string[];
}

async function status(n: TestNsqd): Promise<Status> {
  const res = await fetch(`http://${n.httpAddress}/ha`, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as Status;
}

async function metrics(n: TestNsqd): Promise<string> {
  const res = await fetch(`http://${n.httpAddress}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return res.text();
}

let etcd: EtcdServer | null = null;
let lone: TestNsqd;
const group: TestNsqd[] = [];

async function member(id: string): Promise<TestNsqd> {
  const n = await startNsqd({
    haGroup: 'ops',
    haMemberId: id,
    etcdEndpoints: [(etcd as EtcdServer).clientUrl],
    replicationAddress: `127.0.0.1:${await closedPort()}`,
    haLeaseTtlMs: 2_000,
    replicationTimeoutMs: 2_000,
    syncEvery: 1,
  });
  group.push(n);
  return n;
}

beforeAll(async () => {
  lone = await startNsqd();
  if (skipReason !== null) return;
  etcd = await startEtcd();
  const a = await member('a');
  await waitUntil('a leads', async () => (await status(a)).role === 'leader', { timeoutMs: 15_000 });
  await member('b');
  await waitUntil('b in sync', async () => (await status(a)).in_sync.includes('b'), { timeoutMs: 15_000 });
}, 60_000);

afterAll(async () => {
  for (const n of group.splice(0).reverse()) await n.close();
  await lone?.close();
  await etcd?.stop();
}, 60_000);

describe('nsq ha against an nsqd outside a group', () => {
  it('says it is not a group member and exits 1', async () => {
    const run = await nsq(['ha', 'status', `--nsqd-http-address=${lone.httpAddress}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('not a replica group member (no --ha-group)');
  });

  it('refuses an unknown action and a missing address as bad command lines', async () => {
    expect((await nsq(['ha', 'promote', `--nsqd-http-address=${lone.httpAddress}`])).code).toBe(2);
    expect((await nsq(['ha', 'status'])).code).toBe(2);
  });

  it('has no nsq_ha_* series in /metrics', async () => {
    expect(await metrics(lone)).not.toContain('nsq_ha_');
  });
});

describe.skipIf(skipReason !== null)('a replica group of two nsqds', () => {
  it('nsq ha status prints each member: role, epoch, in-sync set, lag per follower', async () => {
    const [a, b] = group as [TestNsqd, TestNsqd];
    const run = await nsq([
      'ha',
      'status',
      `--nsqd-http-address=${a.httpAddress}`,
      `--nsqd-http-address=${b.httpAddress}`,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(`^${a.httpAddress}: member a of group ops, leader, epoch \\d+, leader a$`, 'm'),
    );
    expect(run.stdout).toMatch(
      new RegExp(`^${b.httpAddress}: member b of group ops, follower, epoch \\d+, leader a$`, 'm'),
    );
    expect(run.stdout).toMatch(/^ {2}members: a,b {2}in sync: a,b /m);
    expect(run.stdout).toMatch(/^ {2}follower b: connected, in sync, lag \d+ batches, \d+ ms$/m);
    expect(run.stdout).toMatch(
      /^ {2}events: elections won 1; leadership lost 0; in-sync shrinks 0, expands 1; full copies served 0, received 0; publishes refused 0, unanswered 0; streams refused 0 sent, 0 received$/m,
    );
    expect(run.stdout).toMatch(/^ {2}events: elections won 0; leadership lost 0; in-sync shrinks 0, expands 0;/m);
    expect(run.stdout).toMatch(/^ {2}stream: connected, lag \d+ batches/m);

    const json = await nsq(['ha', 'status', '--json', `--nsqd-http-address=${a.httpAddress}`]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as Status & { address: string; followers: { member_id: string }[] };
    expect(parsed).toMatchObject({ address: a.httpAddress, role: 'leader', leader: 'a' });
    expect(parsed.followers.map((f) => f.member_id)).toEqual(['b']);
  });

  it('/metrics has the nsq_ha_* series on both members', async () => {
    const [a, b] = group as [TestNsqd, TestNsqd];
    const leader = await metrics(a);
    expect(leader).toMatch(/^nsq_ha_leader\{member="a"\} 1$/m);
    expect(leader).toMatch(/^nsq_ha_insync_members 2$/m);
    expect(leader).toMatch(/^nsq_ha_epoch [1-9]\d*$/m);
    expect(leader).toMatch(/^nsq_ha_follower_lag_batches\{member="b"\} \d+$/m);
    expect(leader).toMatch(/^nsq_ha_follower_lag_ms\{member="b"\} \d+$/m);
    expect(leader).toMatch(/^# TYPE nsq_ha_elections_won_total counter$/m);
    expect(leader).toMatch(/^nsq_ha_elections_won_total 1$/m);
    expect(leader).toMatch(/^nsq_ha_isr_expands_total 1$/m);
    expect(leader).toMatch(/^nsq_ha_leadership_lost_total\{reason="lease-lost"\} 0$/m);
    expect(leader).toMatch(/^nsq_ha_refused_publishes_total 0$/m);
    const follower = await metrics(b);
    expect(follower).toMatch(/^nsq_ha_leader\{member="b"\} 0$/m);
    expect(follower).toMatch(/^nsq_ha_follower_connected\{member="b"\} 1$/m);
  });

  it("nsqadmin's nodes show each member's role, epoch and lag", async () => {
    const [a, b] = group as [TestNsqd, TestNsqd];
    const admin = createAdmin({
      httpAddress: '127.0.0.1:0',
      nsqdHttpAddresses: [a.httpAddress, b.httpAddress],
      logLevel: 'fatal',
    });
    await admin.start();
    try {
      const res = await fetch(`${admin.url}api/nodes`);
      const { nodes } = (await res.json()) as { nodes: NodeSummary[] };
      const byId = new Map(nodes.map((n) => [n.id, n.ha]));
      expect(byId.get(a.httpAddress)).toMatchObject({
        group: 'ops',
        memberId: 'a',
        role: 'leader',
        leader: 'a',
        inSync: ['a', 'b'],
        lag: [{ member: 'b', batches: expect.any(Number), ms: expect.any(Number) }],
        events: { electionsWon: 1, leadershipLost: 0, isrExpands: 1, isrShrinks: 0, refusedPublishes: 0 },
      });
      expect(byId.get(b.httpAddress)).toMatchObject({
        memberId: 'b',
        role: 'follower',
        lag: [{ member: 'b', ms: null }],
      });
      expect(byId.get(a.httpAddress)?.epoch).toBeGreaterThan(0);
      if (hasChromium) {
        // The node page in a real browser: the role line and the event counters.
        const profile = await mkdtemp(join(tmpdir(), 'nsqadmin-ha-chromium-'));
        const context = await launchChromium(profile);
        try {
          const page = context.pages()[0] ?? (await context.newPage());
          await page.goto(`${admin.url}#/nodes/${encodeURIComponent(a.httpAddress)}`);
          await expect.poll(() => page.getByTestId('node-ha').textContent()).toMatch(/^leader ops\/a epoch \d+/);
          expect(await page.getByTestId('node-ha-events').textContent()).toBe(
            'won 1 · lost 0 · in-sync −0 +1 · refused 0',
          );
        } finally {
          await context.close();
          await rm(profile, { recursive: true, force: true });
        }
      }
    } finally {
      await admin.close();
    }
    // Outside a group there is no ha block.
    const loneAdmin = createAdmin({
      httpAddress: '127.0.0.1:0',
      nsqdHttpAddresses: [lone.httpAddress],
      logLevel: 'fatal',
    });
    await loneAdmin.start();
    try {
      const { nodes } = (await (await fetch(`${loneAdmin.url}api/nodes`)).json()) as { nodes: NodeSummary[] };
      expect(nodes.map((n) => n.ha)).toEqual([null]);
    } finally {
      await loneAdmin.close();
    }
  });

  it('nsq ha handover --to moves the leadership to that member', async () => {
    const [a, b] = group as [TestNsqd, TestNsqd];
    const before = (await status(a)).epoch;
    // Given the follower too: the command finds the leader among the addresses.
    const run = await nsq([
      'ha',
      'handover',
      '--to=b',
      `--nsqd-http-address=${b.httpAddress}`,
      `--nsqd-http-address=${a.httpAddress}`,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${a.httpAddress}: a handed over leadership of epoch ${before}`);
    await waitUntil(
      'b leads',
      async () => {
        const s = await status(b);
        return s.role === 'leader' && s.epoch > before;
      },
      { timeoutMs: 20_000 },
    );
    const counters = async (n: TestNsqd) =>
      ((await (await fetch(`http://${n.httpAddress}/ha`)).json()) as { counters: Record<string, unknown> }).counters;
    expect(await counters(a)).toMatchObject({ elections_won: 1, leadership_lost: { resigned: 1, closed: 0 } });
    expect(await counters(b)).toMatchObject({ elections_won: 1 });
    const again = await nsq(['ha', 'handover', '--to=a', `--nsqd-http-address=${a.httpAddress}`]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('none of the addresses given is the leader');
  });
});
