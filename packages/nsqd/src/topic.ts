import { isEphemeralName, MessageIdGenerator, nsTimestampFromMs } from '@nsq-ts/protocol';
import { Channel } from './channel.js';
import { monotonicMs, wallMs } from './clock.js';
import type { BrokerContext } from './context.js';
import { MemoryTail } from './log/memory-tail.js';
import { MessageRecord } from './message.js';

/**
 * A topic: one log of messages that every channel reads through its own cursor (DESIGN §2).
 * Each message is stored once whatever the number of channels. Records every channel has
 * passed are trimmed from memory.
 */
export class Topic {
  readonly name: string;
  readonly ephemeral: boolean;
  readonly tail = new MemoryTail();
  readonly channels = new Map<string, Channel>();
  paused = false;
  /**
   * Messages published while the topic is paused: not yet in the log, so channels cannot see
   * them and /topic/empty can drop them without touching what channels already hold.
   */
  private held: MessageRecord[] = [];
  messageCount = 0;
  messageBytes = 0;
  deleted = false;
  private readonly ids: MessageIdGenerator;
  private readonly ctx: BrokerContext;

  constructor(ctx: BrokerContext, name: string) {
    this.ctx = ctx;
    this.name = name;
    this.ephemeral = isEphemeralName(name);
    this.ids = new MessageIdGenerator(ctx.options.nodeId);
  }

  /** Topic depth: messages not yet handed to channels (all of them while it has no channel). */
  get depth(): number {
    return this.held.length + (this.channels.size === 0 ? this.tail.length : 0);
  }

  getChannel(name: string): Channel {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      // The first channel takes the backlog; later ones start at the end (nsq-spec §5.1).
      const cursor = this.channels.size === 0 ? this.tail.start : this.tail.end;
      channel = new Channel(this.ctx, this, name, isEphemeralName(name), cursor);
      this.channels.set(name, channel);
      this.ctx.logger.info(`TOPIC(${this.name}): new channel(${name})`);
    }
    return channel;
  }

  deleteChannel(name: string): boolean {
    const channel = this.channels.get(name);
    if (channel === undefined) return false;
    this.channels.delete(name);
    channel.close();
    this.ctx.logger.info(`TOPIC(${this.name}): deleting channel(${name})`);
    if (this.channels.size === 0) {
      // What the deleted channels had not read is gone with them; the topic starts empty.
      this.tail.clear();
      if (this.ephemeral) this.ctx.onEphemeralTopicEmpty(this);
    } else {
      this.trim();
    }
    return true;
  }

  /** Appends messages (one PUB or a whole MPUB) and wakes the channels. */
  publish(bodies: readonly Buffer[]): void {
    const nowMs = wallMs();
    const ts = nsTimestampFromMs(nowMs);
    let bytes = 0;
    for (const body of bodies) {
      this.append(body, ts.hi, ts.lo, nowMs, 0);
      bytes += body.length;
    }
    this.messageCount += bodies.length;
    this.messageBytes += bytes;
    if (!this.paused) this.afterAppend();
  }

  private append(body: Buffer, tsHi: number, tsLo: number, nowMs: number, dueAt: number): void {
    if (this.paused) {
      this.held.push(new MessageRecord(-1, this.ids.next(), body, tsHi, tsLo, nowMs, dueAt));
    } else {
      this.tail.append(new MessageRecord(this.tail.nextOffset(), this.ids.next(), body, tsHi, tsLo, nowMs, dueAt));
    }
  }

  /**
   * DPUB: when the topic is fanning out, each channel gets the message straight into its
   * deferred set; otherwise it waits in the log with its due time.
   */
  publishDeferred(body: Buffer, deferMs: number): void {
    const nowMs = wallMs();
    const ts = nsTimestampFromMs(nowMs);
    const dueAt = monotonicMs() + deferMs;
    this.messageCount++;
    this.messageBytes += body.length;
    if (this.channels.size > 0 && !this.paused) {
      const record = new MessageRecord(-1, this.ids.next(), body, ts.hi, ts.lo, nowMs, dueAt);
      for (const channel of this.channels.values()) channel.putDeferred(record);
      return;
    }
    this.append(body, ts.hi, ts.lo, nowMs, dueAt);
    if (!this.paused) this.afterAppend();
  }

  private afterAppend(): void {
    const limit = this.ctx.options.memQueueSize;
    if (this.channels.size === 0) {
      // An ephemeral topic never holds more than --mem-queue-size messages (nsq-spec §5.3).
      if (this.ephemeral && this.tail.length > limit) this.tail.trimTo(this.tail.end - limit);
      return;
    }
    for (const channel of this.channels.values()) {
      if (channel.ephemeral) channel.enforceEphemeralLimit(limit);
      channel.schedule();
    }
  }

  /** Drops records every channel has passed. */
  trim(): void {
    if (this.channels.size === 0) return;
    let min = this.tail.end;
    for (const channel of this.channels.values()) if (channel.cursor < min) min = channel.cursor;
    if (min > this.tail.start) this.tail.trimTo(min);
  }

  pause(): void {
    this.paused = true;
  }

  /** Releases what was held into the log, in publish order, and wakes the channels. */
  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const r of held) {
      this.tail.append(
        new MessageRecord(this.tail.nextOffset(), r.id, r.body, r.tsHi, r.tsLo, r.publishedAtMs, r.deliverAfter),
      );
    }
    this.afterAppend();
  }

  /** Drops the topic's own backlog (nsq-spec §5.5): what no channel has been handed yet. */
  empty(): void {
    this.held = [];
    if (this.channels.size === 0) this.tail.clear();
  }

  close(): void {
    this.deleted = true;
    for (const name of [...this.channels.keys()]) {
      const channel = this.channels.get(name) as Channel;
      this.channels.delete(name);
      channel.close();
    }
    this.tail.clear();
    this.held = [];
  }
}
