import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { MessageRecord } from './message.js';
import type { NsqdOptions } from './options.js';

/** Something the broker runs once later in this turn of the event loop (a channel's pump). */
export interface Pumpable {
  pump(): void;
}

/** What topics need from the broker that owns them (no I/O; storage comes as a `TopicStore`). */
export interface BrokerContext {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  schedulePump(channel: Pumpable): void;
  /** An ephemeral topic lost its last channel and should be deleted (nsq-spec §5.3). */
  onEphemeralTopicEmpty(topic: { readonly name: string }): void;
  /** A channel was made or deleted (lookupd REGISTER/UNREGISTER). */
  onChannelCreated(topic: string, channel: string): void;
  onChannelDeleted(topic: string, channel: string): void;
  /** A channel gave `record` up after max_attempts: into `topic` (made if need be). */
  deadLetter(topic: string, record: MessageRecord): void;
}
