import type { SegmentLog } from './log/segment-log.js';

/** A publish the topic refused because the disk is failing and memory is full (E_PUB_FAILED). */
export class StoreUnavailableError extends Error {}

/**
 * A publish stored but neither acknowledged nor truly refused (replication's fence shut while it waited): it may
 * be delivered or not. Its client gets no answer: the TCP connection or HTTP request is closed unanswered.
 */
export class OutcomeUnknownError extends Error {}

/** What a topic needs from the broker's storage (store/storage.ts binds one to each topic). */
export interface TopicStore {
  readonly log: SegmentLog;
  /** Why the disk is failing, or null. */
  health(): string | null;
  /** Why no publish may be stored now whatever memory holds (replication's --min-insync, its fence), or null. */
  refusal(): string | null;
  /** Resolves once everything published so far is stored (group commit). */
  commit(): Promise<void>;
  /** A flush soon that nobody waits for (a spill, a state change). */
  requestFlush(): void;
  noteDiskRead(): void;
  /** The whole backlog was dropped: the segments go, the log goes on at `nextOffset`. */
  clearLog(nextOffset: number): void;
  dropChannel(channel: string): void;
}
