/** Every node's /stats summed per topic and channel, with a per-node breakdown; no I/O. */
import { parseGoDuration } from '@nsq-ts/go-compat';
import type { ClientStats, StatsSnapshot } from '@nsq-ts/protocol';
import type {
  ChannelCounts,
  ChannelPolicy,
  ClientSummary,
  DeadLetterTopic,
  NodeHa,
  NodeSummary,
  TopicPolicy,
  TopicSummary,
} from './cluster-model.js';
import type { PolicyChannelStats, PolicyTopicStats } from './nsq-types.js';

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

export function byName<T extends { name: string }>(a: T, b: T): number {
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
  'deadLetteredCount',
  'droppedCount',
  'expiredCount',
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
    deadLetteredCount: 0,
    droppedCount: 0,
    expiredCount: 0,
    paused: false,
  };
}

function channelCounts(c: PolicyChannelStats): ChannelCounts {
  return {
    depth: c.depth,
    backendDepth: c.backend_depth,
    inFlightCount: c.in_flight_count,
    deferredCount: c.deferred_count,
    requeueCount: c.requeue_count,
    timeoutCount: c.timeout_count,
    messageCount: c.message_count,
    clientCount: c.client_count,
    deadLetteredCount: c.dead_lettered_count ?? 0,
    droppedCount: c.dropped_count ?? 0,
    expiredCount: c.expired_count ?? 0,
    paused: c.paused,
  };
}

function channelPolicy(c: PolicyChannelStats): ChannelPolicy | null {
  if (c.max_attempts === undefined) return null;
  return { maxAttempts: c.max_attempts, deadLetterTopic: c.dead_letter_topic ?? '' };
}

/** A Go duration of /stats in ms; null when absent or unreadable. */
function durationMs(text: string | undefined): number | null {
  if (text === undefined) return null;
  try {
    return parseGoDuration(text);
  } catch {
    return null;
  }
}

function topicPolicy(t: PolicyTopicStats): TopicPolicy | null {
  if (t.max_depth === undefined) return null;
  return {
    maxDepth: t.max_depth,
    maxBytes: t.max_bytes ?? 0,
    overflow: t.overflow ?? 'reject',
    messageTtlMs: durationMs(t.message_ttl),
    retentionMs: durationMs(t.retention),
  };
}

/** Folds one node's settings into a summary's: the first node's win, a different one marks them differing. */
function mergePolicy<P>(summary: { policy: P | null; policyDiffers: boolean }, policy: P | null): void {
  if (policy === null) return;
  if (summary.policy === null) summary.policy = policy;
  else if (JSON.stringify(summary.policy) !== JSON.stringify(policy)) summary.policyDiffers = true;
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

/** The `ha` block of an nsq-ts nsqd's /stats (GET /ha's status), read defensively; null when absent. */
function nodeHa(raw: unknown): NodeHa | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const ha = raw as Record<string, unknown>;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((m) => typeof m === 'string') : []);
  const memberId = typeof ha.member_id === 'string' ? ha.member_id : '';
  const role = ha.role === 'leader' ? 'leader' : 'follower';
  const followers = Array.isArray(ha.followers) ? (ha.followers as Record<string, unknown>[]) : [];
  const c = typeof ha.counters === 'object' && ha.counters !== null ? (ha.counters as Record<string, unknown>) : {};
  const lost = typeof c.leadership_lost === 'object' && c.leadership_lost !== null ? c.leadership_lost : {};
  return {
    group: typeof ha.group === 'string' ? ha.group : '',
    memberId,
    role,
    epoch: num(ha.epoch),
    leader: typeof ha.leader === 'string' ? ha.leader : null,
    inSync: strings(ha.in_sync),
    lag:
      role === 'leader'
        ? followers.map((f) => ({ member: String(f.member_id), batches: num(f.lag_batches), ms: num(f.lag_ms) }))
        : [{ member: memberId, batches: num(ha.lag_batches), ms: null }],
    events: {
      electionsWon: num(c.elections_won),
      leadershipLost: Object.values(lost).reduce((sum: number, n: unknown) => sum + num(n), 0),
      isrShrinks: num(c.isr_shrinks),
      isrExpands: num(c.isr_expands),
      refusedPublishes: num(c.refused_publishes),
      unansweredPublishes: num(c.unanswered_publishes),
    },
  };
}

/** A node as the lookupds and nsqd /info describe it, before its /stats is read. */
export interface NodeDraft {
  id: string;
  hostname: string;
  broadcastAddress: string;
  tcpPort: number;
  httpPort: number;
  remoteAddress: string;
  version: string;
  topics: Map<string, boolean>;
}

export interface ClusterSummary {
  readonly topics: TopicSummary[];
  readonly deadLetterTopics: DeadLetterTopic[];
  readonly nodes: NodeSummary[];
  readonly totalMessages: number;
}

/** Sums the nodes' /stats (`stats[i]` belongs to `drafts[i]`; a string: why it did not answer). */
export function summarise(drafts: NodeDraft[], stats: ReadonlyArray<StatsSnapshot | string>): ClusterSummary {
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
      ha: typeof s === 'object' ? nodeHa((s as { ha?: unknown }).ha) : null,
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
  return { topics: list, deadLetterTopics: deadLetterTopics(list), nodes, totalMessages };
}

/** Every topic a channel (on any node) names as its dead-letter topic, with what it holds. */
function deadLetterTopics(topics: readonly TopicSummary[]): DeadLetterTopic[] {
  const sources = new Map<string, Array<{ topic: string; channel: string }>>();
  for (const t of topics) {
    for (const c of t.channels) {
      const names = new Set(c.nodes.map((n) => n.policy?.deadLetterTopic ?? '').filter((d) => d !== ''));
      for (const d of names) {
        const list = sources.get(d) ?? [];
        list.push({ topic: t.name, channel: c.name });
        sources.set(d, list);
      }
    }
  }
  return [...sources]
    .map(([name, from]) => {
      const topic = topics.find((t) => t.name === name);
      return {
        name,
        exists: topic !== undefined,
        depth: topic?.totalDepth ?? 0,
        messageCount: topic?.messageCount ?? 0,
        sources: from,
      };
    })
    .sort(byName);
}

function addTopic(topics: Map<string, TopicSummary>, node: string, t: PolicyTopicStats): void {
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
      rejectedCount: 0,
      droppedCount: 0,
      expiredCount: 0,
      policy: null,
      policyDiffers: false,
    };
    topics.set(t.topic_name, topic);
  }
  const policyCounts = {
    rejectedCount: t.rejected_count ?? 0,
    droppedCount: t.dropped_count ?? 0,
    expiredCount: t.expired_count ?? 0,
  };
  topic.rejectedCount += policyCounts.rejectedCount;
  topic.droppedCount += policyCounts.droppedCount;
  topic.expiredCount += policyCounts.expiredCount;
  const policy = topicPolicy(t);
  mergePolicy(topic, policy);
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
    ...policyCounts,
    policy,
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
        policy: null,
        policyDiffers: false,
      };
      topic.channels.push(channel);
    }
    const counts = channelCounts(c);
    for (const key of COUNTERS) channel[key] += counts[key];
    channel.paused ||= counts.paused;
    const settings = channelPolicy(c);
    mergePolicy(channel, settings);
    channel.nodes.push({ node, ...counts, policy: settings });
    for (const client of c.clients ?? []) {
      channel.clients.push(clientSummary(node, client));
      channel.finishCount += client.finish_count;
    }
  }
}
