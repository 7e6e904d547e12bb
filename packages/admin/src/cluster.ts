import {
  type ChannelStats,
  type ClientStats,
  formatHostPort,
  type LookupNode,
  type LookupPeer,
  type StatsSnapshot,
  type TopicStats,
} from '@nsq-ts/protocol';
import type { NsqdInfo } from './nsq-types.js';
import { query, type Upstream, UpstreamError } from './upstream.js';

/**
 * The cluster as nsqadmin sees it, read only through nsqlookupd's and nsqd's HTTP APIs (nsq-spec
 * §6): nodes from every lookupd's /nodes (and the configured nsqds' /info), then every node's
 * /stats, summed per topic and channel with a per-node breakdown. A node or lookupd that does not
 * answer becomes an entry of `errors`; the rest of the cluster is still shown.
 */

export interface ClusterError {
  readonly source: 'lookupd' | 'nsqd';
  readonly address: string;
  readonly message: string;
}

export interface NodeTopic {
  readonly name: string;
  readonly tombstoned: boolean;
}

export interface NodeSummary {
  /** `broadcast_address:http_port` (or the configured nsqd address): where nsqadmin reaches it. */
  readonly id: string;
  readonly hostname: string;
  readonly broadcastAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly remoteAddress: string;
  readonly version: string;
  /** Its version is lower than the highest in the cluster. */
  readonly outOfDate: boolean;
  /** Its /stats answered. */
  readonly reachable: boolean;
  readonly topics: readonly NodeTopic[];
}

export interface ChannelCounts {
  depth: number;
  backendDepth: number;
  inFlightCount: number;
  deferredCount: number;
  requeueCount: number;
  timeoutCount: number;
  messageCount: number;
  clientCount: number;
  paused: boolean;
}

export interface ChannelNodeStats extends ChannelCounts {
  readonly node: string;
}

export interface ClientSummary {
  readonly node: string;
  readonly clientId: string;
  readonly hostname: string;
  readonly remoteAddress: string;
  readonly version: string;
  readonly userAgent: string;
  readonly state: number;
  readonly readyCount: number;
  readonly inFlightCount: number;
  readonly messageCount: number;
  readonly finishCount: number;
  readonly requeueCount: number;
  /** Seconds since the epoch. */
  readonly connectTs: number;
  readonly tls: boolean;
  readonly deflate: boolean;
  readonly snappy: boolean;
  readonly sampleRate: number;
}

export interface ChannelSummary extends ChannelCounts {
  readonly topic: string;
  readonly name: string;
  /** Messages per second over the last poll interval (0 before two polls). */
  rate: number;
  readonly nodes: ChannelNodeStats[];
  readonly clients: ClientSummary[];
}

export interface TopicNodeStats {
  readonly node: string;
  readonly depth: number;
  readonly backendDepth: number;
  readonly messageCount: number;
  readonly paused: boolean;
  readonly channelCount: number;
}

export interface TopicSummary {
  readonly name: string;
  depth: number;
  backendDepth: number;
  messageCount: number;
  paused: boolean;
  rate: number;
  channelCount: number;
  readonly nodes: TopicNodeStats[];
  readonly channels: ChannelSummary[];
}

export interface ClusterSnapshot {
  /** When it was read (ms since the epoch). */
  readonly at: number;
  readonly topics: TopicSummary[];
  readonly nodes: NodeSummary[];
  readonly errors: ClusterError[];
}

export interface LookupTopic {
  readonly name: string;
  readonly channels: string[];
}

export interface LookupState {
  readonly lookupds: string[];
  readonly topics: LookupTopic[];
  readonly errors: ClusterError[];
}

export interface ClusterSources {
  readonly lookupdHttpAddresses: readonly string[];
  readonly nsqdHttpAddresses: readonly string[];
}

/** Compares dotted versions numerically (`1.10.0` > `1.9.2`); a pre-release suffix is ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string): number[] =>
    v
      .split(/[-+]/)[0]
      .split('.')
      .map((p) => Number.parseInt(p, 10) || 0);
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The counters of ChannelCounts, summed over nodes. */
const COUNTERS = [
  'depth',
  'backendDepth',
  'inFlightCount',
  'deferredCount',
  'requeueCount',
  'timeoutCount',
  'messageCount',
  'clientCount',
] as const satisfies readonly (keyof ChannelCounts)[];

function emptyCounts(): ChannelCounts {
  return {
    depth: 0,
    backendDepth: 0,
    inFlightCount: 0,
    deferredCount: 0,
    requeueCount: 0,
    timeoutCount: 0,
    messageCount: 0,
    clientCount: 0,
    paused: false,
  };
}

function channelCounts(c: ChannelStats): ChannelCounts {
  return {
    depth: c.depth,
    backendDepth: c.backend_depth,
    inFlightCount: c.in_flight_count,
    deferredCount: c.deferred_count,
    requeueCount: c.requeue_count,
    timeoutCount: c.timeout_count,
    messageCount: c.message_count,
    clientCount: c.client_count,
    paused: c.paused,
  };
}

function clientSummary(node: string, c: ClientStats): ClientSummary {
  return {
    node,
    clientId: c.client_id,
    hostname: c.hostname,
    remoteAddress: c.remote_address,
    version: c.version,
    userAgent: c.user_agent ?? '',
    state: c.state,
    readyCount: c.ready_count,
    inFlightCount: c.in_flight_count,
    messageCount: c.message_count,
    finishCount: c.finish_count,
    requeueCount: c.requeue_count,
    connectTs: c.connect_ts,
    tls: c.tls === true,
    deflate: c.deflate === true,
    snappy: c.snappy === true,
    sampleRate: c.sample_rate ?? 0,
  };
}

interface NodeDraft {
  id: string;
  hostname: string;
  broadcastAddress: string;
  tcpPort: number;
  httpPort: number;
  remoteAddress: string;
  version: string;
  topics: Map<string, boolean>;
}

export class ClusterReader {
  constructor(
    private readonly sources: ClusterSources,
    private readonly upstream: Upstream,
  ) {}

  /** Every node: from the lookupds' /nodes and the configured nsqds' /info. */
  private async readNodes(errors: ClusterError[]): Promise<NodeDraft[]> {
    const nodes = new Map<string, NodeDraft>();
    await Promise.all(
      this.sources.lookupdHttpAddresses.map(async (lookupd) => {
        try {
          const { producers } = await this.upstream.get<{ producers: LookupNode[] | null }>(lookupd, '/nodes');
          for (const p of producers ?? []) {
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
        } catch (err) {
          errors.push({ source: 'lookupd', address: lookupd, message: describe(err) });
        }
      }),
    );
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
    return [...nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The whole cluster: nodes, topics with their channels and clients, and what failed. */
  async snapshot(): Promise<ClusterSnapshot> {
    const errors: ClusterError[] = [];
    const drafts = await this.readNodes(errors);
    const stats = await Promise.all(
      drafts.map(async (node) => {
        try {
          return await this.upstream.get<StatsSnapshot>(node.id, '/stats?format=json');
        } catch (err) {
          errors.push({ source: 'nsqd', address: node.id, message: describe(err) });
          return null;
        }
      }),
    );

    const topics = new Map<string, TopicSummary>();
    drafts.forEach((node, i) => {
      for (const t of stats[i]?.topics ?? []) {
        if (!node.topics.has(t.topic_name)) node.topics.set(t.topic_name, false);
        addTopic(topics, node.id, t);
      }
    });
    const maxVersion = drafts.reduce((max, n) => (compareVersions(n.version, max) > 0 ? n.version : max), '0');
    const nodes: NodeSummary[] = drafts.map((n, i) => ({
      id: n.id,
      hostname: n.hostname,
      broadcastAddress: n.broadcastAddress,
      tcpPort: n.tcpPort,
      httpPort: n.httpPort,
      remoteAddress: n.remoteAddress,
      version: n.version,
      outOfDate: compareVersions(n.version, maxVersion) < 0,
      reachable: stats[i] !== null,
      topics: [...n.topics].map(([name, tombstoned]) => ({ name, tombstoned })).sort(byName),
    }));
    const list = [...topics.values()].sort(byName);
    for (const t of list) {
      t.channels.sort(byName);
      t.channelCount = t.channels.length;
    }
    return { at: Date.now(), topics: list, nodes, errors };
  }

  /** Topics and channels registered in the lookupds (also ones no nsqd has yet). */
  async lookup(): Promise<LookupState> {
    const errors: ClusterError[] = [];
    const topics = new Map<string, Set<string>>();
    await Promise.all(
      this.sources.lookupdHttpAddresses.map(async (lookupd) => {
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
    );
    return {
      lookupds: [...this.sources.lookupdHttpAddresses],
      topics: [...topics].map(([name, channels]) => ({ name, channels: [...channels].sort() })).sort(byName),
      errors,
    };
  }

  /** The nsqd HTTP addresses holding `topic`: from the lookupds' /lookup and the configured nsqds. */
  async producersOf(topic: string, errors: ClusterError[]): Promise<string[]> {
    const found = new Set<string>();
    await Promise.all([
      ...this.sources.lookupdHttpAddresses.map(async (lookupd) => {
        try {
          const res = await this.upstream.get<{ producers: LookupPeer[] | null }>(
            lookupd,
            `/lookup${query({ topic })}`,
          );
          for (const p of res.producers ?? []) found.add(formatHostPort(p.broadcast_address, p.http_port));
        } catch (err) {
          // A topic unknown to this lookupd is no error: it just has no producers there.
          if (!(err instanceof UpstreamError && err.message.includes('TOPIC_NOT_FOUND'))) {
            errors.push({ source: 'lookupd', address: lookupd, message: describe(err) });
          }
        }
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

function addTopic(topics: Map<string, TopicSummary>, node: string, t: TopicStats): void {
  let topic = topics.get(t.topic_name);
  if (topic === undefined) {
    topic = {
      name: t.topic_name,
      depth: 0,
      backendDepth: 0,
      messageCount: 0,
      paused: false,
      rate: 0,
      channelCount: 0,
      nodes: [],
      channels: [],
    };
    topics.set(t.topic_name, topic);
  }
  topic.depth += t.depth;
  topic.backendDepth += t.backend_depth;
  topic.messageCount += t.message_count;
  topic.paused ||= t.paused;
  const channels = t.channels ?? [];
  topic.nodes.push({
    node,
    depth: t.depth,
    backendDepth: t.backend_depth,
    messageCount: t.message_count,
    paused: t.paused,
    channelCount: channels.length,
  });
  for (const c of channels) {
    let channel = topic.channels.find((x) => x.name === c.channel_name);
    if (channel === undefined) {
      channel = { topic: t.topic_name, name: c.channel_name, ...emptyCounts(), rate: 0, nodes: [], clients: [] };
      topic.channels.push(channel);
    }
    const counts = channelCounts(c);
    for (const key of COUNTERS) channel[key] += counts[key];
    channel.paused ||= counts.paused;
    channel.nodes.push({ node, ...counts });
    for (const client of c.clients ?? []) channel.clients.push(clientSummary(node, client));
  }
}
