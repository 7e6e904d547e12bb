import type { ClusterSnapshot } from './cluster.js';

/**
 * Counts per rate series between two samples: differenced per node (and per client for finishes), then summed.
 * A counter that went down restarted; one seen first counts nothing, except a client connected since the last sample.
 * Keys: t:<topic>, c:<topic>/<channel> (ingress), e:<topic>/<channel> (finished), n:<node>, all (NSQ's counter).
 */

export const TOTAL_SERIES = 'all';

export function topicSeries(topic: string): string {
  return `t:${topic}`;
}

export function ingressSeries(topic: string, channel: string): string {
  return `c:${topic}/${channel}`;
}

export function egressSeries(topic: string, channel: string): string {
  return `e:${topic}/${channel}`;
}

export function nodeSeries(node: string): string {
  return `n:${node}`;
}

export class CounterDeltas {
  /** Per-node (and per-client) counter values of the previous sample. */
  private last = new Map<string, number>();
  private lastAt: number | null = null;

  /** The counts since the previous call, per series (0 when idle). */
  next(snap: ClusterSnapshot): Map<string, number> {
    const previous = this.last;
    const current = new Map<string, number>();
    const counts = new Map<string, number>();
    const add = (series: string, id: string, value: number, isNew = false): void => {
      current.set(id, value);
      const before = previous.get(id);
      if (before === undefined && !isNew) return;
      const delta = before === undefined || value < before ? value : value - before;
      counts.set(series, (counts.get(series) ?? 0) + delta);
    };
    // connect_ts has whole seconds: a client seen now and not before, connected in or after the
    // previous sample's second, was not there to be seen.
    const since = this.lastAt === null ? Number.POSITIVE_INFINITY : Math.floor(this.lastAt / 1000);

    counts.set(TOTAL_SERIES, 0);
    for (const n of snap.nodes) if (n.reachable) counts.set(nodeSeries(n.id), 0);
    for (const t of snap.topics) {
      for (const n of t.nodes) {
        add(topicSeries(t.name), `t|${n.node}|${t.name}`, n.messageCount);
        add(nodeSeries(n.node), `n|${n.node}|${t.name}`, n.messageCount);
      }
      for (const c of t.channels) {
        const egress = egressSeries(t.name, c.name);
        counts.set(egress, 0);
        for (const n of c.nodes) {
          const id = `c|${n.node}|${t.name}/${c.name}`;
          add(ingressSeries(t.name, c.name), id, n.messageCount);
          add(TOTAL_SERIES, `all|${id}`, n.messageCount);
        }
        for (const k of c.clients) {
          const id = `e|${k.node}|${t.name}/${c.name}|${k.clientId}|${k.remoteAddress}|${k.connectTs}`;
          add(egress, id, k.finishCount, k.connectTs >= since);
        }
      }
    }
    this.last = current;
    this.lastAt = snap.at;
    return counts;
  }
}
