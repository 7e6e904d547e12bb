/**
 * `mem0`: --mem-queue-size=0 (every publish answered once written; fsync per nsqd's default
 * --sync-every): the consume scenario's phases (publish only for --duration s, or --messages,
 * into a channel without consumer; then consume only, that whole backlog from disk), then the
 * both scenario's (publish and consume at once for --duration s) on a second topic.
 */
import { TARGETS } from '../lib/targets.js';
import { fmtInt } from '../lib/util.js';
import { bothPhases } from './both.js';
import { consumePhases } from './consume.js';

/**
 * @import { PhaseRow, Scenario } from '../lib/types.js'
 */

/** @type {Record<string, string>} */
const NAMES = { prepublish: 'publish only', consume: 'consume only', in: 'both: in', out: 'both: out' };

/** @type {Scenario} */
export default {
  name: 'mem0',
  description:
    'on a broker with --mem-queue-size=0: publish only, consume only (the backlog, from disk), then publish and consume at once; each against the real nsqd',
  options: {},
  group: 'storage',
  broker: () => ({ memQueueSize: 0, flags: [] }),
  budgetSeconds: (o) => o.duration * 16 + 120,
  async run(b, result) {
    const { topic, channel } = result;
    await consumePhases(b, topic, channel, result);
    const both = `${topic}_both`;
    await b.createTopicChannel(both, channel);
    await bothPhases(b, both, channel, result);
    for (const p of result.phases) {
      p.phase = NAMES[p.phase] ?? p.phase;
      p.kind = 'throughput';
    }
    const [pub, con, bin, bout] = result.phases;
    pub.note = `no consumer; vs real nsqd ${fmtInt(TARGETS.mem0In)}`;
    con.note = `backlog of ${fmtInt(con.expected ?? con.msgs)} from disk; vs real nsqd ${fmtInt(TARGETS.mem0Out)}`;
    bin.note = `${b.opts.connections} pub + ${b.opts.connections} sub conns`;
    bout.note = `target ≥ ${fmtInt(TARGETS.mem0BothOut)} (real nsqd ~${fmtInt(TARGETS.nsqdBothOut)})`;
    /**
     * @param {PhaseRow | undefined} p
     * @param {number} target
     * @param {string} what
     */
    const miss = (p, target, what) => {
      if (p !== undefined && p.msgsPerSec < target) {
        result.notes.push(`${what} ${fmtInt(p.msgsPerSec)} msgs/s < ${fmtInt(target)} target`);
      }
    };
    miss(pub, TARGETS.mem0In, 'publish only');
    miss(con, TARGETS.mem0Out, 'consume only');
    miss(bout, TARGETS.mem0BothOut, 'out while publishing');
  },
};
