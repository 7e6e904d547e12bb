/**
 * The storage scenarios (issues #4 and #9): `overflow` (a backlog far past --mem-queue-size,
 * on disk, then drained, with the broker's RSS sampled throughout), `mem0` (--mem-queue-size=0:
 * publish only, consume only, both at once) and `durable` (--mem-queue-size=0 --sync-every=1
 * MPUB ingest over several connections, so the group commit has publishers to share a flush).
 * The soak scenario (issue #10) is lib/soak.js. Each function works on the Bench of run.js
 * (`b`), with run.js's helpers passed in (`h`), like lib/perf.js; each runs on its own fresh
 * broker started with `storageBroker(name, opts)`.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { httpRequest } from './broker.js';
import { sum } from './generators.js';

export const STORAGE_SCENARIOS = ['overflow', 'mem0', 'durable', 'soak'];

/** Issue 9's figures for the real nsqd with --mem-queue-size=0, and the targets. */
export const TARGETS = {
  mem0In: 270_000,
  mem0Out: 240_000,
  mem0BothOut: 150_000,
  nsqdBothOut: 50_000,
  durableIn: 100_000,
};

/** --mem-queue-size and extra nsqd flags of each storage scenario's broker (null: not one). */
export function storageBroker(name, o) {
  if (name === 'overflow') return { memQueueSize: o.overflowMemQueueSize, flags: [] };
  if (name === 'mem0') return { memQueueSize: 0, flags: [] };
  if (name === 'durable') return { memQueueSize: 0, flags: ['--sync-every=1'] };
  if (name === 'soak') return { memQueueSize: o.soakMemQueueSize, flags: [`--msg-timeout=${o.soakMsgTimeout}ms`] };
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
const mib = (kib) => (kib === null || kib === undefined ? null : Math.round((kib / 1024) * 10) / 10);

/** Bytes under `dir` (`du -sb`), null if it cannot be read. */
export function diskBytes(dir) {
  if (dir === null) return null;
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8', timeout: 30_000 }).split('\t')[0]);
  } catch {
    return null;
  }
}

/** The broker's /stats for one topic's channel: depths, in flight, deferred (null on failure). */
export async function channelStats(b, topic, channel) {
  try {
    const q = `/stats?format=json&topic=${encodeURIComponent(topic)}&channel=${encodeURIComponent(channel)}`;
    const res = await httpRequest(b.broker.http, 'GET', q, 30_000);
    const st = JSON.parse(res.body);
    const t = (st.topics ?? []).find((x) => x.topic_name === topic);
    const c = t?.channels?.find((x) => x.channel_name === channel);
    if (t === undefined || c === undefined) return null;
    return {
      topicDepth: t.depth,
      depth: c.depth,
      backendDepth: c.backend_depth,
      inFlight: c.in_flight_count,
      deferred: c.deferred_count,
      messageCount: t.message_count,
    };
  } catch {
    return null;
  }
}

/** At most `max` points of a per-second RSS series (the largest value of each bucket). */
export function downsample(points, max) {
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / max);
  const out = [];
  for (let i = 0; i < points.length; i += per) {
    const bucket = points.slice(i, i + per);
    out.push(bucket.reduce((a, p) => (p.rssMiB > a.rssMiB ? p : a)));
  }
  return out;
}

// ---- overflow -------------------------------------------------------------------------------------

/**
 * --messages (default 10,000,000) × --msg-size B via MPUB (--connections publishers) into a topic
 * whose channel has no consumer, on a broker with --overflow-mem-queue-size (10,000): all but the
 * newest ~10k go to disk. Then the bytes under the data path (du) and the channel's depth; then
 * --connections consumers drain it all. The broker's RSS is sampled every second in both phases.
 */
export async function overflow(b, topic, channel, result, h) {
  const o = b.opts;
  const n = o.messages > 0 ? o.messages : 10_000_000;
  // Generous: at 20k msgs/s either way, plus start-up.
  const limitMs = Math.ceil(n / 20_000) * 1000 + 120_000;
  const extra = { hardDeadlineMs: limitMs * 2 + 120_000 };
  const base = b.brokerSample();
  const pre = await b.publishPhase(topic, 'overflow publish', { maxMessagesTotal: n, ms: limitMs, extra });
  const pub = h.phase(`publish ${h.fmtInt(n)}`, pre.rs, 'pub', pre.timeline, 0);
  if (pub.msgs < n) throw new Error(`published ${pub.msgs} of ${n} within ${limitMs / 1000} s`);
  await sleep(1000);
  // Only a spawned broker's data path is known here.
  const dataPath = b.broker.dataPath ?? null;
  const topicDir = dataPath === null ? null : path.join(dataPath, 'topics', topic);
  const peak = { dataPathBytes: diskBytes(dataPath), topicBytes: diskBytes(topicDir) };
  peak.stats = await channelStats(b, topic, channel);
  h.log(
    `  on disk: ${h.fmtInt((peak.dataPathBytes ?? 0) / MiB)} MiB under the data path ` +
      `(${h.fmtInt((peak.topicBytes ?? 0) / MiB)} MiB of segments); channel depth ${h.fmtInt(peak.stats?.depth ?? -1)}`,
  );

  const subs = b.gens('sub', o.connections, { topic, channel, ...extra });
  await b.startAll(subs);
  const timeline = await b.tick('overflow drain', [subs], limitMs, () => sum(subs, 'msgs') >= n);
  const complete = sum(subs, 'msgs') >= n;
  for (const g of subs) g.stop();
  const rs = await b.results(subs);
  const drain = h.phase('drain', rs, 'sub', timeline, 0, subs);
  drain.expected = n;
  drain.complete = complete;
  if (!complete) {
    result.ok = false;
    result.notes.push(`drained ${drain.msgs} of ${n} within ${limitMs / 1000} s`);
  }
  await sleep(2500);
  const after = { dataPathBytes: diskBytes(dataPath), topicBytes: diskBytes(topicDir) };

  // RSS over both phases, one point per second.
  const series = [];
  const pubSecs = pre.timeline.wallMs / 1000;
  for (const s of pre.timeline.samples) series.push({ t: s.t, rssMiB: mib(s.brokerRssKiB), phase: 'publish' });
  for (const s of timeline.samples)
    series.push({ t: h.round(pubSecs + 1 + s.t, 2), rssMiB: mib(s.brokerRssKiB), phase: 'drain' });
  const valid = series.filter((p) => p.rssMiB !== null);
  const range = (phase) => {
    const v = valid.filter((p) => phase === null || p.phase === phase).map((p) => p.rssMiB);
    return v.length === 0 ? { min: null, max: null } : { min: Math.min(...v), max: Math.max(...v) };
  };
  const all = range(null);
  const diskMiB = (peak.topicBytes ?? 0) / MiB;
  // From the first second of the publish (the broker's working set is warm by then) to the top.
  const growth = all.max === null || valid.length === 0 ? null : all.max - valid[0].rssMiB;
  result.storage = {
    messages: n,
    msgSize: o.msgSize,
    memQueueSize: o.overflowMemQueueSize,
    baseRssMiB: mib(base?.rssKiB),
    rss: { min: all.min, max: all.max, publish: range('publish'), drain: range('drain') },
    /** Largest RSS minus the first second's. */
    rssGrowthMiB: growth === null ? null : h.round(growth, 1),
    rssGrowthPctOfDisk: growth === null || diskMiB === 0 ? null : h.round((growth / diskMiB) * 100, 1),
    diskAtPeak: peak,
    diskAfterDrain: after,
    rssSeries: downsample(valid, 60),
  };
  const S = result.storage;
  pub.note =
    `no consumer; RSS ${S.rss.publish.min}–${S.rss.publish.max} MiB; ` +
    `${h.fmtInt((peak.topicBytes ?? 0) / MiB)} MiB on disk at the peak (du)`;
  drain.note = `${o.connections} consumers; RSS ${S.rss.drain.min}–${S.rss.drain.max} MiB; ${h.fmtInt((after.topicBytes ?? 0) / MiB)} MiB left on disk`;
  pub.kind = 'throughput';
  drain.kind = 'throughput';
  result.phases.push(pub, drain);
  // Flat: what memory gained over both phases is small next to what went to disk.
  if (S.rssGrowthMiB !== null && S.rssGrowthMiB > Math.max(100, diskMiB / 10)) {
    result.notes.push(
      `RSS grew ${S.rssGrowthMiB} MiB after the first second (${S.rssGrowthPctOfDisk}% of the ${h.fmtInt(diskMiB)} MiB on disk): not flat`,
    );
  }
}

// ---- mem0 -----------------------------------------------------------------------------------------

/**
 * --mem-queue-size=0 (every publish answered once written; fsync per nsqd's default
 * --sync-every): the consume scenario (publish only for --duration s, or --messages, into a
 * channel without consumer; then consume only, that whole backlog from disk), then the both
 * scenario (publish and consume at once for --duration s) on a second topic.
 */
export async function mem0(b, topic, channel, result, h) {
  await b.consume(topic, channel, result);
  const both = `${topic}_both`;
  await b.createTopicChannel(both, channel);
  await b.both(both, channel, result);
  const names = { prepublish: 'publish only', consume: 'consume only', in: 'both: in', out: 'both: out' };
  for (const p of result.phases) {
    p.phase = names[p.phase] ?? p.phase;
    p.kind = 'throughput';
  }
  const [pub, con, bin, bout] = result.phases;
  pub.note = `no consumer; vs real nsqd ${h.fmtInt(TARGETS.mem0In)}`;
  con.note = `backlog of ${h.fmtInt(con.expected ?? con.msgs)} from disk; vs real nsqd ${h.fmtInt(TARGETS.mem0Out)}`;
  bin.note = `${b.opts.connections} pub + ${b.opts.connections} sub conns`;
  bout.note = `target ≥ ${h.fmtInt(TARGETS.mem0BothOut)} (real nsqd ~${h.fmtInt(TARGETS.nsqdBothOut)})`;
  const miss = (p, target, what) => {
    if (p !== undefined && p.msgsPerSec < target) {
      result.notes.push(`${what} ${h.fmtInt(p.msgsPerSec)} msgs/s < ${h.fmtInt(target)} target`);
    }
  };
  miss(pub, TARGETS.mem0In, 'publish only');
  miss(con, TARGETS.mem0Out, 'consume only');
  miss(bout, TARGETS.mem0BothOut, 'out while publishing');
}

// ---- durable --------------------------------------------------------------------------------------

/**
 * --mem-queue-size=0 --sync-every=1: per C in --durable-connections (1,8,16), C MPUB publisher
 * connections (200 × 200 B, --pipeline in flight each) for --duration s into a topic with a
 * channel and no consumer. nsqd answers a connection's MPUBs in order and decodes its next
 * command only once the previous one is stored, so at most one MPUB per connection waits for a
 * flush: C is how many can share one fsync.
 */
export async function durable(b, topic, channel, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  for (const c of o.durableConnections) {
    const t = `${topic}_${c}`;
    await b.createTopicChannel(t, channel);
    const pubs = b.gens('pub', c, { topic: t });
    const { rs, timeline } = await b.timed(`durable ${c} conns`, pubs, o.duration * 1000);
    const p = h.phase(`MPUB, ${c} conn${c > 1 ? 's' : ''}`, rs, 'pub', timeline, 0, pubs);
    p.kind = 'throughput';
    p.connections = c;
    p.batchesPerSec = p.seconds > 0 ? h.round(rs.reduce((a, r) => a + r.batches, 0) / p.seconds, 0) : 0;
    p.note = `${o.batchSize} × ${o.msgSize} B, ${o.pipeline} in flight/conn; ${h.fmtInt(p.batchesPerSec)} MPUB/s`;
    result.phases.push(p);
    await b.deleteTopic(t);
  }
  const best = result.phases.reduce((a, p) => (p.msgsPerSec > (a?.msgsPerSec ?? -1) ? p : a), null);
  if (best !== null && best.msgsPerSec < TARGETS.durableIn) {
    result.notes.push(
      `best ${h.fmtInt(best.msgsPerSec)} msgs/s (${best.connections} conns) < ${h.fmtInt(TARGETS.durableIn)} target`,
    );
  }
}
