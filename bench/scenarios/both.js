/** `both`: publishers and consumers at once for --duration s. */
import { waitReady } from '../lib/generators.js';
import { phase } from '../lib/phase.js';
import { fmtInt } from '../lib/util.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { Scenario, ScenarioResult } from '../lib/types.js'
 */

/**
 * The progress line of a publish-and-consume phase: rate column 0 in, column 1 out.
 * @param {number[]} rates
 * @param {number[]} totals
 */
export function bothLine(rates, totals) {
  return `in ${fmtInt(rates[0]).padStart(10)} msg/s  out ${fmtInt(rates[1]).padStart(10)} msg/s  backlog ${fmtInt(totals[0] - totals[1])}`;
}

/**
 * The two rows (`in`, `out`) on `topic`; the mem0 scenario runs them too.
 * @param {Bench} b
 * @param {string} topic
 * @param {string} channel
 * @param {ScenarioResult} result
 */
export async function bothPhases(b, topic, channel, result) {
  const o = b.opts;
  const subs = b.gens('sub', o.connections, { topic, channel });
  const pubs = b.gens('pub', o.connections, { topic });
  await waitReady([...subs, ...pubs]);
  for (const g of subs) g.start();
  for (const g of pubs) g.start();
  const timeline = await b.tick('both', [pubs, subs], o.duration * 1000, { format: bothLine });
  for (const g of pubs) g.stop();
  for (const g of subs) g.stop();
  const [prs, srs] = await Promise.all([b.results(pubs), b.results(subs)]);
  const inPhase = phase('in', prs, 'pub', timeline, 0);
  const outPhase = phase('out', srs, 'sub', timeline, 1);
  result.phases.push(inPhase, outPhase);
  result.backlog = inPhase.msgs - outPhase.msgs;
}

/** @type {Scenario} */
export default {
  name: 'both',
  description: 'consumers and publishers at once for --duration s: in and out rates, the backlog left',
  options: {},
  budgetSeconds: (o) => o.duration * 16 + 120,
  run: (b, result) => bothPhases(b, result.topic, result.channel, result),
};
