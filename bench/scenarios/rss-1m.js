/**
 * `rss-1m`: --rss-messages × --msg-size B published with MPUB into a topic with one channel and
 * no consumer (all in memory: --mem-queue-size is 10 M), then --settle s of nothing. RSS from
 * /proc/<pid>/status before, right after the publish, and after the settle.
 */
import { httpRequest } from '../lib/broker.js';
import { int, seconds } from '../lib/options.js';
import { manualPhase, phase } from '../lib/phase.js';
import { TARGETS } from '../lib/targets.js';
import { fmtInt, mib, sleep } from '../lib/util.js';

/**
 * @import { ProcSample, Scenario } from '../lib/types.js'
 */

export const options = {
  rssMessages: int('messages to queue', 1_000_000),
  settle: seconds('wait after the publish before the last RSS', 10, { min: 0 }),
};

/** @type {Scenario} */
export default {
  name: 'rss-1m',
  description:
    "--rss-messages × --msg-size B via MPUB into a channel without consumer (in memory), then --settle s of nothing; the broker's RSS before, after the publish and after the settle, bytes per message, /stats depth",
  options,
  group: 'perf',
  budgetSeconds: (o) => o.duration * 6 + o.settle + 120,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await sleep(1000);
    const base = b.brokerSample();
    const pre = await b.publishPhase(topic, 'publish', {
      maxMessagesTotal: o.rssMessages,
      ms: (o.duration * 6 + 60) * 1000,
    });
    const p = phase(`publish ${fmtInt(o.rssMessages)}`, pre.rs, 'pub', pre.timeline, 0);
    if (p.msgs < o.rssMessages) throw new Error(`published ${p.msgs} of ${o.rssMessages}`);
    const after = b.brokerSample();
    p.kind = 'memory';
    const timeline = await b.tick('settle', [], o.settle * 1000);
    const settled = b.brokerSample();
    const s = manualPhase(`after ${o.settle} s settle`, 'memory', { msgs: p.msgs, timeline });
    let depth = null;
    let memory = null;
    try {
      const res = await httpRequest(
        b.nsqd.http,
        'GET',
        `/stats?format=json&topic=${encodeURIComponent(topic)}`,
        30_000,
      );
      /** @type {{ topics?: { topic_name: string, depth?: number, channels?: { channel_name: string, depth?: number }[] }[], memory?: unknown }} */
      const st = JSON.parse(res.body);
      const tp = (st.topics ?? []).find((x) => x.topic_name === topic);
      depth = {
        topic: tp?.depth ?? null,
        channel: tp?.channels?.find((c) => c.channel_name === channel)?.depth ?? null,
      };
      memory = st.memory ?? null;
    } catch (err) {
      result.notes.push(`rss-1m: /stats failed: ${/** @type {Error} */ (err).message}`);
    }
    /** @param {ProcSample | null} x */
    const per = (x) => (base && x ? Math.round((((x.rssKiB ?? 0) - (base.rssKiB ?? 0)) * 1024) / p.msgs) : null);
    result.memory = {
      messages: p.msgs,
      msgSize: o.msgSize,
      baseRssMiB: mib(base?.rssKiB),
      afterPublishRssMiB: mib(after?.rssKiB),
      afterSettleRssMiB: mib(settled?.rssKiB),
      peakRssMiB: mib(settled?.peakRssKiB),
      bytesPerMessageAfterPublish: per(after),
      bytesPerMessageAfterSettle: per(settled),
      depth,
      brokerMemoryStats: memory,
    };
    const M = result.memory;
    p.note = `RSS ${M.baseRssMiB} → ${M.afterPublishRssMiB} MiB (${M.bytesPerMessageAfterPublish} B/msg over base)`;
    s.note =
      `RSS ${M.afterSettleRssMiB} MiB (peak ${M.peakRssMiB}; ${M.bytesPerMessageAfterSettle} B/msg over base); ` +
      `depth ${depth?.channel ?? '?'} in ch`;
    if (s.broker) s.broker.rssKiB = settled?.rssKiB ?? s.broker.rssKiB;
    result.phases.push(p, s);
    if (M.afterSettleRssMiB !== null && M.afterSettleRssMiB * 1.048576 >= TARGETS.rss1mMB) {
      result.notes.push(`rss-1m: ${M.afterSettleRssMiB} MiB after settle ≥ ${TARGETS.rss1mMB} MB target`);
    }
  },
};
