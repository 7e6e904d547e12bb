/**
 * `clients`: @nsq-ts/client against nsqjs on the same broker, one client process per phase, each
 * phase on its own topic (deleted afterwards): single publishes (--client-window outstanding),
 * batches of --batch-size (--pipeline outstanding), and a consumer (maxInFlight --rdy, a no-op
 * handler that finishes) draining --client-messages pre-published with raw MPUB.
 */
import { CLIENT_WORKER, sum } from '../lib/generators.js';
import { choiceList, int } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmtInt } from '../lib/util.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  clients: choiceList('which client libraries', ['ours', 'nsqjs']),
  clientWindow: int('single publishes outstanding', 1000),
  clientMessages: int('messages pre-published per consumer', 1_000_000),
};

/** @type {Scenario} */
export default {
  name: 'clients',
  description:
    'per client of --clients (ours: @nsq-ts/client, nsqjs), one process per phase: single-message publish with --client-window outstanding, publishMany of --batch-size with --pipeline outstanding, and a consumer draining --client-messages',
  options,
  budgetSeconds: (o) => o.duration * 30 + 240,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic);
    /**
     * @param {string} client
     * @param {string} role
     * @param {string} t
     * @param {Record<string, unknown>} [extra]
     */
    const clientGen = (client, role, t, extra = {}) =>
      b.worker(CLIENT_WORKER, role, 0, `${client}-${role}`, {
        client,
        topic: t,
        channel,
        window: o.clientWindow,
        ...extra,
      });
    for (const role of ['pub', 'mpub']) {
      for (const client of o.clients) {
        const label = `${client} ${role === 'pub' ? 'publish' : `publishMany ${o.batchSize}`}`;
        const t = `${topic}_${client}_${role}`;
        await b.createTopicChannel(t, channel);
        const gens = [clientGen(client, role, t)];
        const { rs, timeline } = await b.timed(label, gens, o.duration * 1000);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        p.client = client;
        p.note =
          role === 'pub'
            ? `${fmtInt(o.clientWindow)} publishes outstanding`
            : `${o.pipeline} batches of ${o.batchSize} outstanding`;
        result.phases.push(p);
        await b.deleteTopic(t);
      }
    }
    for (const client of o.clients) {
      const label = `${client} consume`;
      const t = `${topic}_${client}_sub`;
      await b.createTopicChannel(t, channel);
      const prePhase = await b.prepublish(
        t,
        `prepublish for ${client}`,
        o.clientMessages,
        (o.duration * 6 + 60) * 1000,
      );
      prePhase.note = `raw MPUB, ${o.connections} connections`;
      result.phases.push(prePhase);
      const gens = [clientGen(client, 'sub', t, { maxMessages: o.clientMessages })];
      await b.startAll(gens);
      const limitMs = (o.duration * 6 + 30) * 1000;
      const timeline = await b.tick(label, [gens], limitMs, { until: () => gens[0].settled });
      const complete = sum(gens, 'msgs') >= o.clientMessages;
      for (const g of gens) g.stop();
      const rs = await b.results(gens);
      const p = phase(label, rs, 'sub', timeline, 0, gens);
      p.client = client;
      p.expected = o.clientMessages;
      p.complete = complete;
      p.note = `maxInFlight ${o.rdy}, no-op handler + FIN; from consumer creation to last message`;
      if (!complete) {
        result.ok = false;
        result.notes.push(`${client}: consumed ${p.msgs} of ${o.clientMessages} within ${limitMs / 1000} s`);
      }
      result.phases.push(p);
      await b.deleteTopic(t);
    }
  },
};
