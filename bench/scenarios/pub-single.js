/** `pub-single`: single-message PUB, --pub-window in flight per connection, per --pub-connections. */
import { PERF_WORKER } from '../lib/generators.js';
import { int, intList } from '../lib/options.js';
import { phase } from '../lib/phase.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  pubConnections: intList('connection counts, one phase each', '1,2'),
  pubWindow: int('PUBs in flight per connection', 64),
};

/** @type {Scenario} */
export default {
  name: 'pub-single',
  description:
    'per C of --pub-connections: C connections of single-message PUB, --pub-window in flight each, every chunk of OKs read answered by as many PUBs in one write; acknowledged msgs/s',
  options,
  group: 'perf',
  budgetSeconds: (o) => o.pubConnections.length * (o.duration + 30) + 60,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic);
    for (const c of o.pubConnections) {
      const t = `${topic}_${c}`;
      await b.createTopicChannel(t, channel);
      const gens = Array.from({ length: c }, (_, i) =>
        b.worker(PERF_WORKER, 'pub1', i, `pub1#${i}`, { topic: t, window: o.pubWindow }),
      );
      const { rs, timeline } = await b.timed(`PUB ${c} × ${o.pubWindow}`, gens, o.duration * 1000);
      const p = phase(`${c} conn × ${o.pubWindow} in flight`, rs, 'pub', timeline, 0, gens);
      p.kind = 'throughput';
      p.connections = c;
      p.window = o.pubWindow;
      p.note = `raw PUB, ${o.msgSize} B, refilled per read chunk`;
      result.phases.push(p);
      await b.deleteTopic(t);
    }
  },
};
