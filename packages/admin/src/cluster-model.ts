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
  /** nsq-ts delivery policies (0 from NSQ's nsqd): messages given up into the dead-letter topic or dropped. */
  deadLetteredCount: number;
  /** Messages drop_oldest dropped from the channel. */
  droppedCount: number;
  /** Messages older than the topic's message_ttl the channel did not deliver. */
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
  /** The settings of the first node that reports them; null when none does. */
  policy: ChannelPolicy | null;
  /** The nodes do not all have the same settings (the per-node ones are in `nodes`). */
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

/** What a topic's delivery policies did, summed over nodes. */
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
  /** The topic's depth plus its channels' depths on this node. */
  readonly totalDepth: number;
}

/** A topic's deepest channel: where its backlog is. */
export interface DeepestChannel {
  readonly name: string;
  readonly depth: number;
  readonly paused: boolean;
}

export interface TopicSummary extends TopicPolicyCounts {
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
  /** The settings of the first node that reports them; null when none does. */
  policy: TopicPolicy | null;
  policyDiffers: boolean;
}

/** A topic some channel names as its dead_letter_topic, and what it holds. */
export interface DeadLetterTopic {
  readonly name: string;
  /** Whether any node has the topic yet (it is made with its first dead letter). */
  readonly exists: boolean;
  /** Its total depth: dead letters not yet consumed or redriven. */
  readonly depth: number;
  readonly messageCount: number;
  /** The channels that give up into it (`topic/channel`), on any node. */
  readonly sources: ReadonlyArray<{ readonly topic: string; readonly channel: string }>;
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
  /** Topics named as some channel's dead-letter topic, by name. */
  readonly deadLetterTopics: DeadLetterTopic[];
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
