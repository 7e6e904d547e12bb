/**
 * The scenario registry: every scenario in the order `--scenario all` runs them, and every option
 * of the run and of the scenarios (what the parser accepts and the Options type is made of).
 * A new scenario is a file beside this one exporting its Scenario (and its options), added here.
 */
import { RUN_OPTIONS } from '../lib/options.js';
import * as both from './both.js';
import * as clients from './clients.js';
import * as consume from './consume.js';
import * as durable from './durable.js';
import * as failover from './failover.js';
import * as fanout from './fanout.js';
import * as hostileMemory from './hostile-memory.js';
import * as httpPublish from './http-publish.js';
import * as idleConns from './idle-conns.js';
import * as idleTopics from './idle-topics.js';
import * as latency from './latency.js';
import * as mem0 from './mem0.js';
import * as overflow from './overflow.js';
import * as policies from './policies.js';
import * as policyMemory from './policy-memory.js';
import * as pubSingle from './pub-single.js';
import * as publish from './publish.js';
import * as replication from './replication.js';
import * as rss1m from './rss-1m.js';
import * as scale from './scale.js';
import * as soak from './soak.js';
import * as startup from './startup.js';
import * as statsScrape from './stats-scrape.js';
import * as transport from './transport.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

/** @type {Scenario[]} */
export const SCENARIOS = [
  publish.default,
  consume.default,
  both.default,
  httpPublish.default,
  statsScrape.default,
  clients.default,
  transport.default,
  fanout.default,
  pubSingle.default,
  latency.default,
  rss1m.default,
  idleConns.default,
  idleTopics.default,
  hostileMemory.default,
  overflow.default,
  policies.default,
  policyMemory.default,
  mem0.default,
  durable.default,
  replication.default,
  failover.default,
  soak.default,
  scale.default,
  startup.default,
];

export const OPTIONS = {
  ...RUN_OPTIONS,
  ...httpPublish.options,
  ...statsScrape.options,
  ...clients.options,
  ...transport.options,
  ...fanout.options,
  ...pubSingle.options,
  ...latency.options,
  ...rss1m.options,
  ...idleConns.options,
  ...idleTopics.options,
  ...hostileMemory.options,
  ...overflow.options,
  ...policyMemory.options,
  ...durable.options,
  ...replication.options,
  ...failover.options,
  ...soak.options,
  ...startup.options,
  ...scale.options,
};

for (const s of SCENARIOS) {
  for (const key of Object.keys(s.options)) {
    if (!(key in OPTIONS)) throw new Error(`scenario ${s.name}: option ${key} is missing from OPTIONS`);
  }
}

/** What the option parser and --help read. */
export const REGISTRY = { scenarios: SCENARIOS, options: OPTIONS };
