/**
 * `consume`: pre-publish (--messages, or for --duration s but never more than the broker keeps
 * in memory), then consume all of it and time that.
 */
import { sum } from '../lib/generators.js';
import { phase } from '../lib/phase.js';
import { fmtInt, log } from '../lib/util.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { Scenario, ScenarioResult } from '../lib/types.js'
 */

/**
 * The two phases (`prepublish`, `consume`) on `topic`; the mem0 scenario runs them too.
 * @param {Bench} b
 * @param {string} topic
 * @param {string} channel
 * @param {ScenarioResult} result
 */
export async function consumePhases(b, topic, channel, result) {
  const o = b.opts;
  // Time-based by default, but never more than the broker keeps in memory.
  const pre = await b.publishPhase(topic, 'prepublish', {
    maxMessagesTotal: o.messages > 0 ? o.messages : o.memQueueSize,
    ms: o.messages > 0 ? (o.duration * 6 + 60) * 1000 : o.duration * 1000,
  });
  const prePhase = phase('prepublish', pre.rs, 'pub', pre.timeline, 0);
  result.phases.push(prePhase);
  const target = prePhase.msgs;
  if (o.messages > 0 && target < o.messages) throw new Error(`pre-published ${target} of ${o.messages} messages`);
  log(`  pre-published ${fmtInt(target)} messages; consuming them`);

  const subs = b.gens('sub', o.connections, { topic, channel });
  await b.startAll(subs);
  const limitMs = (o.duration * 6 + 30) * 1000;
  const timeline = await b.tick('consume', [subs], limitMs, { until: () => sum(subs, 'msgs') >= target });
  const complete = sum(subs, 'msgs') >= target;
  for (const g of subs) g.stop();
  const rs = await b.results(subs);
  const p = phase('consume', rs, 'sub', timeline, 0);
  p.expected = target;
  p.complete = complete;
  if (!complete) {
    result.ok = false;
    result.notes.push(`consumed ${p.msgs} of ${target} messages within ${limitMs / 1000} s`);
  }
  result.phases.push(p);
}

/** @type {Scenario} */
export default {
  name: 'consume',
  description:
    'pre-publish --messages (default: whatever the publishers send in --duration s, at most --mem-queue-size), then consume them all and time it',
  options: {},
  budgetSeconds: (o) => o.duration * 16 + 120,
  run: (b, result) => consumePhases(b, result.topic, result.channel, result),
};
