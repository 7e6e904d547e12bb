/** `publish`: MPUB ingest only, for --duration s. */
import { phase } from '../lib/phase.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

/** @type {Scenario} */
export default {
  name: 'publish',
  description: 'publish only (--connections MPUB publishers), for --duration s',
  options: {},
  budgetSeconds: (o) => o.duration * 16 + 120,
  async run(b, result) {
    const { rs, timeline } = await b.publishPhase(result.topic, 'publish', { ms: b.opts.duration * 1000 });
    result.phases.push(phase('publish', rs, 'pub', timeline, 0));
  },
};
