/** What changed in a topic's or channel's durable state since the store last confirmed; see docs/storage.md. */

/** Offsets [from, to) dropped by /topic/empty while paused; channels jump over them. */
export type SkipRange = [number, number];

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
  readonly changes: number;
  readonly paused: boolean;
  readonly settings: TopicSettings;
  /** The log's next offset (start-up takes the largest of it and what the log and channels hold). */
  readonly nextOffset: number;
  /** While paused: offsets at or above it were not released to channels (0 when not paused). */
  readonly releaseMark: number;
  readonly skips: readonly SkipRange[];
}

export interface DeferredEntry {
  readonly offset: number;
  readonly attempts: number;
  readonly dueAtWallMs: number;
}

/** Set over HTTP (`POST /channel/config`); an absent field follows the nsqd flag of the same name. */
export interface ChannelSettings {
  /** Deliveries after which a message that comes back is dead-lettered; 0 = unlimited. */
  readonly maxAttempts?: number;
  /** '' = dropped. */
  readonly deadLetterTopic?: string;
}

export interface ChannelDelta {
  readonly changes: number;
  readonly cursor: number;
  readonly paused: boolean;
  readonly settings: ChannelSettings;
  /** (offset, attempts) pairs; changes with every delivery and FIN, so stored whole as one value. */
  readonly hot: Float64Array;
  /** Offsets at or past the cursor the channel already holds (a DPUB fanned out); empty mostly. */
  readonly ahead: readonly number[];
  /** New, or with other attempts or due time than stored. */
  readonly deferredPuts: readonly DeferredEntry[];
  /** Due, finished or emptied. */
  readonly deferredDeletes: readonly number[];
  /** The lowest offset the channel still needs: segments below every channel's floor can go. */
  readonly floor: number;
}
