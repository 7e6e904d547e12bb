import type { Clock } from './clock.js';
import type { ChannelSettings } from './durable-state.js';
import type { MessageRecord } from './message.js';
import type { NsqdOptions } from './options.js';

// A channel's delivery policies: when a message is given up rather than delivered (after
// max_attempts deliveries, or past its topic's message_ttl) and where it goes then (the
// dead-letter topic, or nowhere). Plain decisions; the channel keeps the books.

/** Deliveries after which a message is given up (0 = no limit): the channel's setting, else the flag. */
export function maxAttemptsOf(settings: ChannelSettings, options: NsqdOptions): number {
  return settings.maxAttempts ?? options.maxAttempts;
}

/** Where given-up messages are published ('' = dropped): the channel's setting, else the flag. */
export function deadLetterTopicOf(settings: ChannelSettings, options: NsqdOptions): string {
  return settings.deadLetterTopic ?? options.deadLetterTopic;
}

/** Delivered `maxAttempts` times already: it is given up instead of delivered again. */
export function isExhausted(attempts: number, maxAttempts: number): boolean {
  return maxAttempts > 0 && attempts >= maxAttempts;
}

/** Published `ttlMs` ago or longer (wall clock: publish times are wall times); never with `ttlMs` 0. */
export function isExpired(record: MessageRecord, ttlMs: number, clock: Clock): boolean {
  return ttlMs > 0 && clock.wallMs() - record.publishedAtMs >= ttlMs;
}
