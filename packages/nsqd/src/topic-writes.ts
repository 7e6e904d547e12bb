import type { Channel } from './channel.js';
import type { Clock } from './clock.js';
import type { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';
import { WriteSet } from './log/write-set.js';
import type { MessageRecord } from './message.js';

/** What a flush reads of a topic to know what to write (a `Topic` is one). */
export interface WritingTopic {
  readonly tail: MemoryTail;
  readonly log: SegmentLog | null;
  /** Records below it are on disk, or were not needed when it was their turn. */
  readonly writtenUpTo: number;
  readonly channels: ReadonlyMap<string, Channel>;
  /** Every record must be written, passed by the channels or not. */
  readonly needsEveryRecord: boolean;
}

/**
 * What a flush appends, by offset: unwritten records a durable channel (or, with none, the
 * backlog) has not passed, and passed ones still outstanding. The tail stays pinned until the
 * topic's `afterWrite` or `discardUnwritten`.
 */
export function collectWrites(topic: WritingTopic, clock: Clock): WriteSet {
  const tail = topic.tail;
  const from = topic.writtenUpTo;
  const to = tail.end;
  if (topic.log === null || from >= to) return new WriteSet([], tail, to, to, clock);
  let need = topic.needsEveryRecord ? from : Number.POSITIVE_INFINITY;
  for (const channel of topic.channels.values()) if (!channel.ephemeral && channel.cursor < need) need = channel.cursor;
  need = Math.min(Math.max(need, from, tail.start), to);
  const held: MessageRecord[] = [];
  if (need > from) {
    const passed = new Map<number, MessageRecord>();
    for (const channel of topic.channels.values()) {
      if (channel.ephemeral) continue;
      channel.forEachOutstanding((msg) => {
        const o = msg.record.offset;
        if (o >= from && o < need) passed.set(o, msg.record);
      });
    }
    for (const o of [...passed.keys()].sort((a, b) => a - b)) held.push(passed.get(o) as MessageRecord);
  }
  tail.pin(need);
  return new WriteSet(held, tail, need, to, clock);
}
