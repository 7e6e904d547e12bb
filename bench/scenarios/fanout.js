/**
 * `fanout`: one topic, N channels (--fanout-channels), one consumer connection per channel (RDY
 * --rdy, FIN everything), --connections MPUB publishers at full speed, --duration s per N. Rows:
 * published msgs/s, and delivered msgs/s per channel (mean; each channel in the note).
 */
import { waitReady } from '../lib/generators.js';
import { intList } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmtInt, round } from '../lib/util.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  fanoutChannels: intList('channel counts, one phase each', '1,2,4'),
};

/** @type {Scenario} */
export default {
  name: 'fanout',
  description:
    'per N of --fanout-channels: one topic with channels ch0…, one consumer per channel, --connections MPUB publishers at full speed for --duration s; msgs/s in, delivered msgs/s per channel',
  options,
  group: 'perf',
  budgetSeconds: (o) => o.fanoutChannels.length * (o.duration + 40) + 60,
  async run(b, result) {
    const o = b.opts;
    const { topic } = result;
    await b.deleteTopic(topic);
    for (const n of o.fanoutChannels) {
      const t = `${topic}_${n}ch`;
      await b.http('POST', `/topic/create?topic=${encodeURIComponent(t)}`);
      for (let i = 0; i < n; i++) {
        await b.http('POST', `/channel/create?topic=${encodeURIComponent(t)}&channel=ch${i}`);
      }
      const subs = Array.from({ length: n }, (_, i) => b.gen('sub', i, { topic: t, channel: `ch${i}` }));
      const pubs = b.gens('pub', o.connections, { topic: t });
      await waitReady([...subs, ...pubs]);
      for (const g of subs) g.start();
      for (const g of pubs) g.start();
      const label = `fanout ${n} ch`;
      const timeline = await b.tick(label, [pubs, ...subs.map((s) => [s])], o.duration * 1000, {
        format: (r) =>
          `in ${fmtInt(r[0]).padStart(9)} msg/s  out/ch ${r
            .slice(1)
            .map((x) => fmtInt(x))
            .join(' / ')}`,
      });
      for (const g of pubs) g.stop();
      for (const g of subs) g.stop();
      const [prs, srs] = await Promise.all([b.results(pubs), b.results(subs)]);
      const inPhase = phase(`${n} ch: in`, prs, 'pub', timeline, 0, pubs);
      inPhase.kind = 'throughput';
      inPhase.channels = n;
      const perChannel = srs.map((r, i) => phase('out', [r], 'sub', timeline, i + 1, [subs[i]]));
      const outMsgs = perChannel.reduce((a, p) => a + p.msgs, 0);
      const outPhase = phase('out', srs, 'sub', timeline, 1, subs);
      outPhase.phase = `${n} ch: out/ch`;
      outPhase.kind = 'throughput';
      outPhase.channels = n;
      outPhase.msgs = Math.round(outMsgs / n);
      outPhase.bytes = Math.round(outPhase.bytes / n);
      outPhase.msgsPerSec = round(perChannel.reduce((a, p) => a + p.msgsPerSec, 0) / n, 0);
      outPhase.mibPerSec = round(perChannel.reduce((a, p) => a + p.mibPerSec, 0) / n, 2);
      outPhase.perChannel = perChannel.map((p, i) => ({ channel: `ch${i}`, msgs: p.msgs, msgsPerSec: p.msgsPerSec }));
      outPhase.totalOutPerSec = round(
        perChannel.reduce((a, p) => a + p.msgsPerSec, 0),
        0,
      );
      outPhase.backlogPerChannel = Math.round(inPhase.msgs - outMsgs / n);
      inPhase.note = `${o.connections} MPUB conns, ${n} channel${n > 1 ? 's' : ''}`;
      outPhase.note =
        `mean per channel; ${perChannel.map((p) => fmtInt(p.msgsPerSec)).join(' / ')}; ` +
        `total out ${fmtInt(outPhase.totalOutPerSec)}/s; backlog/ch ~${fmtInt(outPhase.backlogPerChannel)}`;
      result.phases.push(inPhase, outPhase);
      await b.deleteTopic(t);
    }
  },
};
