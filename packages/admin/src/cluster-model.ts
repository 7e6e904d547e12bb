/** The cluster as nsqadmin shows it: read by cluster.ts, summed by cluster-stats.ts. */
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
  /** `broadcast_address:http_port` (or the configured address): hostnames are often the same on every node. */
  readonly id: string;
  readonly hostname: string;
  readonly broadcastAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly remoteAddress: string;
  readonly version: string;
  readonly outOfDate: boolean;
  readonly reachable: boolean;
  /** null when /stats answered. */
  readonly error: string | null;
  /** nsqd's `health` (`OK`, or the storage error it reports); '' when unreachable. */
  readonly health: string;
  /** nsqd's start, Unix seconds; 0 when unreachable. */
  readonly startTime: number;
  readonly topics: readonly NodeTopic[];
  readonly messageCount: number;
  /** Its topics' and channels' depths. */
  readonly depth: number;
  readonly clientCount: number;
  /** Over the latest sample; null before there is one. */
  ingressRate: number | null;
  /** A member of an nsq-ts replica group (nsqd --ha-group): the `ha` block of its /stats; else null. */
  readonly ha: NodeHa | null;
}

/** What nsqadmin shows of a replica group member (README "Replication"). */
export interface NodeHa {
  readonly group: string;
  readonly memberId: string;
  readonly role: 'leader' | 'follower';
  readonly epoch: number;
  readonly leader: string | null;
  readonly inSync: readonly string[];
  /** On the leader, each follower's lag; on a follower, its own (`lagMs` null: it knows no ack times). */
  readonly lag: readonly { readonly member: string; readonly batches: number; readonly ms: number | null }[];
  /** Events since the member started (its /ha `counters`); leadershipLost sums every reason. */
  readonly events: {
    readonly electionsWon: number;
    readonly leadershipLost: number;
    readonly isrShrinks: number;
    readonly isrExpands: number;
    readonly refusedPublishes: number;
    readonly unansweredPublishes: number;
  };
}

export interface LookupdSummary {
  readonly address: string;
  readonly reachable: boolean;
  readonly error: string | null;
  /** '' when unknown. */
  readonly version: string;
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
  /** nsq-ts delivery policies (0 from NSQ's nsqd): messages given up into the dead-letter topic or dropped. */
  deadLetteredCount: number;
  droppedCount: number;
  expiredCount: number;
  paused: boolean;
}

/** A channel's delivery-policy settings (nsq-ts nsqd; NSQ's has none). */
export interface ChannelPolicy {
  /** 0 is unlimited. */
  readonly maxAttempts: number;
  /** '' drops what is given up. */
  readonly deadLetterTopic: string;
}

export interface ChannelNodeStats extends ChannelCounts {
  readonly node: string;
  /** null: the node does not report delivery policies (NSQ's nsqd). */
  readonly policy: ChannelPolicy | null;
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
  readonly connectTs: number;
  readonly tls: boolean;
  readonly deflate: boolean;
  readonly snappy: boolean;
  readonly sampleRate: number;
}

export interface ChannelSummary extends ChannelCounts {
  readonly topic: string;
  readonly name: string;
  /** Summed over nodes. */
  finishCount: number;
  /** Over the latest sample; null before there is one. */
  ingressRate: number | null;
  /** Over the latest sample; null before there is one. */
  egressRate: number | null;
  readonly nodes: ChannelNodeStats[];
  readonly clients: ClientSummary[];
  /** The first reporting node's; null when none does. */
  policy: ChannelPolicy | null;
  /** The per-node ones are in `nodes`. */
  policyDiffers: boolean;
}

/** A topic's delivery-policy settings (nsq-ts nsqd); 0 turns a number off. */
export interface TopicPolicy {
  readonly maxDepth: number;
  readonly maxBytes: number;
  readonly overflow: 'reject' | 'drop_oldest';
  /** ms; null when the node does not report it. */
  readonly messageTtlMs: number | null;
  /** ms; null when the node does not report it. */
  readonly retentionMs: number | null;
}

export interface TopicPolicyCounts {
  rejectedCount: number;
  droppedCount: number;
  expiredCount: number;
}

export interface TopicNodeStats extends TopicPolicyCounts {
  readonly node: string;
  readonly policy: TopicPolicy | null;
  readonly depth: number;
  readonly backendDepth: number;
  readonly messageCount: number;
  readonly paused: boolean;
  readonly channelCount: number;
  /** Including its channels' depths on this node. */
  readonly totalDepth: number;
}

export interface DeepestChannel {
  readonly name: string;
  readonly depth: number;
  readonly paused: boolean;
}

export interface TopicSummary extends TopicPolicyCounts {
  readonly name: string;
  /** 0 once channels exist, in NSQ. */
  depth: number;
  backendDepth: number;
  totalDepth: number;
  /** null without channels. */
  deepestChannel: DeepestChannel | null;
  messageCount: number;
  paused: boolean;
  /** Over the latest sample; null before there is one. */
  ingressRate: number | null;
  channelCount: number;
  readonly nodes: TopicNodeStats[];
  readonly channels: ChannelSummary[];
  /** The first reporting node's; null when none does. */
  policy: TopicPolicy | null;
  policyDiffers: boolean;
}

/** A topic some channel names as its dead_letter_topic, and what it holds. */
export interface DeadLetterTopic {
  readonly name: string;
  /** It is made with its first dead letter. */
  readonly exists: boolean;
  /** Dead letters not yet consumed or redriven. */
  readonly depth: number;
  readonly messageCount: number;
  /** `topic/channel`, on any node. */
  readonly sources: ReadonlyArray<{ readonly topic: string; readonly channel: string }>;
}

export interface ClusterSnapshot {
  /** ms since the epoch. */
  readonly at: number;
  /** ms since the epoch; null before two samples; older than `at` in a read made between samples. */
  ratesAt: number | null;
  /** ms. */
  rateWindowMs: number;
  /** ms. */
  sampleIntervalMs: number;
  /** NSQ's /counter number: messages put into every channel on every node. */
  readonly totalMessages: number;
  /** Over the latest sample; null before there is one. */
  totalRate: number | null;
  readonly topics: TopicSummary[];
  readonly deadLetterTopics: DeadLetterTopic[];
  readonly nodes: NodeSummary[];
  readonly lookupds: LookupdSummary[];
  readonly errors: ClusterError[];
}

export interface LookupTopic {
  readonly name: string;
  readonly channels: string[];
  /** Not tombstoned; none: the topic is inactive. */
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
