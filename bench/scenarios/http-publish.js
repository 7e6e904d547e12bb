/**
 * `http-publish`: POST /pub and binary POST /mpub with 1 and 16 (--http-clients) keep-alive
 * clients, each one request at a time, spread over at most --http-procs processes. Each phase
 * publishes to its own topic (with channel `ch`, deleted afterwards, so memory does not pile up).
 */
import os from 'node:os';
import { HTTP_WORKER } from '../lib/generators.js';
import { choice, int, intList } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmt1, fmtInt, round } from '../lib/util.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  httpClients: intList('concurrent keep-alive clients, one phase each', '1,16', { message: 'e.g. 1,16' }),
  httpProcs: int(
    'at most N generator processes per phase, the clients spread over them',
    Math.max(1, Math.min(4, os.cpus().length)),
    {
      defaultText: 'cores, max 4',
    },
  ),
  httpClient: choice("node:http with a keep-alive Agent, or Node's built-in (undici) fetch", 'agent', [
    'agent',
    'fetch',
  ]),
};

/** @type {Scenario} */
export default {
  name: 'http-publish',
  description:
    'POST /pub?topic=T (one --msg-size body) and POST /mpub?topic=T&binary=true (--batch-size messages) with each number of --http-clients, one request at a time per client, --duration s per phase',
  options,
  budgetSeconds: (o) => o.duration * 16 + 120,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic); // only the per-phase topics below are used
    for (const mode of ['pub', 'mpub']) {
      for (const clients of o.httpClients) {
        const label = `${mode} ×${clients}`;
        const t = `${topic}_${mode}_${clients}`;
        await b.createTopicChannel(t, channel);
        const procs = Math.min(clients, o.httpProcs);
        const gens = Array.from({ length: procs }, (_, i) => {
          const n = Math.floor(clients / procs) + (i < clients % procs ? 1 : 0);
          return b.worker(HTTP_WORKER, 'http-pub', i, `http-${mode}#${i}`, {
            topic: t,
            mode,
            clients: n,
            httpClient: o.httpClient,
          });
        });
        const { rs, timeline } = await b.timed(label, gens, o.duration * 1000);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        const reqs = rs.reduce((a, r) => a + r.batches, 0);
        const cpuSum = p.generators.reduce((a, g) => a + g.cpuPct, 0);
        p.requests = reqs;
        p.requestsPerSec = p.seconds > 0 ? round(reqs / p.seconds, 0) : 0;
        p.clients = clients;
        p.processes = procs;
        p.httpClient = o.httpClient;
        p.note =
          `${fmtInt(p.requestsPerSec)} req/s, ${clients} client${clients > 1 ? 's' : ''} in ${procs} proc${procs > 1 ? 's' : ''} ` +
          `(${o.httpClient}), gen CPU sum ${fmt1(cpuSum)}%`;
        result.phases.push(p);
        await b.deleteTopic(t);
      }
    }
  },
};
