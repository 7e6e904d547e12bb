import type { ChannelMessage } from './message.js';

/** A connection subscribed to a channel, as the channel sees it (tcp/ implements it). */
export interface Consumer {
  readonly sampleRate: number;
  readonly msgTimeoutMs: number;
  /** Subscribed, RDY > in-flight, not closing, socket not backed up. */
  canReceive(): boolean;
  /** Writes the message frame; the consumer counts it in flight. */
  deliver(msg: ChannelMessage): void;
  /** A message it had in flight left without its FIN/REQ (timeout, channel emptied). */
  releaseInFlight(): void;
  /** The channel is deleted: the connection must close. */
  closeForChannelDelete(): void;
}

/** What FIN, REQ and TOUCH of a message the consumer does not hold fail with (E_FIN_FAILED etc.). */
export const FinishError = {
  NotInFlight: 'ID not in flight',
  NotOwner: 'client does not own message',
} as const;
export type FinishError = (typeof FinishError)[keyof typeof FinishError];
