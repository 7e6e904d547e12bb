/**
 * `policy-memory`: what the delivery policies (issue 19) cost in memory at a count that would show
 * anything kept per message. Each case runs on a fresh nsqd with --mem-queue-size
 * =--policy-mem-queue-size and brings --policy-messages (1,000,000) × --msg-size B through:
 *
 *   plain         the reference: published into a channel without consumer, then drained (FIN)
 *   dead-letter   channel max_attempts=1 + dead_letter_topic: a consumer REQs every message, so
 *                 every one is given up into the dead-letter topic (no channel there: its backlog)
 *   redrive       the dead-letter case, then POST /topic/redrive of them all into a fresh topic
 *   expired       topic message_ttl=1s, a channel without consumer: published, left until older
 *                 than that (the channel lets them go as they pass it), then a consumer
 *                 subscribes and receives none
 *   drop-oldest   max_depth=--policy-max-depth, overflow=drop_oldest, a channel without consumer
 *   drop-oldest-topic  the same on a topic without any channel (the topic's backlog is capped)
 *   reject        max_depth, overflow=reject, a channel without consumer: the publishers go on
 *                 sending and the rest is refused (E_MPUB_FAILED)
 *
 * Readings per case: the broker's RSS (/proc) and V8 heap + external (/stats `memory`) on the
 * fresh broker, after the publish, after the consumer's part, after --policy-settle s, and after
 * two full GCs (heap snapshots: an idle broker collects nothing by itself, so the reading before
 * holds garbage too) with the count of MessageRecord, ChannelMessage, Buffer and ArrayBuffer
 * objects left and the largest native blocks; the /stats counts that show the policy did its
 * work. Flat = the policy cases end where `plain`
 * ends (the same messages through, the backlog on disk beyond --mem-queue-size).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, spawnDaemon } from '../lib/broker.js';
import { sum } from '../lib/generators.js';
import { heapSnapshotFlags, takeHeapSnapshot } from '../lib/heap-snapshot.js';
import { choiceList, int, seconds } from '../lib/options.js';
import { manualPhase, phase } from '../lib/phase.js';
import { topicStats } from '../lib/storage.js';
import { fmtInt, log, MiB, mib, round, sleep } from '../lib/util.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { PhaseRow, Scenario, SpawnedBroker, TopicStats } from '../lib/types.js'
 */

const CASES = ['plain', 'dead-letter', 'redrive', 'expired', 'drop-oldest', 'drop-oldest-topic', 'reject'];
const TTL_MS = 1_000;
/** Counted in the heap snapshot at the end of a case: one per message would show there. */
const COUNTED = ['MessageRecord', 'ChannelMessage', 'Buffer', 'ArrayBuffer'];

export const options = {
  policyMessages: int('messages per policy-memory case', 1_000_000),
  policyMemQueueSize: int("policy-memory brokers' --mem-queue-size", 10_000, { min: 0 }),
  policyMaxDepth: int('max_depth of the capped cases', 10_000),
  policySettle: seconds('wait at the end of each policy-memory case before the last reading', 5, { min: 0 }),
  policyCases: choiceList('which policy-memory cases', CASES),
};

/**
 * @typedef {object} Reading
 * @property {string} at
 * @property {number | null} rssMiB
 * @property {number | null} peakRssMiB
 * @property {number | null} heapMiB V8 heap used + external (Buffers), /stats memory.heap_in_use_bytes
 */

/**
 * The broker's RSS and heap now.
 * @param {Bench} b
 * @param {string} at
 * @returns {Promise<Reading>}
 */
async function reading(b, at) {
  const proc = b.brokerSample();
  let heapMiB = null;
  try {
    const res = await httpRequest(b.nsqd.http, 'GET', '/stats?format=json&topic=_none_', 30_000);
    /** @type {{ memory?: { heap_in_use_bytes?: number } }} */
    const st = JSON.parse(res.body);
    const bytes = st.memory?.heap_in_use_bytes;
    heapMiB = typeof bytes === 'number' ? round(bytes / MiB, 1) : null;
  } catch {
    // An external broker without /stats memory: RSS only.
  }
  return { at, rssMiB: mib(proc?.rssKiB), peakRssMiB: mib(proc?.peakRssKiB), heapMiB };
}

/**
 * A POST that must succeed (the case is meaningless otherwise).
 * @param {Bench} b
 * @param {string} p
 * @param {number} [timeoutMs]
 */
async function post(b, p, timeoutMs) {
  const res = await httpRequest(b.nsqd.http, 'POST', p, timeoutMs);
  if (res.status !== 200) throw new Error(`POST ${p} → ${res.status} ${res.body.slice(0, 200)}`);
  return res.body;
}

/**
 * Shows progress (RSS every second) until `check()` on the topic's /stats is true, or `ms`.
 * @param {Bench} b
 * @param {string} label
 * @param {string} topic
 * @param {(t: TopicStats | null) => boolean} check
 * @param {number} ms
 */
async function waitStats(b, label, topic, check, ms) {
  let done = false;
  /** @type {TopicStats | null} */
  let last = null;
  const deadline = Date.now() + ms;
  const poll = (async () => {
    while (!done && Date.now() < deadline) {
      last = await topicStats(b.nsqd.http, topic);
      if (check(last)) done = true;
      else await sleep(250);
    }
  })();
  const timeline = await b.tick(label, [], ms, { until: () => done });
  done = true;
  await poll;
  if (!check(last)) throw new Error(`${label}: not reached within ${ms / 1000} s: ${JSON.stringify(last)}`);
  return { timeline, stats: /** @type {TopicStats | null} */ (last) };
}

/**
 * --connections consumers of `topic`/`channel` until they have received `n` first deliveries.
 * @param {Bench} b
 * @param {string} label
 * @param {string} topic
 * @param {string} channel
 * @param {number} n
 * @param {number} ms
 * @param {{ requeue: boolean, hardDeadlineMs: number }} extra `requeue`: REQ every message instead of FIN
 */
async function consumePhase(b, label, topic, channel, n, ms, extra) {
  const subs = b.gens('sub', b.opts.connections, { topic, channel, ...extra });
  await b.startAll(subs);
  const timeline = await b.tick(label, [subs], ms, { until: () => sum(subs, 'msgs') >= n });
  for (const g of subs) g.stop();
  const row = phase(label, await b.results(subs), 'sub', timeline, 0, subs);
  row.kind = 'throughput';
  if (row.msgs < n) throw new Error(`${label}: ${row.msgs} of ${n} within ${ms / 1000} s`);
  return row;
}

/**
 * One case on the broker `b.nsqd`: its phase rows, readings and /stats counts.
 * @param {Bench} b
 * @param {string} name
 * @param {string} topic
 * @param {string} channel
 * @param {string | null} snapshotDir the spawned broker's --diagnostic-dir (null: an external broker)
 */
async function runCase(b, name, topic, channel, snapshotDir) {
  const o = b.opts;
  const n = o.policyMessages;
  const limitMs = Math.ceil(n / 10_000) * 1000 + 60_000;
  const extra = { hardDeadlineMs: limitMs * 3 + 120_000 };
  const qt = `topic=${encodeURIComponent(topic)}`;
  const q = `${qt}&channel=${encodeURIComponent(channel)}`;
  const dead = `${topic}.dead`;
  const capped = name === 'drop-oldest' || name === 'drop-oldest-topic' || name === 'reject';
  await post(b, `/topic/create?${qt}`);
  if (name !== 'drop-oldest-topic') await post(b, `/channel/create?${q}`);
  if (name === 'dead-letter' || name === 'redrive') {
    await post(b, `/channel/config?${q}&max_attempts=1&dead_letter_topic=${encodeURIComponent(dead)}`);
  }
  if (name === 'expired') await post(b, `/topic/config?${qt}&message_ttl=${TTL_MS}ms`);
  if (capped) {
    const overflow = name === 'reject' ? 'reject' : 'drop_oldest';
    await post(b, `/topic/config?${qt}&max_depth=${o.policyMaxDepth}&overflow=${overflow}`);
  }
  await sleep(1000);
  /** @type {Reading[]} */
  const readings = [await reading(b, 'fresh')];
  /** @type {PhaseRow[]} */
  const rows = [];

  const pre = await b.publishPhase(topic, `${name} publish`, {
    maxMessagesTotal: n,
    ms: limitMs,
    extra: { ...extra, refusable: name === 'reject' },
  });
  const pub = phase(`${name}: publish ${fmtInt(n)}`, pre.rs, 'pub', pre.timeline, 0);
  pub.kind = 'throughput';
  const refused = pre.rs.reduce((a, r) => a + (r.softErrors ?? 0), 0);
  if (name !== 'reject' && pub.msgs < n) throw new Error(`${name}: published ${pub.msgs} of ${n}`);
  if (name === 'reject') pub.note = `${fmtInt(refused)} batches refused (E_MPUB_FAILED)`;
  rows.push(pub);
  readings.push(await reading(b, 'published'));

  if (name === 'plain') {
    rows.push(await consumePhase(b, 'plain: drain (FIN)', topic, channel, n, limitMs, { ...extra, requeue: false }));
    readings.push(await reading(b, 'drained'));
  } else if (name === 'dead-letter' || name === 'redrive') {
    rows.push(
      await consumePhase(b, `${name}: REQ each (max_attempts=1)`, topic, channel, n, limitMs, {
        ...extra,
        requeue: true,
      }),
    );
    const into = await waitStats(b, `${name}: into ${dead}`, dead, (t) => (t?.depth ?? 0) >= n, limitMs);
    readings.push(await reading(b, `${fmtInt(into.stats?.depth ?? 0)} dead letters`));
  } else if (name === 'expired') {
    await sleep(TTL_MS + 500);
    const subs = b.gens('sub', o.connections, { topic, channel, ...extra });
    await b.startAll(subs);
    const gone = await waitStats(
      b,
      'expired: all gone',
      topic,
      (t) => (t?.channels?.[0]?.expired_count ?? 0) >= n && t?.channels?.[0]?.depth === 0,
      limitMs,
    );
    for (const g of subs) g.stop();
    const rs = await b.results(subs);
    const got = rs.reduce((a, r) => a + r.msgs, 0);
    const row = manualPhase('expired: gone, then a consumer subscribes', 'memory', {
      msgs: n,
      timeline: gone.timeline,
    });
    row.note = `${fmtInt(got)} delivered`;
    rows.push(row);
    readings.push(await reading(b, 'expired'));
  }

  if (name === 'redrive') {
    const to = `${topic}.redriven`;
    const t0 = Date.now();
    let moved = -1;
    const run = post(
      b,
      `/topic/redrive?topic=${encodeURIComponent(dead)}&to=${encodeURIComponent(to)}&max=${n}`,
      limitMs,
    ).then((body) => {
      moved = JSON.parse(body).moved;
    });
    const timeline = await b.tick('redrive', [], limitMs, { until: () => moved >= 0 });
    await run;
    const secs = (Date.now() - t0) / 1000;
    const row = manualPhase('redrive: the dead letters back', 'throughput', {
      msgs: moved,
      seconds: secs,
      rate: true,
      timeline,
    });
    if (moved < n) throw new Error(`redrive moved ${moved} of ${n}`);
    rows.push(row);
    readings.push(await reading(b, `${fmtInt(moved)} redriven`));
  }

  const settle = await b.tick(`${name} settle`, [], o.policySettle * 1000);
  readings.push(await reading(b, `after ${o.policySettle} s`));
  const stats = await topicStats(b.nsqd.http, topic);
  const deadStats = name === 'dead-letter' || name === 'redrive' ? await topicStats(b.nsqd.http, dead) : null;
  const ch = stats?.channels?.[0];
  const counts = {
    topicDepth: stats?.depth ?? null,
    channelDepth: ch?.depth ?? null,
    deadLettered: ch?.dead_lettered_count ?? null,
    expired: ch?.expired_count ?? null,
    dropped: ch?.dropped_count ?? stats?.dropped_count ?? null,
    rejected: stats?.rejected_count ?? null,
    deadTopicDepth: deadStats?.depth ?? null,
    redriven: deadStats?.redriven_count ?? null,
  };
  /** @type {Record<string, number> | null} */
  let objects = null;
  if (snapshotDir !== null) {
    // Two: buffers freed by one full GC are released while the next runs (their sweep is lazy).
    for (let i = 0; i < 2; i++) {
      objects = await takeHeapSnapshot(/** @type {SpawnedBroker} */ (b.nsqd), snapshotDir, COUNTED);
      await sleep(2000);
    }
    readings.push(await reading(b, 'after two full GCs'));
  }
  const last = readings[readings.length - 1];
  const end = manualPhase(`${name}: end`, 'memory', { msgs: n, timeline: settle });
  const countsText = Object.entries(counts)
    .filter(([, v]) => v !== null && v !== 0)
    .map(([k, v]) => `${k} ${fmtInt(/** @type {number} */ (v))}`);
  const objectsText = Object.entries(objects ?? {}).map(([k, v]) => `${k} ${fmtInt(v)}`);
  end.note = [
    `RSS ${readings.map((r) => r.rssMiB).join(' → ')} MiB (peak ${last.peakRssMiB})`,
    `heap ${readings.map((r) => r.heapMiB).join(' → ')} MiB`,
    ...(countsText.length > 0 ? [countsText.join(', ')] : []),
    ...(objects === null ? [] : [`objects after GC: ${objectsText.join(', ')}`]),
  ].join('; ');
  rows.push(end);
  return { rows, readings, counts, objects };
}

/** @type {Scenario} */
export default {
  name: 'policy-memory',
  description:
    'per case of --policy-cases, on a fresh broker with --mem-queue-size=--policy-mem-queue-size: --policy-messages (1,000,000) through a plain channel (the reference), dead-lettered (REQ with max_attempts=1), redriven back, expired (message_ttl=1s), dropped or refused at max_depth=--policy-max-depth; RSS and heap before, after and --policy-settle s later, and the /stats counts',
  options,
  group: 'storage',
  slow: true,
  ownDaemons: true,
  budgetSeconds: (o) =>
    o.policyCases.length * (3 * (Math.ceil(o.policyMessages / 10_000) + 60) + o.policySettle + 30) + 60,
  async run(b, result) {
    const o = b.opts;
    // An external broker (--nsqd-*-address) runs every case itself, without RSS.
    const external = b.broker;
    /** @type {Record<string, unknown>} */
    const cases = {};
    result.policyMemory = {
      messages: o.policyMessages,
      msgSize: o.msgSize,
      memQueueSize: o.policyMemQueueSize,
      maxDepth: o.policyMaxDepth,
      cases,
    };
    for (const name of o.policyCases) {
      log(`  -- ${name}`);
      const dir = external === null ? fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-heap-')) : null;
      if (dir !== null) {
        const nodeFlags = heapSnapshotFlags(dir);
        b.broker = await spawnDaemon(o, [], { memQueueSize: o.policyMemQueueSize, nodeFlags });
      }
      try {
        const r = await runCase(b, name, `${result.topic}_${name.replace(/-/g, '_')}`, result.channel, dir);
        cases[name] = { readings: r.readings, counts: r.counts, objectsAfterGc: r.objects };
        result.phases.push(...r.rows);
      } finally {
        if (dir !== null) {
          await b.broker?.stop();
          b.broker = null;
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  },
};
