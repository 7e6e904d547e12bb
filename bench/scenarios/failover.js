/**
 * `failover`: how fast a replica group heals (issue 20's "follower catch-up speed, and failover
 * time"). Per round (--failover-rounds), on a group of two nsqds (sync acks, --mem-queue-size=0
 * --sync-every=1, registered with an nsqlookupd, coordinated by an etcd this scenario starts):
 *  1. catch-up: the follower is stopped (SIGTERM), --failover-messages × --msg-size are published
 *     to the leader, the follower is started again; the time from its start to its return into
 *     the in-sync set (the leader's GET /ha), by replay of the leader's recent batches or, past its
 *     64 MiB replay window, by a full copy (the row says which);
 *  2. full copy: a third member with an empty data path joins; the time until it is in sync;
 *  3. failover: a consumer finding nsqds through nsqlookupd (poll every 250 ms) reads the backlog;
 *     the leader is SIGKILLed; the times from the kill to a new leader (GET /ha of the others) and
 *     to the first message the consumer gets from it. The issue's goal: ≤ lease TTL + 1 s.
 */
import fs from 'node:fs';
import path from 'node:path';
import { freePort, httpRequest, spawnDaemon } from '../lib/broker.js';
import { ETCD_BIN, startEtcd } from '../lib/etcd.js';
import { int } from '../lib/options.js';
import { fmt1, fmtInt, log, nowMs, round, until } from '../lib/util.js';

/**
 * @import { Scenario, Options, RunningResult, PhaseRow, SpawnedBroker } from '../lib/types.js'
 */

/** Waits here poll often (the scenario times kill → delivery) and allow a slow machine 2 minutes. */
const POLL = { ms: 120_000, everyMs: 20 };
const LOOPBACK = '127.0.0.1';
const TOPIC = 'bench_failover';
const CHANNEL = 'ch';
const BATCH = 200;

export const options = {
  failoverRounds: int('failover: rounds of (catch-up, full copy, failover)', 2),
  failoverMessages: int('failover: messages published while the follower is down (the backlog to copy)', 200_000),
  failoverLeaseTtl: int("failover: the members' --ha-lease-ttl in seconds (nsqd's default: 5)", 5),
};

/**
 * @typedef {object} Member
 * @property {string} id
 * @property {SpawnedBroker} d
 */

/**
 * GET /ha of a member, or null while it does not answer.
 * @param {Member} m
 * @returns {Promise<{ role: string, leader: string | null, in_sync: string[] } | null>}
 */
async function ha(m) {
  try {
    const res = await httpRequest(m.d.http, 'GET', '/ha', 1_000);
    return res.status === 200 ? JSON.parse(res.body) : null;
  } catch {
    return null;
  }
}

/**
 * The member that leads, as the members report it.
 * @param {Member[]} members
 */
async function leaderOf(members) {
  for (const m of members) if (m.d.isRunning() && (await ha(m))?.role === 'leader') return m;
  return null;
}

/**
 * @param {Member} leader
 * @param {string} id
 */
const inSync = async (leader, id) => (await ha(leader))?.in_sync.includes(id) ?? false;

/**
 * A row of the report: `seconds` is the measured time; `msgs` what it moved, if anything.
 * @param {string} phase
 * @param {number} seconds
 * @param {number} msgs
 * @param {number} msgSize
 * @param {string} note
 * @returns {PhaseRow}
 */
function row(phase, seconds, msgs, msgSize, note) {
  const rate = msgs > 0 ? msgs / seconds : 0;
  return {
    phase,
    kind: 'throughput',
    role: 'ha',
    msgs,
    bytes: msgs * msgSize,
    seconds: round(seconds, 3),
    msgsPerSec: round(rate, 0),
    mibPerSec: round((rate * msgSize) / 1024 / 1024, 1),
    generators: [],
    broker: null,
    machineCpuPct: null,
    otherCpuPct: null,
    timeline: [],
    note,
  };
}

/** Bytes under a directory (the data a full copy moves). @param {string} dir */
function duBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

/**
 * One round: catch-up, full copy, failover; its rows go into `result`.
 * @param {Options} o
 * @param {RunningResult} result
 * @param {string} etcdUrl
 * @param {string} lookupdTcp
 * @param {string} lookupdHttp
 * @param {number} round
 */
async function runRound(o, result, etcdUrl, lookupdTcp, lookupdHttp, round) {
  const { Consumer, Producer } = await import('@nsq-ts/client');
  /** @type {Member[]} */
  const members = [];
  const member = async (/** @type {string} */ id) => {
    const flags = [
      `--ha-group=failover${round}`,
      `--ha-member-id=${id}`,
      `--etcd-endpoints=${etcdUrl}`,
      `--replication-address=${LOOPBACK}:${await freePort()}`,
      '--replication-ack=sync',
      `--ha-lease-ttl=${o.failoverLeaseTtl}s`,
      '--sync-every=1',
      `--lookupd-tcp-address=${lookupdTcp}`,
      `--broadcast-address=${LOOPBACK}`,
    ];
    const m = { id, d: await spawnDaemon(o, flags, { memQueueSize: 0, anyPing: true }) };
    members.push(m);
    return m;
  };
  /** @type {InstanceType<typeof Consumer> | null} */
  let consumer = null;
  try {
    const a = await member('a');
    await until('a leading', async () => (await ha(a))?.role === 'leader', POLL);
    const b = await member('b');
    await until('b in sync', () => inSync(a, 'b'), POLL);
    // The channel exists before the backlog, so the backlog is kept for it.
    await httpRequest(a.d.http, 'POST', `/channel/create?topic=${TOPIC}&channel=${CHANNEL}`);

    // 1. The follower misses the backlog, then streams it.
    process.kill(/** @type {number} */ (b.d.pid), 'SIGTERM');
    await until('b out of the in-sync set', async () => !b.d.isRunning() && !(await inSync(a, 'b')), POLL);
    const producer = new Producer({ nsqdAddress: `${a.d.tcp.host}:${a.d.tcp.port}`, logger: null });
    await producer.connect();
    const bodies = Array.from({ length: BATCH }, () => Buffer.alloc(o.msgSize, 120));
    for (let sent = 0; sent < o.failoverMessages; sent += BATCH) await producer.publishMany(TOPIC, bodies);
    await producer.close();
    const backlog = Math.ceil(o.failoverMessages / BATCH) * BATCH;
    const t1 = nowMs();
    const { startMs } = await b.d.restart();
    await until('b back in sync', () => inSync(a, 'b'), POLL);
    const catchUp = (nowMs() - t1) / 1000;
    // Past the leader's replay window (64 MiB of batches) a restarted follower gets a full copy too.
    const how = /taking a full copy/.test(fs.readFileSync(b.d.logPath, 'utf8')) ? 'by full copy' : 'by replay';
    result.phases.push(
      row(
        `round ${round + 1}: catch-up ${how}`,
        catchUp,
        backlog,
        o.msgSize,
        `restart → in sync, process start ${startMs} ms included`,
      ),
    );

    // 2. A new member copies everything.
    const bytes = duBytes(/** @type {string} */ (a.d.dataPath));
    const t2 = nowMs();
    await member('c');
    await until('c in sync', () => inSync(a, 'c'), POLL);
    const fullCopy = (nowMs() - t2) / 1000;
    result.phases.push(
      row(
        `round ${round + 1}: full copy`,
        fullCopy,
        backlog,
        o.msgSize,
        `start → in sync; ${fmt1(bytes / 1024 / 1024)} MiB in the leader's data path`,
      ),
    );

    // 3. The leader dies under a consumer.
    const leaderAddress = `${a.d.tcp.host}:${a.d.tcp.port}`;
    let killedAt = Number.POSITIVE_INFINITY;
    let firstFromNew = 0;
    let received = 0;
    consumer = new Consumer({
      topic: TOPIC,
      channel: CHANNEL,
      lookupdHttpAddresses: [lookupdHttp],
      lookupdPollIntervalMs: 250,
      maxInFlight: 100,
      logger: null,
      handler: (msg) => {
        received++;
        if (firstFromNew === 0 && msg.nsqdAddress !== leaderAddress && nowMs() > killedAt) firstFromNew = nowMs();
      },
    });
    await consumer.connect();
    await until('the consumer reading', async () => received >= 1_000, POLL);
    killedAt = nowMs();
    process.kill(/** @type {number} */ (a.d.pid), 'SIGKILL');
    const others = members.filter((m) => m !== a);
    const next = await until('a new leader', () => leaderOf(others), POLL);
    const elected = (nowMs() - killedAt) / 1000;
    await until('a message from the new leader', async () => firstFromNew > 0, POLL);
    const delivered = (firstFromNew - killedAt) / 1000;
    result.phases.push(
      row(`round ${round + 1}: kill → ${next.id} leads`, elected, 0, o.msgSize, `lease TTL ${o.failoverLeaseTtl} s`),
      row(
        `round ${round + 1}: kill → first delivery`,
        delivered,
        0,
        o.msgSize,
        `consumer via nsqlookupd (poll 250 ms); goal ≤ TTL + 1 s = ${o.failoverLeaseTtl + 1} s`,
      ),
    );
    log(
      `failover round ${round + 1}: catch-up ${fmtInt(backlog / catchUp)} msgs/s, full copy ${fmt1(fullCopy)} s, elected ${fmt1(elected)} s, delivering ${fmt1(delivered)} s`,
    );
  } finally {
    await consumer?.close();
    await Promise.all(members.map((m) => m.d.stop()));
  }
}

/** @type {Scenario} */
export default {
  name: 'failover',
  description:
    'a replica group of 2 (sync acks, etcd and nsqlookupd started by the scenario): a stopped follower streaming --failover-messages on restart, a new member copying them, and the leader SIGKILLed under a consumer reading through nsqlookupd (kill → new leader, kill → first delivery); --failover-rounds rounds',
  options,
  ownDaemons: true,
  budgetSeconds: (o) => o.failoverRounds * (o.failoverMessages / 20_000 + 3 * o.failoverLeaseTtl + 60) + 30,
  async run(b, result) {
    const o = b.opts;
    if (!fs.existsSync(ETCD_BIN)) {
      result.notes.push(`failover: skipped, no ${ETCD_BIN}`);
      return;
    }
    const etcd = await startEtcd();
    const lookupd = await spawnDaemon(o, [], { lookupd: true });
    try {
      const lookupdTcp = `${lookupd.tcp.host}:${lookupd.tcp.port}`;
      const lookupdHttp = `${lookupd.http.host}:${lookupd.http.port}`;
      for (let i = 0; i < o.failoverRounds; i++) await runRound(o, result, etcd.url, lookupdTcp, lookupdHttp, i);
    } finally {
      await lookupd.stop();
      await etcd.stop();
    }
  },
};
