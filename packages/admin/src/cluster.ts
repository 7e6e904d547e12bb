/**
 * The cluster as nsqadmin sees it, read only through nsqlookupd's and nsqd's HTTP APIs (nsq-spec
 * §6): nodes from every lookupd's /nodes (and the configured nsqds' /info), then every node's
 * /stats, summed per topic and channel with a per-node breakdown. A node or lookupd that does not
 * answer becomes an entry of `errors`; the rest of the cluster is still shown.
 */
import { formatHostPort } from '@nsq-ts/go-compat';
import { lookupProducers } from '@nsq-ts/http-client';
import type { LookupNode, StatsSnapshot } from '@nsq-ts/protocol';
import type { ClusterError, ClusterSnapshot, ClusterSources, LookupdSummary, LookupState } from './cluster-model.js';
import { byName, type NodeDraft, summarise } from './cluster-stats.js';
import type { NsqdInfo } from './nsq-types.js';
import { query, type Upstream } from './upstream.js';

export type * from './cluster-model.js';
export { compareVersions } from './cluster-stats.js';

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface LookupdNodes {
  readonly lookupds: LookupdSummary[];
  readonly nodes: NodeDraft[];
}

function sortById<T extends { id: string }>(list: T[]): T[] {
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export class ClusterReader {
  constructor(
    private readonly sources: ClusterSources,
    private readonly upstream: Upstream,
  ) {}

  /** Every lookupd's /nodes and /info, merged into one node list. */
  private async readLookupds(errors: ClusterError[]): Promise<LookupdNodes> {
    const nodes = new Map<string, NodeDraft>();
    const lookupds = await Promise.all(
      this.sources.lookupdHttpAddresses.map(async (address): Promise<LookupdSummary> => {
        const [listed, info] = await Promise.allSettled([
          this.upstream.get<{ producers: LookupNode[] | null }>(address, '/nodes'),
          this.upstream.get<{ version?: string }>(address, '/info'),
        ]);
        const version = info.status === 'fulfilled' ? (info.value.version ?? '') : '';
        if (listed.status === 'rejected') {
          const message = describe(listed.reason);
          errors.push({ source: 'lookupd', address, message });
          return { address, reachable: false, error: message, version, nodeCount: 0 };
        }
        const producers = listed.value.producers ?? [];
        for (const p of producers) {
          const id = formatHostPort(p.broadcast_address, p.http_port);
          let node = nodes.get(id);
          if (node === undefined) {
            node = {
              id,
              hostname: p.hostname,
              broadcastAddress: p.broadcast_address,
              tcpPort: p.tcp_port,
              httpPort: p.http_port,
              remoteAddress: p.remote_address,
              version: p.version,
              topics: new Map(),
            };
            nodes.set(id, node);
          }
          (p.topics ?? []).forEach((topic, i) => {
            node.topics.set(topic, node.topics.get(topic) === true || p.tombstones?.[i] === true);
          });
        }
        return { address, reachable: true, error: null, version, nodeCount: producers.length };
      }),
    );
    return { lookupds, nodes: [...nodes.values()] };
  }

  /** Every node: from the lookupds' /nodes and the configured nsqds' /info. */
  private async readNodes(errors: ClusterError[]): Promise<LookupdNodes> {
    const { lookupds, nodes: listed } = await this.readLookupds(errors);
    const nodes = new Map(listed.map((n) => [n.id, n]));
    await Promise.all(
      this.sources.nsqdHttpAddresses.map(async (address) => {
        if (nodes.has(address)) return;
        try {
          const info = await this.upstream.get<NsqdInfo>(address, '/info');
          const id = formatHostPort(info.broadcast_address, info.http_port);
          if (nodes.has(id)) return;
          nodes.set(address, {
            id: address,
            hostname: info.hostname,
            broadcastAddress: info.broadcast_address,
            tcpPort: info.tcp_port,
            httpPort: info.http_port,
            remoteAddress: '',
            version: info.version,
            topics: new Map(),
          });
        } catch (err) {
          errors.push({ source: 'nsqd', address, message: describe(err) });
        }
      }),
    );
    return { lookupds, nodes: sortById([...nodes.values()]) };
  }

  /** The HTTP addresses of every node the lookupds list or nsqadmin was given. */
  async nodeAddresses(errors: ClusterError[]): Promise<string[]> {
    return (await this.readNodes(errors)).nodes.map((n) => n.id);
  }

  /** The whole cluster: nodes, topics with their channels and clients, and what failed. */
  async snapshot(): Promise<ClusterSnapshot> {
    const errors: ClusterError[] = [];
    const { lookupds, nodes: drafts } = await this.readNodes(errors);
    const stats = await Promise.all(
      drafts.map(async (node): Promise<StatsSnapshot | string> => {
        try {
          return await this.upstream.get<StatsSnapshot>(node.id, '/stats?format=json');
        } catch (err) {
          const message = describe(err);
          errors.push({ source: 'nsqd', address: node.id, message });
          return message;
        }
      }),
    );

    const { topics: list, deadLetterTopics, nodes, totalMessages } = summarise(drafts, stats);
    return {
      at: Date.now(),
      ratesAt: null,
      rateWindowMs: 0,
      sampleIntervalMs: 0,
      totalMessages,
      totalRate: null,
      topics: list,
      deadLetterTopics,
      nodes,
      lookupds,
      errors,
    };
  }

  /** Topics and channels registered in the lookupds (also ones no nsqd has), with their producers. */
  async lookup(): Promise<LookupState> {
    const errors: ClusterError[] = [];
    const topics = new Map<string, Set<string>>();
    const [{ nodes }] = await Promise.all([
      this.readLookupds(errors),
      ...this.sources.lookupdHttpAddresses.map(async (lookupd) => {
        try {
          const res = await this.upstream.get<{ topics: string[] | null }>(lookupd, '/topics');
          await Promise.all(
            (res.topics ?? []).map(async (topic) => {
              const channels = topics.get(topic) ?? new Set<string>();
              topics.set(topic, channels);
              const c = await this.upstream.get<{ channels: string[] | null }>(lookupd, `/channels${query({ topic })}`);
              for (const channel of c.channels ?? []) channels.add(channel);
            }),
          );
        } catch (err) {
          errors.push({ source: 'lookupd', address: lookupd, message: describe(err) });
        }
      }),
    ]);
    const producers = (topic: string): string[] =>
      nodes
        .filter((n) => n.topics.get(topic) === false)
        .map((n) => n.id)
        .sort();
    return {
      lookupds: [...this.sources.lookupdHttpAddresses],
      topics: [...topics]
        .map(([name, channels]) => ({ name, channels: [...channels].sort(), producers: producers(name) }))
        .sort(byName),
      errors: dedupe(errors),
    };
  }

  /** The nsqd HTTP addresses holding `topic`: from the lookupds' /lookup and the configured nsqds. */
  async producersOf(topic: string, errors: ClusterError[]): Promise<string[]> {
    const found = new Set<string>();
    await Promise.all([
      lookupProducers(this.upstream, this.sources.lookupdHttpAddresses, topic).then((looked) => {
        for (const p of looked.producers) found.add(p.httpAddress);
        for (const e of looked.errors) errors.push({ source: 'lookupd', address: e.address, message: e.message });
      }),
      ...this.sources.nsqdHttpAddresses.map(async (nsqd) => {
        try {
          const res = await this.upstream.get<StatsSnapshot>(
            nsqd,
            `/stats${query({ format: 'json', topic, include_clients: 'false' })}`,
          );
          if ((res.topics ?? []).some((t) => t.topic_name === topic)) found.add(nsqd);
        } catch (err) {
          errors.push({ source: 'nsqd', address: nsqd, message: describe(err) });
        }
      }),
    ]);
    return [...found].sort();
  }
}

/** One entry per upstream address: a lookupd that failed twice in one read is listed once. */
function dedupe(errors: ClusterError[]): ClusterError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.source} ${e.address}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
