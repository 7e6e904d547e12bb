/**
 * `overflow`: --messages (default 10,000,000) × --msg-size B via MPUB (--connections publishers)
 * into a topic whose channel has no consumer, on a broker with --overflow-mem-queue-size: all but
 * the newest ~10k go to disk. Then the bytes under the data path (du) and the channel's depth;
 * then --connections consumers drain it all. The broker's RSS is sampled every second in both
 * phases.
 */
import path from 'node:path';
import { sum } from '../lib/generators.js';
import { int } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { channelStats, diskBytes, downsample } from '../lib/storage.js';
import { fmtInt, log, MiB, mib, round, sleep } from '../lib/util.js';

/**
 * @import { DiskUse, RssPoint, Scenario } from '../lib/types.js'
 */

export const options = {
  overflowMemQueueSize: int("the broker's --mem-queue-size", 10_000, { min: 0 }),
};

/** @param {number} messages --messages */
const messageCount = (messages) => (messages > 0 ? messages : 10_000_000);

/** @type {Scenario} */
export default {
  name: 'overflow',
  description:
    "--messages (0: 10,000,000) × --msg-size B via MPUB into a channel without consumer on a broker with --mem-queue-size=--overflow-mem-queue-size (all but ~10k spill to disk), then --connections consumers drain them all; bytes on disk at the peak and after, the broker's RSS every second",
  options,
  group: 'storage',
  slow: true,
  broker: (o) => ({ memQueueSize: o.overflowMemQueueSize, flags: [] }),
  budgetSeconds: (o) => 2 * (Math.ceil(messageCount(o.messages) / 20_000) + 120) + 180,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    const n = messageCount(o.messages);
    // Generous: at 20k msgs/s either way, plus start-up.
    const limitMs = Math.ceil(n / 20_000) * 1000 + 120_000;
    const extra = { hardDeadlineMs: limitMs * 2 + 120_000 };
    const base = b.brokerSample();
    const pre = await b.publishPhase(topic, 'overflow publish', { maxMessagesTotal: n, ms: limitMs, extra });
    const pub = phase(`publish ${fmtInt(n)}`, pre.rs, 'pub', pre.timeline, 0);
    if (pub.msgs < n) throw new Error(`published ${pub.msgs} of ${n} within ${limitMs / 1000} s`);
    await sleep(1000);
    // Only a spawned broker's data path is known here.
    const broker = b.nsqd;
    const dataPath = broker.external ? null : broker.dataPath;
    const topicDir = dataPath === null ? null : path.join(dataPath, 'topics', topic);
    /** @type {DiskUse} */
    const peak = { dataPathBytes: diskBytes(dataPath), topicBytes: diskBytes(topicDir) };
    peak.stats = await channelStats(broker.http, topic, channel);
    log(
      `  on disk: ${fmtInt((peak.dataPathBytes ?? 0) / MiB)} MiB under the data path ` +
        `(${fmtInt((peak.topicBytes ?? 0) / MiB)} MiB of segments); channel depth ${fmtInt(peak.stats?.depth ?? -1)}`,
    );

    const subs = b.gens('sub', o.connections, { topic, channel, ...extra });
    await b.startAll(subs);
    const timeline = await b.tick('overflow drain', [subs], limitMs, { until: () => sum(subs, 'msgs') >= n });
    const complete = sum(subs, 'msgs') >= n;
    for (const g of subs) g.stop();
    const rs = await b.results(subs);
    const drain = phase('drain', rs, 'sub', timeline, 0, subs);
    drain.expected = n;
    drain.complete = complete;
    if (!complete) {
      result.ok = false;
      result.notes.push(`drained ${drain.msgs} of ${n} within ${limitMs / 1000} s`);
    }
    await sleep(2500);
    const after = { dataPathBytes: diskBytes(dataPath), topicBytes: diskBytes(topicDir) };

    // RSS over both phases, one point per second.
    /** @type {RssPoint[]} */
    const series = [];
    const pubSecs = pre.timeline.wallMs / 1000;
    for (const s of pre.timeline.samples) series.push({ t: s.t, rssMiB: mib(s.brokerRssKiB), phase: 'publish' });
    for (const s of timeline.samples)
      series.push({ t: round(pubSecs + 1 + s.t, 2), rssMiB: mib(s.brokerRssKiB), phase: 'drain' });
    const valid = series.filter((p) => p.rssMiB !== null);
    /** @param {string | null} phase */
    const range = (phase) => {
      const v = valid.filter((p) => phase === null || p.phase === phase).map((p) => p.rssMiB ?? 0);
      return v.length === 0 ? { min: null, max: null } : { min: Math.min(...v), max: Math.max(...v) };
    };
    const all = range(null);
    const diskMiB = (peak.topicBytes ?? 0) / MiB;
    // From the first second of the publish (the broker's working set is warm by then) to the top.
    const growth = all.max === null || valid.length === 0 ? null : all.max - (valid[0].rssMiB ?? 0);
    result.storage = {
      messages: n,
      msgSize: o.msgSize,
      memQueueSize: o.overflowMemQueueSize,
      baseRssMiB: mib(base?.rssKiB),
      rss: { min: all.min, max: all.max, publish: range('publish'), drain: range('drain') },
      /** Largest RSS minus the first second's. */
      rssGrowthMiB: growth === null ? null : round(growth, 1),
      rssGrowthPctOfDisk: growth === null || diskMiB === 0 ? null : round((growth / diskMiB) * 100, 1),
      diskAtPeak: peak,
      diskAfterDrain: after,
      rssSeries: downsample(valid, 60),
    };
    const S = result.storage;
    pub.note =
      `no consumer; RSS ${S.rss.publish.min}–${S.rss.publish.max} MiB; ` +
      `${fmtInt((peak.topicBytes ?? 0) / MiB)} MiB on disk at the peak (du)`;
    drain.note = `${o.connections} consumers; RSS ${S.rss.drain.min}–${S.rss.drain.max} MiB; ${fmtInt((after.topicBytes ?? 0) / MiB)} MiB left on disk`;
    pub.kind = 'throughput';
    drain.kind = 'throughput';
    result.phases.push(pub, drain);
    // Flat: what memory gained over both phases is small next to what went to disk.
    if (S.rssGrowthMiB !== null && S.rssGrowthMiB > Math.max(100, diskMiB / 10)) {
      result.notes.push(
        `RSS grew ${S.rssGrowthMiB} MiB after the first second (${S.rssGrowthPctOfDisk}% of the ${fmtInt(diskMiB)} MiB on disk): not flat`,
      );
    }
  },
};
