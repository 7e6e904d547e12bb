/**
 * `latency`: per offered rate (--latency-rates), one consumer (RDY --rdy) on a fresh topic, then
 * one paced publisher (single PUBs, open loop, send time stamped in the body) for --duration s;
 * after it stops, the consumer gets up to 10 s to receive what was acknowledged. Latency =
 * receive − send on CLOCK_MONOTONIC, the first --latency-warmup s excluded.
 */
import { PERF_WORKER, waitReady } from '../lib/generators.js';
import { intList, seconds } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { TARGETS } from '../lib/targets.js';
import { fmtInt, sleep } from '../lib/util.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  latencyRates: intList('offered msgs/s, one phase each', '10000,50000,100000'),
  latencyWarmup: seconds('first seconds left out of the percentiles', 1, { min: 0 }),
};

/** @type {Scenario} */
export default {
  name: 'latency',
  description:
    'per rate of --latency-rates: one consumer and one open-loop publisher of single PUBs at that rate (a 1 ms timer writes what is due; the body carries the send time), --duration s; receive − send p50 / p99 / p99.9 / max',
  options,
  group: 'perf',
  budgetSeconds: (o) => o.latencyRates.length * (o.duration + 40) + 60,
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic);
    for (const rate of o.latencyRates) {
      const t = `${topic}_${rate}`;
      await b.createTopicChannel(t, channel);
      const sub = b.worker(PERF_WORKER, 'lat-sub', 0, 'lat-sub', {
        topic: t,
        channel,
        warmupMs: o.latencyWarmup * 1000,
        expected: Math.ceil(rate * o.duration * 1.1),
      });
      const pub = b.worker(PERF_WORKER, 'paced', 0, 'paced-pub', { topic: t, rate });
      await waitReady([sub, pub]);
      sub.start();
      pub.start();
      const label = `latency ${rate / 1000}k/s`;
      /**
       * @param {number[]} r
       * @param {number[]} totals
       */
      const format = (r, totals) =>
        `sent-acked ${fmtInt(r[0]).padStart(8)} msg/s  delivered ${fmtInt(r[1]).padStart(8)} msg/s  lag ${fmtInt(totals[0] - totals[1])}`;
      const timeline = await b.tick(label, [[pub], [sub]], o.duration * 1000, { format });
      pub.stop();
      const prs = await b.results([pub]);
      const acked = prs[0].msgs;
      const drainUntil = Date.now() + 10_000;
      while (sub.progress.msgs < acked && Date.now() < drainUntil && !sub.settled) await sleep(20);
      sub.stop();
      const srs = await b.results([sub]);
      const p = phase(`${rate / 1000}k/s offered`, prs, 'pub', timeline, 0, [pub]);
      const d = phase('out', srs, 'sub', timeline, 1, [sub]);
      const L = srs[0].latency;
      if (L === undefined) throw new Error('the latency consumer reported no latencies');
      p.kind = 'latency';
      p.offeredRate = rate;
      p.generators.push(...d.generators);
      p.delivered = srs[0].msgs;
      p.deliveredPerSec = d.msgsPerSec;
      p.latency = L;
      p.warmupSkipped = srs[0].warmupSkipped;
      p.publisher = { sent: prs[0].sent, maxOutstanding: prs[0].maxOutstanding, maxBurst: prs[0].maxBurst };
      p.note =
        `p50 ${L.p50Ms} / p99 ${L.p99Ms} / p999 ${L.p999Ms} / max ${L.maxMs} ms ` +
        `(${fmtInt(L.n)} msgs); delivered ${fmtInt(p.delivered)}`;
      if (p.delivered < acked) {
        result.notes.push(`latency ${rate}: delivered ${p.delivered} of ${acked} acknowledged within 10 s after stop`);
      }
      if (rate === 50_000 && L.p99Ms !== null && L.p99Ms >= TARGETS.latencyP99Ms) {
        result.notes.push(`latency at 50k/s: p99 ${L.p99Ms} ms ≥ ${TARGETS.latencyP99Ms} ms target`);
      }
      result.phases.push(p);
      await b.deleteTopic(t);
    }
  },
};
