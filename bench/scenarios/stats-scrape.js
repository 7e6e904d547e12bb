/**
 * `stats-scrape`: --scrape-topics × --scrape-channels over HTTP, --scrape-messages per topic (one
 * binary /mpub), then --scrape-count sequential GET /stats?format=json and GET /metrics, each
 * timed (after one untimed warm-up request per endpoint).
 */
import { httpRequest } from '../lib/broker.js';
import { HTTP_WORKER, sum } from '../lib/generators.js';
import { int } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmtInt, log } from '../lib/util.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  scrapeTopics: int('topics to create', 1000),
  scrapeChannels: int('channels per topic', 3, { min: 0 }),
  scrapeMessages: int('messages published per topic', 5, { min: 0 }),
  scrapeCount: int('sequential GETs per endpoint', 20),
};

/**
 * `topics` topics named `${prefix}<i>` with `channels` channels each (ch0…) and `msgsPerTopic`
 * messages (one binary /mpub) each, over HTTP, 8 requests at a time; the row counts requests.
 * The idle-topics scenario makes its topics with it too.
 * @param {Bench} b
 * @param {string} name of the row
 * @param {{ prefix: string, topics: number, channels: number, msgsPerTopic: number, limitMs: number }} what
 */
export async function createTopicsPhase(b, name, { prefix, topics, channels, msgsPerTopic, limitMs }) {
  const create = [
    b.worker(HTTP_WORKER, 'create', 0, 'create#0', {
      topicPrefix: prefix,
      topicCount: topics,
      channelCount: channels,
      msgsPerTopic,
      concurrency: 8,
    }),
  ];
  await b.startAll(create);
  const timeline = await b.tick('create', [create], limitMs, { until: () => create[0].settled, unit: 'req/s' });
  const rs = await b.results(create);
  const p = phase(name, rs, 'pub', timeline, 0, create);
  p.bytes = 0;
  p.mibPerSec = 0;
  return { phase: p, created: sum(create, 'msgs') };
}

/** @type {Scenario} */
export default {
  name: 'stats-scrape',
  description:
    'create --scrape-topics × --scrape-channels over HTTP (8 requests at a time), publish --scrape-messages per topic, then time --scrape-count GET /stats?format=json and GET /metrics: p50 / p99 / max and response size',
  options,
  budgetSeconds: (o) => o.duration * 30 + 240,
  async run(b, result) {
    const o = b.opts;
    const { topic } = result;
    await b.deleteTopic(topic); // the scenario's own topics are `${topic}_<i>`
    const prefix = `${topic}_`;
    const { phase: cp } = await createTopicsPhase(b, 'create', {
      prefix,
      topics: o.scrapeTopics,
      channels: o.scrapeChannels,
      msgsPerTopic: o.scrapeMessages,
      limitMs: (o.duration * 6 + 60) * 1000,
    });
    cp.note =
      `requests: ${fmtInt(o.scrapeTopics)} topics × ${o.scrapeChannels} channels + ${o.scrapeMessages} msgs/topic ` +
      `(${fmtInt(cp.msgsPerSec)} req/s, 8 at a time)`;
    result.phases.push(cp);

    // What the broker reports now (sanity: the scrape covers what was created).
    try {
      const res = await httpRequest(b.nsqd.http, 'GET', '/stats?format=json', 30_000);
      /** @type {{ topics?: { channels?: unknown[], message_count?: number }[] }} */
      const st = JSON.parse(res.body);
      const topics = st.topics ?? [];
      result.brokerHas = {
        topics: topics.length,
        channels: topics.reduce((a, t) => a + (t.channels?.length ?? 0), 0),
        messages: topics.reduce((a, t) => a + (t.message_count ?? 0), 0),
      };
      log(
        `  broker has ${fmtInt(result.brokerHas.topics)} topics, ${fmtInt(result.brokerHas.channels)} channels, ` +
          `${fmtInt(result.brokerHas.messages)} messages`,
      );
    } catch (err) {
      result.notes.push(`could not read /stats after setup: ${/** @type {Error} */ (err).message}`);
    }

    for (const p of ['/stats?format=json', '/metrics']) {
      const gens = [b.worker(HTTP_WORKER, 'scrape', 0, 'scrape#0', { paths: [p], count: o.scrapeCount })];
      await b.startAll(gens);
      const timeline = await b.tick(`GET ${p}`, [gens], (o.duration * 6 + 60) * 1000, {
        until: () => gens[0].settled,
        unit: 'req/s',
      });
      const rs = await b.results(gens);
      const ph = phase(`GET ${p}`, rs, 'pub', timeline, 0, gens);
      const s = rs[0].scrapes?.[0];
      if (s === undefined) throw new Error(`GET ${p}: the scrape reported no latencies`);
      ph.latency = s;
      ph.responseBytes = s.bytes;
      ph.note =
        `p50 ${s.p50Ms?.toFixed(1)} ms, p99 ${s.p99Ms?.toFixed(1)} ms, max ${s.maxMs?.toFixed(1)} ms ` +
        `(warm-up ${s.warmupMs.toFixed(0)} ms); ` +
        `${fmtInt(s.bytes / 1024)} KiB/response`;
      result.phases.push(ph);
      if ((s.p99Ms ?? 0) >= 50) result.notes.push(`GET ${p}: p99 ${s.p99Ms?.toFixed(1)} ms ≥ 50 ms target`);
    }
    if (b.nsqd.external) {
      for (let i = 0; i < o.scrapeTopics; i++) await b.deleteTopic(`${prefix}${i}`);
    }
  },
};
