/** `idle-topics`: --idle-topics topics via POST /topic/create (8 at a time), --idle-settle s, then --idle-seconds. */
import { httpRequest } from '../lib/broker.js';
import { int, seconds } from '../lib/options.js';
import { manualPhase } from '../lib/phase.js';
import { fmtInt, mib, sleep } from '../lib/util.js';
import { idleSeconds } from './idle-conns.js';
import { createTopicsPhase } from './stats-scrape.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  idleTopics: int('topics to create', 10_000),
  idleTopicChannels: int('channels per topic', 0, { min: 0 }),
  idleSeconds,
  // V8's memory reducer collects the creation burst's garbage 5-20 s after it (1-3 % of a 10 s
  // window, on its GC threads); the idle figure is the steady state after that.
  idleSettle: seconds('wait after the creation before the idle measurement', 30, { min: 0 }),
};

/** @type {Scenario} */
export default {
  name: 'idle-topics',
  description:
    "--idle-topics topics via POST /topic/create (8 at a time, --idle-topic-channels channels each), --idle-settle s, then --idle-seconds measured: the create rate, the broker's CPU and RSS while idle",
  options,
  group: 'perf',
  budgetSeconds: (o) => o.idleSeconds + o.idleSettle + 480,
  async run(b, result) {
    const o = b.opts;
    const { topic } = result;
    await b.deleteTopic(topic);
    const { phase: cp, created } = await createTopicsPhase(b, `create ${fmtInt(o.idleTopics)}`, {
      prefix: `${topic}_`,
      topics: o.idleTopics,
      channels: o.idleTopicChannels,
      msgsPerTopic: 0,
      limitMs: 300_000,
    });
    cp.kind = 'idle';
    cp.note = `HTTP requests, 8 at a time (${o.idleTopicChannels} channels/topic)`;
    await sleep(o.idleSettle * 1000);
    const timeline = await b.tick('idle', [], o.idleSeconds * 1000);
    const idle = manualPhase(`idle ${o.idleSeconds} s`, 'idle', { msgs: o.idleTopics, timeline });
    let topics = null;
    try {
      const res = await httpRequest(b.nsqd.http, 'GET', '/stats?format=json&include_clients=false', 30_000);
      topics = (JSON.parse(res.body).topics ?? []).length;
    } catch (err) {
      result.notes.push(`idle-topics: /stats failed: ${/** @type {Error} */ (err).message}`);
    }
    result.idle = { topics, idleCpuPct: idle.broker?.cpuPct ?? null, rssMiB: mib(idle.broker?.rssKiB) };
    idle.note = `broker has ${topics === null ? '?' : fmtInt(topics)} topics`;
    result.phases.push(cp, idle);
    if (created < o.idleTopics) result.notes.push('idle-topics: not every topic was created');
  },
};
