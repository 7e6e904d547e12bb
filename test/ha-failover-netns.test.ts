/**
 * Failover of a replica group across separate "hosts" (docs/replication.md): etcd, nsqlookupd,
 * the two nsqd members and the client each run in a network namespace of their own
 * (test/support/netns.ts). The client publishes with sync acks over HTTP to whichever member
 * answers and consumes through lookupd; the leader is SIGKILLed mid-load; every acknowledged
 * message must be delivered afterwards, and the time to recover is printed. Skipped, with the
 * reason, without root, iproute2, iptables or etcd.
 */
import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { type EtcdServer, etcdSupport, startEtcdInLab } from './support/etcd.js';
import { NetnsLab, netnsSupport } from './support/netns.js';
import { DaemonProcess, waitUntil } from './support/processes.js';

const NSQD_BIN = new URL('../packages/nsqd/bin/nsqd.js', import.meta.url).pathname;
const LOOKUPD_BIN = new URL('../packages/lookupd/bin/nsqlookupd.js', import.meta.url).pathname;
const CLIENT_URL = new URL('../packages/client/dist/index.js', import.meta.url).href;

const skipReason = (await netnsSupport()) ?? etcdSupport();
if (skipReason !== null) console.warn(`[ha-failover-netns] SKIPPED: ${skipReason}`);

/**
 * The client, run inside its namespace: producers publish over HTTP to the first member that
 * answers 200, a consumer reads through lookupd; "stop" on stdin ends the publishing, then it
 * reports every acknowledged body not delivered within the deadline.
 */
const CLIENT_SCRIPT = `
const { Consumer } = await import(process.env.CLIENT_URL);
const { createInterface } = await import('node:readline');
const members = JSON.parse(process.env.MEMBERS);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const received = new Map();
const acked = new Set();
const c = new Consumer({ topic: 'events', channel: 'c', lookupdHttpAddresses: [process.env.LOOKUPD], lookupdPollIntervalMs: 200, maxInFlight: 50, logger: null });
c.on('message', async (m) => { const b = m.body.toString(); received.set(b, (received.get(b) ?? 0) + 1); });
async function pub(http, body) {
  try {
    const r = await fetch('http://' + http + '/pub?topic=events', { method: 'POST', body, signal: AbortSignal.timeout(3000) });
    await r.text();
    return r.status;
  } catch { return 0; }
}
while ((await pub(members[0], 'first')) !== 200) await new Promise((r) => setTimeout(r, 100));
acked.add('first');
await c.connect();
let stop = false;
createInterface({ input: process.stdin }).on('line', (l) => { if (l === 'stop') stop = true; });
const timer = setInterval(() => out({ acked: acked.size, received: received.size }), 200);
await Promise.all([0, 1, 2, 3].map(async (p) => {
  for (let i = 0; !stop; i++) {
    const body = 'p' + p + '-' + i;
    let ok = false;
    for (const m of members) if ((await pub(m, body)) === 200) { acked.add(body); ok = true; break; }
    if (!ok) await new Promise((r) => setTimeout(r, 50));
  }
}));
const deadline = Date.now() + 30000;
while (Date.now() < deadline && [...acked].some((b) => !received.has(b))) await new Promise((r) => setTimeout(r, 100));
clearInterval(timer);
const missing = [...acked].filter((b) => !received.has(b));
out({ done: true, acked: acked.size, missing: missing.length, examples: missing.slice(0, 10) });
await c.close();
process.exit(0);
`;

/** Publishes to TARGET's HTTP one message at a time, printing the wall-clock ms of every 200. */
const PUBLISH_SCRIPT = `
for (let i = 0; ; i++) {
  try {
    const r = await fetch('http://' + process.env.TARGET + '/pub?topic=t', { method: 'POST', body: 'm' + i, signal: AbortSignal.timeout(1000) });
    await r.text();
    if (r.status === 200) console.log(Date.now());
  } catch {}
  await new Promise((r) => setTimeout(r, 10));
}
`;

/** Wall-clock ms of the first log line matching `re` (nsqd logs local time, as Go's log does). */
function logTime(logs: string, re: RegExp): number {
  const line = logs.split('\n').find((x) => re.test(x)) ?? '';
  const m = /(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(line);
  if (m === null) throw new Error(`no timestamped line matches ${re}`);
  const [y, mo, d, h, mi, sec, ms] = m.slice(1).map(Number) as number[];
  return new Date(y as number, (mo as number) - 1, d, h, mi, sec, ms).getTime();
}

interface ClientLine {
  acked?: number;
  received?: number;
  done?: boolean;
  missing?: number;
  examples?: string[];
}

describe.skipIf(skipReason !== null)('replica group failover across network namespaces', () => {
  let lab: NetnsLab | null = null;
  let etcd: EtcdServer | null = null;
  const procs: DaemonProcess[] = [];

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(procs.map((p) => p.logs()).join('\n'));
    for (const p of procs.splice(0)) {
      p.signal('SIGKILL');
      await p.exited;
    }
    await etcd?.stop();
    etcd = null;
    const id = lab?.id;
    await lab?.cleanup();
    lab = null;
    for (const name of ['a', 'b']) await rm(`/tmp/nsq-ts-netns-${id}-${name}`, { recursive: true, force: true });
  }, 60_000);

  /** etcd, lookupd and the members a and b, each in its own namespace: a leads, b is in sync. */
  async function formGroup() {
    const l = await NetnsLab.create(['etcd', 'lookupd', 'a', 'b', 'client']);
    lab = l;
    const e = await startEtcdInLab(l, 'etcd');
    etcd = e;
    const start = (name: string, bin: string, args: string[]) => {
      const p = new DaemonProcess(
        name,
        name === 'lookupd' ? 'nsqlookupd' : 'nsqd',
        args,
        l.spawn(name, process.execPath, [bin, ...args], { ...process.env, NODE_OPTIONS: '' }),
      );
      procs.push(p);
      return p;
    };
    const lookupd = start('lookupd', LOOKUPD_BIN, [
      `--tcp-address=${l.address('lookupd')}:4160`,
      `--http-address=${l.address('lookupd')}:4161`,
      `--broadcast-address=${l.address('lookupd')}`,
    ]);
    await waitUntil('lookupd listening', () => /listening on TCP/.test(lookupd.logs()), { timeoutMs: 20_000 });
    const member = (name: string) =>
      start(name, NSQD_BIN, [
        `--tcp-address=${l.address(name)}:4150`,
        `--http-address=${l.address(name)}:4151`,
        `--broadcast-address=${l.address(name)}`,
        `--data-path=/tmp/nsq-ts-netns-${l.id}-${name}`,
        `--lookupd-tcp-address=${l.address('lookupd')}:4160`,
        '--ha-group=g',
        `--ha-member-id=${name}`,
        `--etcd-endpoints=${e.clientUrl}`,
        `--replication-address=${l.address(name)}:4153`,
        '--ha-lease-ttl=2s',
        '--replication-timeout=2s',
        '--sync-every=1',
      ]);
    const a = member('a');
    await waitUntil('a leads', () => /REPLICATION: leading epoch 1/.test(a.logs()), { timeoutMs: 20_000 });
    const b = member('b');
    await waitUntil('b in sync', () => /b joined the in-sync set/.test(a.logs()), { timeoutMs: 20_000 });

    return { l, a, b, lookupd, member };
  }

  it('SIGKILL of the leader while a client publishes with sync acks: every acknowledged message is delivered', async () => {
    const { l, a, b, member } = await formGroup();

    const client = l.spawn('client', process.execPath, ['--input-type=module', '-e', CLIENT_SCRIPT], {
      ...process.env,
      NODE_OPTIONS: '',
      CLIENT_URL,
      LOOKUPD: `${l.address('lookupd')}:4161`,
      MEMBERS: JSON.stringify([`${l.address('a')}:4151`, `${l.address('b')}:4151`]),
    });
    const lines: ClientLine[] = [];
    createInterface({ input: client.stdout as NodeJS.ReadableStream }).on('line', (t) => {
      try {
        lines.push(JSON.parse(t) as ClientLine);
      } catch {
        // Not a report line.
      }
    });
    const acked = () => lines.at(-1)?.acked ?? 0;
    await waitUntil('some acknowledged', () => acked() > 200, { timeoutMs: 30_000 });
    const killedAt = performance.now();
    a.signal('SIGKILL');
    await a.exited;
    const before = acked();
    await waitUntil('b leads', () => /REPLICATION: leading epoch 2/.test(b.logs()), { timeoutMs: 20_000 });
    const ledAt = performance.now();
    await waitUntil('publishes acknowledged by b', () => acked() > before + 50, { timeoutMs: 20_000 });
    const ackedAgainAt = performance.now();
    client.stdin?.write('stop\n');
    const done = await waitUntil('the client report', () => lines.find((x) => x.done === true), { timeoutMs: 60_000 });
    console.log(
      `netns failover: b led ${Math.round(ledAt - killedAt)} ms and acknowledged again within ${Math.round(ackedAgainAt - killedAt)} ms of the SIGKILL; ${done.acked} acknowledged, ${done.missing} not delivered`,
    );
    expect(done).toMatchObject({ missing: 0 });
    expect(done.acked).toBeGreaterThan(250);

    // The old leader comes back as a follower of b: in sync again (a full copy if it held a batch nobody acknowledged).
    const again = member('a');
    await waitUntil('a back in sync', () => /a joined the in-sync set/.test(b.logs()), { timeoutMs: 30_000 });
    console.log(
      `netns rejoin: a ${/taking a full copy/.test(again.logs()) ? 'took a full copy' : 'resumed the stream'}`,
    );
  }, 150_000);

  it('the leader cut off from etcd stops acknowledging before the follower is elected, then rejoins as its follower', async () => {
    const { l, a, b } = await formGroup();
    const client = l.spawn('client', process.execPath, ['--input-type=module', '-e', PUBLISH_SCRIPT], {
      ...process.env,
      NODE_OPTIONS: '',
      TARGET: `${l.address('a')}:4151`,
    });
    const acks: number[] = [];
    createInterface({ input: client.stdout as NodeJS.ReadableStream }).on('line', (t) => {
      if (/^\d+$/.test(t)) acks.push(Number(t));
    });
    await waitUntil('publishes acknowledged by a', () => acks.length > 20, { timeoutMs: 20_000 });
    await l.partition('a', 'etcd');
    await waitUntil('b leads', () => /REPLICATION: leading epoch 2/.test(b.logs()), { timeoutMs: 30_000 });
    const elected = logTime(b.logs(), /REPLICATION: leading epoch 2/);
    const fenced = logTime(a.logs(), /the lease of epoch 1 may have expired/);
    const lastAck = Math.max(...acks);
    console.log(
      `netns etcd partition: a's last acknowledgement ${elected - lastAck} ms and its fence ${elected - fenced} ms before b led epoch 2`,
    );
    // No two leaders acknowledge at once: a's last OK (the client's wall clock, the same host's) came before b led.
    expect(lastAck).toBeLessThan(elected);
    expect(fenced).toBeLessThan(elected);
    client.kill('SIGKILL');
    await l.heal();
    // Back in touch with etcd (or earlier, if it learned of b before the cut) it follows b: resuming the
    // stream where it stood, or by a full copy if it stored a batch b lacks.
    await waitUntil(
      'a follows b',
      () => /REPLICATION: a (follows from seq|\(at seq .*\) got a full copy)/.test(b.logs()),
      {
        timeoutMs: 30_000,
      },
    );
    expect(a.logs()).toMatch(/no longer leading epoch 1 \(fence-expired\); rejoining as a follower/);
  }, 150_000);
});
