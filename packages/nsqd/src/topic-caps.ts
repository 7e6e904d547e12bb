import type { Channel } from './channel.js';
import type { SkipRange } from './durable-state.js';
import type { MemoryTail } from './log/memory-tail.js';
import { skipAt } from './skip-ranges.js';

/** What max_depth/max_bytes and the overflow policy read and change of a topic (a `Topic` is one). */
export interface CappedTopic {
  readonly maxDepth: number;
  readonly maxBytes: number;
  readonly overflow: 'reject' | 'drop_oldest';
  readonly messageCount: number;
  readonly messageBytes: number;
  readonly channels: ReadonlyMap<string, Channel>;
  readonly tail: MemoryTail;
  /** Messages not yet handed to channels. */
  readonly depth: number;
  readonly backlogStart: number;
  readonly skips: SkipRange[];
  /** Messages dropped by overflow=drop_oldest while the topic had no channel. */
  droppedCount: number;
  skippedBetween(from: number, to: number): number;
  trim(): void;
  /** Its skips changed: a state change to store. */
  noteStateChange(): void;
}

/**
 * The backlog's cap in messages: max_depth, and max_bytes over the mean message size (what
 * was published so far, else `incomingMean`). Infinite without caps.
 */
function depthCap(topic: CappedTopic, incomingMean: number): number {
  const depth = topic.maxDepth;
  const bytes = topic.maxBytes;
  if (depth === 0 && bytes === 0) return Number.POSITIVE_INFINITY;
  let cap = depth === 0 ? Number.POSITIVE_INFINITY : depth;
  if (bytes > 0) {
    const mean = topic.messageCount > 0 ? topic.messageBytes / topic.messageCount : incomingMean;
    cap = Math.min(cap, Math.floor(bytes / Math.max(1, mean)));
  }
  return cap;
}

/** Messages the deepest channel has not read (or the topic holds, without channels). */
function deepestBacklog(topic: CappedTopic): number {
  if (topic.channels.size === 0) return topic.depth;
  let deepest = 0;
  for (const channel of topic.channels.values()) deepest = Math.max(deepest, channel.backlog);
  return deepest;
}

/** overflow=reject: `count` more messages (`bytes` in all) would take the backlog past its cap. */
export function refusedByCap(topic: CappedTopic, count: number, bytes: number): boolean {
  const cap = depthCap(topic, bytes / count);
  return cap < Number.POSITIVE_INFINITY && topic.overflow === 'reject' && deepestBacklog(topic) + count > cap;
}

/** overflow=drop_oldest: channels (or the topic, without channels) past the cap lose their oldest. */
export function dropOverflow(topic: CappedTopic): void {
  const cap = depthCap(topic, 0);
  if (cap === Number.POSITIVE_INFINITY || topic.overflow !== 'drop_oldest') return;
  if (topic.channels.size > 0) {
    for (const channel of topic.channels.values()) {
      const backlog = channel.backlog;
      if (backlog > cap) channel.dropOldest(backlog - cap);
    }
    topic.trim();
    return;
  }
  const depth = topic.depth;
  if (depth <= cap) return;
  // Without channels the dropped ranges are skips, so a restart does not bring them back.
  const skips = topic.skips;
  let excess = depth - cap;
  let at = topic.backlogStart;
  while (excess > 0) {
    const skip = skipAt(skips, at);
    if (skip !== undefined) {
      at = skip[1];
      continue;
    }
    const next = skips.find(([a]) => a > at)?.[0] ?? Number.POSITIVE_INFINITY;
    const to = Math.min(at + excess, next);
    const adjacent = skips.find(([, b]) => b === at);
    if (adjacent !== undefined) adjacent[1] = to;
    else skips.push([at, to]);
    topic.droppedCount += to - at;
    excess -= to - at;
    at = to;
  }
  topic.noteStateChange();
  const tail = topic.tail;
  if (at > tail.start) tail.trimTo(Math.min(at, tail.end));
}
