/**
 * `policies`: publish and consume at once on a plain topic and on one with delivery policies
 * (issue 19: the channel's max_attempts and dead-letter topic, a max_depth with overflow=reject, a message_ttl), alternating on one broker, so
 * the two are measured side by side under the same load.
 */
import { bothPhases } from './both.js';

/**
 * @import { Scenario, RunningResult } from '../lib/types.js'
 */

/** @type {Scenario} */
export default {
  name: 'policies',
  description:
    'both (publish + consume) on a plain topic, then on one with max_attempts, a dead-letter topic, a max_depth cap and a message_ttl, twice, --duration s each',
  options: {},
  budgetSeconds: (o) => o.duration * 4 * 16 + 120,
  async run(b, result) {
    const policed = `${result.topic}_policies`;
    const q = `topic=${encodeURIComponent(policed)}&channel=${encodeURIComponent(result.channel)}`;
    await b.createTopicChannel(policed, result.channel);
    await b.http(
      'POST',
      `/channel/config?${q}&max_attempts=5&dead_letter_topic=${encodeURIComponent(`${policed}_dead`)}`,
    );
    // Never reached, never expiring: every publish pays the cap check, every delivery the TTL check.
    await b.http(
      'POST',
      `/topic/config?topic=${encodeURIComponent(policed)}&max_depth=1000000000&overflow=reject&message_ttl=1h`,
    );
    for (let round = 1; round <= 2; round++) {
      // ABBA: the backlog (and RSS) grows through the run, so neither side always goes later.
      /** @type {[string, string][]} */
      const pair = [
        ['plain', result.topic],
        ['policies', policed],
      ];
      for (const [label, topic] of round === 1 ? pair : pair.reverse()) {
        /** @type {RunningResult} */
        const scratch = { ...result, phases: [], notes: [] };
        await bothPhases(b, topic, result.channel, scratch);
        for (const p of scratch.phases) result.phases.push({ ...p, phase: `${label} ${p.phase} (${round})` });
      }
    }
    await b.deleteTopic(policed);
  },
};
