import type { Channel } from './channel.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { NsqdOptions } from './options.js';
import type { Topic } from './topic.js';

/** What topics and channels need from the broker that owns them (no I/O). */
export interface BrokerContext {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Runs `channel.pump()` once, later in this turn of the event loop. */
  schedulePump(channel: Channel): void;
  /** An ephemeral topic lost its last channel and should be deleted (nsq-spec §5.3). */
  onEphemeralTopicEmpty(topic: Topic): void;
  /** A channel was made or deleted (lookupd REGISTER/UNREGISTER). */
  onChannelCreated(topic: Topic, channel: string): void;
  onChannelDeleted(topic: Topic, channel: string): void;

  // Durable storage (store/storage.ts); a broker without it keeps everything in memory.
  /** Why the disk is failing, or null. */
  storageHealth(): string | null;
  /** Resolves once everything published so far is on disk (group commit). */
  commit(): Promise<void>;
  /** Memory is past --mem-queue-size: write the spill soon (nobody waits for it). */
  spill(): void;
  /** Counts a message read from disk toward --sync-every. */
  noteOp(): void;
  /** The topic dropped its whole backlog: delete its segment files. */
  clearLog(topic: Topic): void;
  /** The channel is deleted: forget its stored state. */
  dropChannel(topic: Topic, channel: Channel): void;
}
