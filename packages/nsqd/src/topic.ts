import { isEphemeralName, MessageIdGenerator } from '@nsq-ts/protocol';
import { Channel } from './channel.js';
import { monotonicMs } from './clock.js';
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
  /**
   * Set while the channels lookupd knows are being made (nsq-spec §4.4): every channel made in
   * that time starts at the log's start, and nothing is trimmed, so none misses a message.
   */
  private starting = false;
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
      const cursor = this.channels.size === 0 || this.starting ? this.tail.start : this.tail.end;
      channel = new Channel(this.ctx, this, name, isEphemeralName(name), cursor);
      this.channels.set(name, channel);
      this.ctx.logger.info(`TOPIC(${this.name}): new channel(${name})`);
      this.ctx.onChannelCreated(this, name);
    }
    return channel;
  }

  deleteChannel(name: string): boolean {
    const channel = this.channels.get(name);
    if (channel === undefined) return false;
    this.channels.delete(name);
    channel.close();
    this.ctx.logger.info(`TOPIC(${this.name}): deleting channel(${name})`);
    this.ctx.onChannelDeleted(this, name);
    if (this.channels.size === 0) {
      // What the deleted channels had not read is gone with them; the topic starts empty.
      this.tail.clear();
      if (this.ephemeral) this.ctx.onEphemeralTopicEmpty(this);
    } else {
      this.trim();
    }
    return true;
  }

  /** Appends one message (PUB) whose body is all of `data`, and wakes the channels. */
  publish(data: Buffer): void {
    this.append(data, 0, data.length, Date.now(), 0);
    this.messageCount++;
    this.messageBytes += data.length;
    if (!this.paused) this.afterAppend();
  }

  /**
   * Appends `count` messages (MPUB) whose bodies are ranges of `data` — stored as ranges, so the
   * batch buffer is the only copy — and wakes the channels once.
   */
  publishBatch(data: Buffer, starts: readonly number[], lengths: readonly number[], count: number): void {
    const nowMs = Date.now();
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i] as number;
      this.append(data, starts[i] as number, length, nowMs, 0);
      bytes += length;
    }
    this.messageCount += count;
    this.messageBytes += bytes;
    if (!this.paused) this.afterAppend();
  }

  private append(data: Buffer, start: number, length: number, nowMs: number, dueAt: number): void {
    const hi = this.ids.nextHi();
    const offset = this.paused ? -1 : this.tail.nextOffset();
    const record = new MessageRecord(offset, hi, this.ids.lo, data, start, length, nowMs, dueAt);
    if (this.paused) this.held.push(record);
    else this.tail.append(record);
  }

  /**
   * DPUB: when the topic is fanning out, each channel gets the message straight into its
   * deferred set; otherwise it waits in the log with its due time.
   */
  publishDeferred(data: Buffer, deferMs: number): void {
    const nowMs = Date.now();
    const dueAt = monotonicMs() + deferMs;
    this.messageCount++;
    this.messageBytes += data.length;
    if (this.channels.size > 0 && !this.paused) {
      const hi = this.ids.nextHi();
      const record = new MessageRecord(-1, hi, this.ids.lo, data, 0, data.length, nowMs, dueAt);
      for (const channel of this.channels.values()) channel.putDeferred(record);
      return;
    }
    this.append(data, 0, data.length, nowMs, dueAt);
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

  /** Marks the topic as making its lookupd channels (see `starting`). */
  beginStarting(): void {
    this.starting = true;
  }

  /** The lookupd channels exist: normal trimming and channel creation resume. */
  finishStarting(): void {
    this.starting = false;
    this.trim();
  }

  /** Drops records every channel has passed. */
  trim(): void {
    if (this.channels.size === 0 || this.starting) return;
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
    for (const r of held) this.tail.append(r.atOffset(this.tail.nextOffset()));
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
