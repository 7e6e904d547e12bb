import { formatHostPort } from '@nsq-ts/go-compat';
import { lookupProducers } from '@nsq-ts/http-client';
import type { ChannelStats, ClientStats, LookupNode, StatsSnapshot, TopicStats } from '@nsq-ts/protocol';
import type { NsqdInfo } from './nsq-types.js';
import { query, type Upstream } from './upstream.js';

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
  /**
   * `broadcast_address:http_port` (or the configured nsqd address): where nsqadmin reaches it,
   * and how the UI names it — hostnames are often the same on every node.
   */
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
  /** Why /stats did not answer; null when it did. */
  readonly error: string | null;
  /** nsqd's `health` (`OK`, or the storage error it reports); '' when unreachable. */
  readonly health: string;
  /** nsqd's start, Unix seconds; 0 when unreachable. */
  readonly startTime: number;
  readonly topics: readonly NodeTopic[];
  /** Messages put into its topics. */
  readonly messageCount: number;
  /** Messages waiting on it: its topics' and channels' depths. */
  readonly depth: number;
  readonly clientCount: number;
  /** Messages/s into its topics over the latest sample; null before there is one. */
  ingressRate: number | null;
}

/** One configured nsqlookupd and whether it answered the latest read. */
export interface LookupdSummary {
  readonly address: string;
  readonly reachable: boolean;
  readonly error: string | null;
  /** From its /info; '' when unknown. */
  readonly version: string;
  /** Producers its /nodes lists. */
  readonly nodeCount: number;
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
  /** Messages its connected clients finished (FIN), summed over nodes. */
  finishCount: number;
  /** Messages/s put into the channel over the latest sample; null before there is one. */
  ingressRate: number | null;
  /** Messages/s its clients finished over the latest sample; null before there is one. */
  egressRate: number | null;
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
  /** The topic's depth plus its channels' depths on this node. */
  readonly totalDepth: number;
}

/** A topic's deepest channel: where its backlog is. */
export interface DeepestChannel {
  readonly name: string;
  readonly depth: number;
  readonly paused: boolean;
}

export interface TopicSummary {
  readonly name: string;
  /** The topic's own depth: messages no channel has taken yet (0 once channels exist, in NSQ). */
  depth: number;
  backendDepth: number;
  /** The topic's depth plus every channel's depth. */
  totalDepth: number;
  /** The channel with the largest depth (null without channels). */
  deepestChannel: DeepestChannel | null;
  messageCount: number;
  paused: boolean;
  /** Messages/s published into the topic over the latest sample; null before there is one. */
  ingressRate: number | null;
  channelCount: number;
  readonly nodes: TopicNodeStats[];
  readonly channels: ChannelSummary[];
}

export interface ClusterSnapshot {
  /** When it was read (ms since the epoch). */
  readonly at: number;
  /**
   * When the rates in it were sampled (ms since the epoch); null before nsqadmin has two
   * samples. Equal to `at` in what the sampler pushes; older in a read made between samples.
   */
  ratesAt: number | null;
  /** The span the rates were measured over (ms). */
  rateWindowMs: number;
  /** The server's sampling interval (ms). */
  sampleIntervalMs: number;
  /** Messages put into every channel on every node: the counter page's number (NSQ's /counter). */
  readonly totalMessages: number;
  /** Messages/s of `totalMessages` over the latest sample; null before there is one. */
  totalRate: number | null;
  readonly topics: TopicSummary[];
  readonly nodes: NodeSummary[];
  readonly lookupds: LookupdSummary[];
  readonly errors: ClusterError[];
}

export interface LookupTopic {
  readonly name: string;
  readonly channels: string[];
  /** Nodes the lookupds list as producing it (not tombstoned); none: the topic is inactive. */
  readonly producers: string[];
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

    const topics = new Map<string, TopicSummary>();
    drafts.forEach((node, i) => {
      const s = stats[i];
      for (const t of typeof s === 'object' ? (s.topics ?? []) : []) {
        if (!node.topics.has(t.topic_name)) node.topics.set(t.topic_name, false);
        addTopic(topics, node.id, t);
      }
    });
    const maxVersion = drafts.reduce((max, n) => (compareVersions(n.version, max) > 0 ? n.version : max), '0');
    const nodes: NodeSummary[] = drafts.map((n, i) => {
      const s = stats[i];
      const own = typeof s === 'object' ? (s.topics ?? []) : [];
      let depth = 0;
      let clientCount = 0;
      for (const t of own) {
        depth += t.depth;
        for (const c of t.channels ?? []) {
          depth += c.depth;
          clientCount += c.client_count;
        }
      }
      return {
        id: n.id,
        hostname: n.hostname,
        broadcastAddress: n.broadcastAddress,
        tcpPort: n.tcpPort,
        httpPort: n.httpPort,
        remoteAddress: n.remoteAddress,
        version: typeof s === 'object' && s.version !== '' ? s.version : n.version,
        outOfDate: compareVersions(n.version, maxVersion) < 0,
        reachable: typeof s === 'object',
        error: typeof s === 'string' ? s : null,
        health: typeof s === 'object' ? s.health : '',
        startTime: typeof s === 'object' ? s.start_time : 0,
        topics: [...n.topics].map(([name, tombstoned]) => ({ name, tombstoned })).sort(byName),
        messageCount: own.reduce((sum, t) => sum + t.message_count, 0),
        depth,
        clientCount,
        ingressRate: null,
      };
    });
    const list = [...topics.values()].sort(byName);
    let totalMessages = 0;
    for (const t of list) {
      t.channels.sort(byName);
      t.channelCount = t.channels.length;
      for (const c of t.channels) {
        totalMessages += c.messageCount;
        t.totalDepth += c.depth;
        if (t.deepestChannel === null || c.depth > t.deepestChannel.depth) {
          t.deepestChannel = { name: c.name, depth: c.depth, paused: c.paused };
        }
      }
    }
    return {
      at: Date.now(),
      ratesAt: null,
      rateWindowMs: 0,
      sampleIntervalMs: 0,
      totalMessages,
      totalRate: null,
      topics: list,
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

function addTopic(topics: Map<string, TopicSummary>, node: string, t: TopicStats): void {
  let topic = topics.get(t.topic_name);
  if (topic === undefined) {
    topic = {
      name: t.topic_name,
      depth: 0,
      backendDepth: 0,
      totalDepth: 0,
      deepestChannel: null,
      messageCount: 0,
      paused: false,
      ingressRate: null,
      channelCount: 0,
      nodes: [],
      channels: [],
    };
    topics.set(t.topic_name, topic);
  }
  topic.depth += t.depth;
  topic.totalDepth += t.depth;
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
    totalDepth: channels.reduce((sum, c) => sum + c.depth, t.depth),
  });
  for (const c of channels) {
    let channel = topic.channels.find((x) => x.name === c.channel_name);
    if (channel === undefined) {
      channel = {
        topic: t.topic_name,
        name: c.channel_name,
        ...emptyCounts(),
        finishCount: 0,
        ingressRate: null,
        egressRate: null,
        nodes: [],
        clients: [],
      };
      topic.channels.push(channel);
    }
    const counts = channelCounts(c);
    for (const key of COUNTERS) channel[key] += counts[key];
    channel.paused ||= counts.paused;
    channel.nodes.push({ node, ...counts });
    for (const client of c.clients ?? []) {
      channel.clients.push(clientSummary(node, client));
      channel.finishCount += client.finish_count;
    }
  }
}
