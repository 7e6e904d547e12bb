/**
 * The plain-data contract between the domain (topics, channels) and storage: what changed in
 * a topic's or channel's durable state since the last change the store confirmed. Storage
 * encodes a delta into state-store operations and, once they are on disk, hands the same
 * object back (`committed(delta)`), so only the domain ever writes its own fields. A follower
 * of a replica group can receive and store these exactly as the leader does.
 */

/** Offsets [from, to) dropped by /topic/empty while paused; channels jump over them. */
export type SkipRange = [number, number];

/** What a topic does when a publish would take its backlog past a cap. */
export type Overflow = 'reject' | 'drop_oldest';

/** A topic's caps as set over HTTP (`POST /topic/config`); an absent field follows the nsqd flag. */
export interface TopicSettings {
  /** Messages the deepest channel's backlog (or the topic's, without channels) may hold; 0 = no cap. */
  readonly maxDepth?: number;
  /** Body bytes of that backlog, estimated from the topic's mean message size; 0 = no cap. */
  readonly maxBytes?: number;
  readonly overflow?: Overflow;
  /** A message published this long ago or longer is never delivered (dropped or dead-lettered); 0 = off. */
  readonly messageTtlMs?: number;
  /** Segments stay at least this long after every channel finished them (for replay); 0 = off. */
  readonly retentionMs?: number;
}

export interface TopicDelta {
  /** The topic's change count when the delta was taken. */
  readonly changes: number;
  readonly paused: boolean;
  readonly settings: TopicSettings;
  /** The log's next offset (start-up takes the largest of it and what the log and channels hold). */
  readonly nextOffset: number;
  /** While paused: offsets at or above it were not released to channels (0 when not paused). */
  readonly releaseMark: number;
  readonly skips: readonly SkipRange[];
}

/** A deferred message as the store keeps it: one key each. */
export interface DeferredEntry {
  readonly offset: number;
  readonly attempts: number;
  readonly dueAtWallMs: number;
}

/**
 * A channel's delivery policy as set over HTTP (`POST /channel/config`). An absent field
 * follows the nsqd flag of the same name, so a changed flag reaches every channel not set.
 */
export interface ChannelSettings {
  /** Deliveries after which a message that comes back is dead-lettered; 0 = unlimited. */
  readonly maxAttempts?: number;
  /** Where such a message goes; '' = dropped. */
  readonly deadLetterTopic?: string;
}

export interface ChannelDelta {
  /** The channel's change count when the delta was taken. */
  readonly changes: number;
  readonly cursor: number;
  readonly paused: boolean;
  readonly settings: ChannelSettings;
  /**
   * Every in-flight and requeued message as (offset, attempts) pairs. This set changes with
   * every delivery and FIN, so it is stored whole as one value, not as puts and deletes.
   */
  readonly hot: Float64Array;
  /** Offsets at or past the cursor the channel already holds (a DPUB fanned out); empty mostly. */
  readonly ahead: readonly number[];
  /** Deferred messages to store: new, or with other attempts or due time than stored. */
  readonly deferredPuts: readonly DeferredEntry[];
  /** Stored deferred messages that are deferred no more (due, finished, emptied). */
  readonly deferredDeletes: readonly number[];
  /** The lowest offset the channel still needs: segments below every channel's floor can go. */
  readonly floor: number;
}
