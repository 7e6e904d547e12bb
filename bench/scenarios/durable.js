/**
 * `durable`: --mem-queue-size=0 --sync-every=1: per C in --durable-connections, C MPUB publisher
 * connections (--pipeline in flight each) for --duration s into a topic with a channel and no
 * consumer. nsqd answers a connection's MPUBs in order and decodes its next command only once the
 * previous one is stored, so at most one MPUB per connection waits for a flush: C is how many can
 * share one fsync.
 */
import { intList } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { TARGETS } from '../lib/targets.js';
import { fmtInt, round } from '../lib/util.js';

/**
 * @import { PhaseRow, Scenario } from '../lib/types.js'
 */

export const options = {
  durableConnections: intList('publisher connections, one phase each', '1,8,16'),
};

/** @type {Scenario} */
export default {
  name: 'durable',
  description:
    'on a broker with --mem-queue-size=0 --sync-every=1: per C of --durable-connections, C MPUB publishers for --duration s, so C publishers can share one group commit; msgs/s and MPUB/s',
  options,
  group: 'storage',
  broker: () => ({ memQueueSize: 0, flags: ['--sync-every=1'] }),
  budgetSeconds: (o) => o.durableConnections.length * (o.duration + 40) + 60,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic);
    for (const c of o.durableConnections) {
      const t = `${topic}_${c}`;
      await b.createTopicChannel(t, channel);
      const pubs = b.gens('pub', c, { topic: t });
      const { rs, timeline } = await b.timed(`durable ${c} conns`, pubs, o.duration * 1000);
      const p = phase(`MPUB, ${c} conn${c > 1 ? 's' : ''}`, rs, 'pub', timeline, 0, pubs);
      p.kind = 'throughput';
      p.connections = c;
      p.batchesPerSec = p.seconds > 0 ? round(rs.reduce((a, r) => a + r.batches, 0) / p.seconds, 0) : 0;
      p.note = `${o.batchSize} × ${o.msgSize} B, ${o.pipeline} in flight/conn; ${fmtInt(p.batchesPerSec)} MPUB/s`;
      result.phases.push(p);
      await b.deleteTopic(t);
    }
    /** @type {PhaseRow | null} */
    const best = result.phases.reduce(
      /** @param {PhaseRow | null} a */ (a, p) => (p.msgsPerSec > (a?.msgsPerSec ?? -1) ? p : a),
      null,
    );
    if (best !== null && best.msgsPerSec < TARGETS.durableIn) {
      result.notes.push(
        `best ${fmtInt(best.msgsPerSec)} msgs/s (${best.connections} conns) < ${fmtInt(TARGETS.durableIn)} target`,
      );
    }
  },
};
