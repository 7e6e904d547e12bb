import { isEphemeralName } from '@nsq-ts/protocol';
import { Channel, type ChannelContext } from './channel.js';
import type { BrokerContext } from './context.js';
import type { SkipRange, TopicDelta, TopicSettings } from './durable-state.js';
import { findRecord, forEachRecord } from './log/log-reader.js';
import { MemoryTail } from './log/memory-tail.js';
import type { SegmentLog } from './log/segment-log.js';
import { WriteSet } from './log/write-set.js';
import type { MessageRecord } from './message.js';
import { MessageIdGenerator } from './message-id.js';
import type { TopicLog } from './topic-log.js';

/** Messages memory may hold past --mem-queue-size while a spill is being written. */
const SPILL_SLACK = 10_000;

/** Written records kept in memory for readers even with --mem-queue-size=0, by count and bytes. */
const WRITTEN_CACHE = 5_000;
const WRITTEN_CACHE_BYTES = 8 * 1024 * 1024;

/** Messages a redrive moves per step (and per flush it waits for). */
const REDRIVE_CHUNK = 1_000;

/** A publish the topic refused because the disk is failing and memory is full (E_PUB_FAILED). */
export class StoreUnavailableError extends Error {}

/** A publish that would take the backlog past max_depth/max_bytes with overflow=reject. */
export class TopicFullError extends Error {
  constructor() {
    super('topic full');
  }
}

/** Where a replay starts, or (no longer retained) the earliest time or offset still available. */
export type ReplayTarget = { readonly offset: number } | { readonly earliest: string };

/** What a topic needs from the broker's storage (store/storage.ts binds one to each topic). */
export interface TopicStore {
  readonly log: SegmentLog;
  /** Why the disk is failing, or null. */
  health(): string | null;
  /** Resolves once everything published so far is stored (group commit). */
  commit(): Promise<void>;
  /** A flush soon that nobody waits for (a spill, a state change). */
  requestFlush(): void;
  noteDiskRead(): void;
  /** The whole backlog was dropped: the segments go, the log goes on at `nextOffset`. */
  clearLog(nextOffset: number): void;
  dropChannel(channel: string): void;
}

/**
 * A topic: one log of messages that every channel reads through its own cursor (DESIGN §2).
 * The newest part is in memory (`tail`); past --mem-queue-size the oldest are written to the
 * segment files and channels read them back from there. What every channel has passed leaves
 * memory; what every channel has also finished is never written.
 */
export class Topic implements TopicLog {
  readonly name: string;
  readonly ephemeral: boolean;
  readonly tail = new MemoryTail();
  readonly channels = new Map<string, Channel>();
  /** The segment files; null for an ephemeral topic (never touches disk, nsq-spec §5.3). */
  readonly log: SegmentLog | null;
  /** Records below it are on disk, or were not needed when it was their turn. */
  writtenUpTo = 0;
  paused = false;
  /** While paused, channels may not read at or past this offset (DESIGN §2 release mark). */
  releaseMark = Number.POSITIVE_INFINITY;
  skips: SkipRange[] = [];
  messageCount = 0;
  messageBytes = 0;
  deleted = false;
  /** Set over HTTP; what is absent follows the nsqd flags. Replaced whole, never mutated. */
  settings: TopicSettings = {};
  /** Publishes (PUB/MPUB/DPUB commands) refused by overflow=reject since start. */
  rejectedCount = 0;
  /** Messages dropped by overflow=drop_oldest while the topic had no channel. */
  droppedCount = 0;
  /** Messages its channels let expire (message_ttl), one per channel that reached them. */
  expiredCount = 0;
  /** Messages moved out of this topic by POST /topic/redrive. */
  redrivenCount = 0;
  private redriving: Promise<void> = Promise.resolve();
  /**
   * Offsets of dead letters appended since the last flush took them: the flush stores them as
   * an intent before its appends (see `takeDeadLetters`).
   */
  private unflushedDeadLetters: number[] = [];
  /** Durable mode: DPUBs fanned out once stored. */
  private unwrittenDeferred: MessageRecord[] = [];
  /** Everything below it was dropped (emptied without channels, last channel deleted). */
  private droppedBelow = 0;
  /** Retention: [floor, monotonic ms] — every channel had finished what is below floor by then. */
  private finishedMarks: [number, number][] = [];
  private markBucketStartMs = 0;
  /** Retention: below it, every channel finished at least `retention` ago. */
  private retainedFloor = -1;
  /** Bumped by every change of paused, release mark, skips or the dropped backlog. */
  private changes = 0;
  private committedChanges = -1;
  /** While lookupd's channels are made (nsq-spec §4.4): they start at the log's start, nothing is trimmed. */
  private starting = false;
  private readonly ids: MessageIdGenerator;
  private readonly ctx: BrokerContext;
  private readonly store: TopicStore | null;
  private readonly channelCtx: ChannelContext;

  constructor(ctx: BrokerContext, name: string, store: TopicStore | null, nextOffset = 0) {
    this.ctx = ctx;
    this.name = name;
    this.ephemeral = isEphemeralName(name);
    this.ids = new MessageIdGenerator(ctx.options.nodeId);
    this.store = store;
    this.log = store?.log ?? null;
    const next = Math.max(nextOffset, this.log?.endOffset ?? 0);
    this.tail.resetTo(next);
    this.writtenUpTo = next;
    this.channelCtx = {
      options: ctx.options,
      clock: ctx.clock,
      logger: ctx.logger,
      schedulePump: (channel) => ctx.schedulePump(channel),
      requestFlush: () => store?.requestFlush(),
      onIdle: (channel) => {
        if (channel.ephemeral) this.deleteChannel(channel.name);
      },
      deadLetter: (topic, record) => ctx.deadLetter(topic, record),
    };
  }

  /** Where a first channel starts: the oldest message held, on disk or in memory. */
  get backlogStart(): number {
    const log = this.log;
    if (log === null || log.segments.length === 0) return this.tail.start;
    // Segments of a dropped backlog are deleted by the next flush: they do not count.
    return Math.max(this.droppedBelow, Math.min(log.firstOffset, this.tail.start));
  }

  get readLimit(): number {
    const end = this.paused ? this.releaseMark : this.tail.end;
    // Durable mode delivers only what is stored: a refused publish is never delivered.
    if (this.log !== null && this.ctx.options.memQueueSize === 0 && this.writtenUpTo < end) return this.writtenUpTo;
    return end;
  }

  /** Topic depth: messages not yet handed to channels (all of them while it has no channel). */
  get depth(): number {
    const end = this.tail.end;
    if (this.channels.size === 0) return end - this.backlogStart - this.skippedBetween(this.backlogStart, end);
    return this.paused ? end - this.releaseMark - this.skippedBetween(this.releaseMark, end) : 0;
  }

  get backendDepth(): number {
    if (this.channels.size === 0) return Math.max(0, this.tail.start - this.backlogStart);
    return 0;
  }

  skippedBetween(from: number, to: number): number {
    let n = 0;
    for (const [a, b] of this.skips) n += Math.max(0, Math.min(b, to) - Math.max(a, from));
    return n;
  }

  noteDiskRead(): void {
    this.store?.noteDiskRead();
  }

  getChannel(name: string): Channel {
    let channel = this.channels.get(name);
    if (channel === undefined) {
      // The first channel takes the backlog; later ones start at the end (nsq-spec §5.1) — of
      // what was released: a paused topic hands its held messages to every channel on unpause.
      let cursor = this.tail.end;
      if (this.channels.size === 0 || this.starting) cursor = this.backlogStart;
      else if (this.paused) cursor = Math.min(this.releaseMark, this.tail.end);
      channel = this.addChannel(name, cursor);
      this.ctx.logger.info(`TOPIC(${this.name}): new channel(${name})`);
      this.store?.requestFlush();
      this.ctx.onChannelCreated(this.name, name);
    }
    return channel;
  }

  /** A channel from the state store or an NSQ import; message_count counts from `countFrom`. */
  restoreChannel(name: string, cursor: number, paused: boolean, countFrom: number): Channel {
    const channel = this.addChannel(name, cursor);
    channel.paused = paused;
    channel.countFrom = countFrom;
    return channel;
  }

  private addChannel(name: string, cursor: number): Channel {
    const channel = new Channel(this.channelCtx, this, name, isEphemeralName(name), cursor);
    this.channels.set(name, channel);
    return channel;
  }

  deleteChannel(name: string): boolean {
    const channel = this.channels.get(name);
    if (channel === undefined) return false;
    this.channels.delete(name);
    channel.close();
    if (!channel.ephemeral) this.store?.dropChannel(name);
    this.ctx.logger.info(`TOPIC(${this.name}): deleting channel(${name})`);
    this.ctx.onChannelDeleted(this.name, name);
    if (this.channels.size === 0) {
      // What the deleted channels had not read is gone with them; the topic starts empty.
      this.dropBacklog();
      if (this.ephemeral) this.ctx.onEphemeralTopicEmpty(this);
    } else {
      this.trim();
    }
    return true;
  }

  /** PUB. Null when the message is safe in memory, else a promise settled once it is on disk. */
  publish(data: Buffer): Promise<void> | null {
    this.admit(1, data.length);
    this.append(data, 0, data.length, this.ctx.clock.wallMs(), 0);
    this.messageCount++;
    this.messageBytes += data.length;
    this.afterAppend();
    return this.settle();
  }

  /** MPUB: bodies are ranges of `data`, so the batch buffer is their only copy. */
  publishBatch(
    data: Buffer,
    starts: readonly number[],
    lengths: readonly number[],
    count: number,
  ): Promise<void> | null {
    this.admit(count, data.length);
    const nowMs = this.ctx.clock.wallMs();
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const length = lengths[i] as number;
      this.append(data, starts[i] as number, length, nowMs, 0);
      bytes += length;
    }
    this.messageCount += count;
    this.messageBytes += bytes;
    this.afterAppend();
    return this.settle();
  }

  /**
   * DPUB: into the log like any message; fanning-out channels also get it deferred at once and
   * skip it when their cursor gets there. Otherwise it waits in the log with its due time.
   */
  publishDeferred(data: Buffer, deferMs: number): Promise<void> | null {
    this.admit(1, data.length);
    const clock = this.ctx.clock;
    const offset = this.append(data, 0, data.length, clock.wallMs(), clock.monotonicMs() + deferMs);
    const record = this.tail.get(offset) as MessageRecord;
    this.messageCount++;
    this.messageBytes += data.length;
    if (this.channels.size > 0 && !this.paused && !this.starting) {
      // Durable mode hands it out only once stored (a refused DPUB must never be delivered).
      if (this.log !== null && this.ctx.options.memQueueSize === 0) this.unwrittenDeferred.push(record);
      else for (const channel of this.channels.values()) channel.putDeferred(record);
    }
    this.afterAppend();
    return this.settle();
  }

  /** A message from a real nsqd's data path, ID and timestamp kept (a malformed ID gets a new one). */
  appendImported(id: string, publishedAtMs: number, body: Buffer): MessageRecord {
    let hi = Number.parseInt(id.slice(0, 8), 16);
    let lo = Number.parseInt(id.slice(8, 16), 16);
    if (!/^[0-9a-fA-F]{16}$/.test(id)) {
      hi = this.ids.nextHi();
      lo = this.ids.lo;
    }
    // Not counted: message_count is what was published since the process started.
    const offset = this.tail.append(body, 0, body.length, hi, lo, publishedAtMs, 0);
    return this.tail.get(offset) as MessageRecord;
  }

  /**
   * A message another channel gave up after max_attempts: body and publish time kept, a new ID
   * (two channels may give up the same message). Never refused: its channel already let go.
   */
  appendDeadLetter(source: MessageRecord, publishedAtMs = source.publishedAtMs): void {
    const record = source.compact();
    const offset = this.append(record.data, record.start, record.length, publishedAtMs, 0);
    this.messageCount++;
    this.messageBytes += record.length;
    if (this.log !== null) this.unflushedDeadLetters.push(offset);
    this.afterAppend();
    this.store?.requestFlush();
  }

  /**
   * The dead letters a flush writes. It stores their offsets (an intent) before the appends and
   * deletes the intent in the state write that also removes them from their channels: an intent
   * found at start-up marks records whose move did not commit, and they are skipped.
   */
  takeDeadLetters(): number[] {
    const offsets = this.unflushedDeadLetters;
    if (offsets.length > 0) this.unflushedDeadLetters = [];
    return offsets;
  }

  /** A flush failed: its dead letters go with the next one. */
  untakeDeadLetters(offsets: readonly number[]): void {
    if (offsets.length > 0) this.unflushedDeadLetters = [...offsets, ...this.unflushedDeadLetters];
  }

  /** Start-up: dead letters of a move that did not commit (their channel still holds them). */
  skipOrphans(offsets: readonly number[]): void {
    const sorted = [...offsets].sort((a, b) => a - b);
    for (const o of sorted) if (this.skippedBetween(o, o + 1) === 0) this.addSkip(o, o + 1);
    this.changes++;
  }

  private skipAt(offset: number): SkipRange | undefined {
    return this.skips.find(([a, b]) => a <= offset && b > offset);
  }

  /** Skips [from, to), joined to the last range when they touch. */
  private addSkip(from: number, to: number): void {
    const last = this.skips[this.skips.length - 1];
    if (last !== undefined && last[1] === from) last[1] = to;
    else this.skips.push([from, to]);
  }

  /**
   * POST /topic/redrive: moves up to `max` messages into `into` — what the first channel has
   * ready (requeued, then unread), or without channels the buffered backlog — republished
   * there now, body kept. Each chunk's appends to `into` and its removal here happen in one
   * synchronous step and so go in one flush; the appends are dead letters with their intent, so
   * a crash before that flush's state write skips them in `into` and leaves them here.
   * Resolves with how many moved once they are stored. One redrive of a topic at a time.
   */
  redrive(into: Topic, max: number): Promise<number> {
    const run = this.redriving.then(() => this.redriveNow(into, max));
    this.redriving = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async redriveNow(into: Topic, max: number): Promise<number> {
    let moved = 0;
    const sink = (record: MessageRecord) => into.appendDeadLetter(record, this.ctx.clock.wallMs());
    while (moved < max && !this.deleted && !into.deleted) {
      const chunk = Math.min(REDRIVE_CHUNK, max - moved);
      const channel = this.channels.values().next().value;
      let n: number;
      if (channel !== undefined) {
        n = channel.drain(chunk, sink);
        if (n === 0) {
          const loading = channel.diskRead();
          if (loading === null) break;
          await loading;
          continue;
        }
      } else {
        n = await this.drainBacklog(chunk, sink);
        if (n === 0) break;
      }
      moved += n;
      this.redrivenCount += n;
      await (this.store?.commit() ?? new Promise<void>((resolve) => setImmediate(resolve)));
    }
    return moved;
  }

  /** Without channels: up to `max` messages of the backlog into `sink`, then skipped here. */
  private async drainBacklog(max: number, sink: (record: MessageRecord) => void): Promise<number> {
    const start = this.backlogStart;
    let from = start;
    for (let skip = this.skipAt(from); skip !== undefined; skip = this.skipAt(from)) from = skip[1];
    const records: MessageRecord[] = [];
    const log = this.log;
    if (log !== null && from < this.tail.start) {
      const last = Math.min(this.tail.start, from + max) - 1;
      await forEachRecord(log, from, last, (r) => {
        if (records.length < max) records.push(r.compact());
      });
    }
    // The read was asynchronous: only a backlog still as it was is moved.
    if (this.channels.size > 0 || this.backlogStart !== start || this.skipAt(from) !== undefined || this.deleted)
      return 0;
    let to = records.length > 0 ? (records[records.length - 1] as MessageRecord).offset + 1 : from;
    for (let o = Math.max(to, this.tail.start); o < this.tail.end && records.length < max; o++) {
      records.push(this.tail.get(o) as MessageRecord);
      to = o + 1;
    }
    let n = 0;
    for (const r of records) {
      if (this.skippedBetween(r.offset, r.offset + 1) > 0) continue;
      sink(r);
      n++;
    }
    if (to > from) {
      this.addSkip(from, to);
      this.changes++;
      if (to > this.tail.start) this.tail.trimTo(Math.min(to, this.tail.end));
      this.store?.requestFlush();
    }
    return n;
  }

  private append(data: Buffer, start: number, length: number, nowMs: number, dueAt: number): number {
    const hi = this.ids.nextHi();
    return this.tail.append(data, start, length, hi, this.ids.lo, nowMs, dueAt);
  }

  /**
   * Every PUB, MPUB and DPUB passes here before anything is appended, so a refused MPUB stores
   * nothing. While the disk fails, memory may not grow past --mem-queue-size; with a cap and
   * overflow=reject, the backlog may not grow past it.
   */
  private admit(count: number, bytes: number): void {
    const store = this.store;
    if (store !== null) {
      const health = store.health();
      if (health !== null && this.tail.length >= this.ctx.options.memQueueSize) throw new StoreUnavailableError(health);
    }
    const cap = this.depthCap(bytes / count);
    if (cap < Number.POSITIVE_INFINITY && this.overflow === 'reject' && this.deepestBacklog() + count > cap) {
      this.rejectedCount++;
      throw new TopicFullError();
    }
  }

  get maxDepth(): number {
    return this.settings.maxDepth ?? this.ctx.options.maxDepth;
  }

  get maxBytes(): number {
    return this.settings.maxBytes ?? this.ctx.options.maxBytes;
  }

  get overflow(): 'reject' | 'drop_oldest' {
    return this.settings.overflow ?? this.ctx.options.overflow;
  }

  get messageTtlMs(): number {
    return this.settings.messageTtlMs ?? this.ctx.options.messageTtlMs;
  }

  get retentionMs(): number {
    return this.settings.retentionMs ?? this.ctx.options.retentionMs;
  }

  /** With retention every record is written, and memory drops only written ones: replay reads them back. */
  private get retains(): boolean {
    return this.log !== null && this.retentionMs > 0;
  }

  /**
   * Of the channels' floor, the offset below which segments may be deleted now: without
   * retention the floor itself; with it, the floor as it was `retention` ago. Called once per
   * --sync-timeout. Marks are coarsened to buckets of retention/64, so a long retention keeps
   * few of them; a coarse mark only keeps segments a little longer. After a restart marks start
   * afresh (segments are kept longer, never shorter).
   */
  deletableBelow(floor: number): number {
    const retention = this.retentionMs;
    if (!this.retains) {
      this.finishedMarks = [];
      return floor;
    }
    const now = this.ctx.clock.monotonicMs();
    const marks = this.finishedMarks;
    const last = marks[marks.length - 1];
    if (last === undefined || floor > last[0]) {
      if (last !== undefined && now - this.markBucketStartMs < retention / 64) {
        last[0] = floor;
        last[1] = now;
      } else {
        marks.push([floor, now]);
        this.markBucketStartMs = now;
      }
    }
    while (marks.length > 0 && (marks[0] as [number, number])[1] <= now - retention) {
      this.retainedFloor = Math.max(this.retainedFloor, (marks.shift() as [number, number])[0]);
    }
    // A replay moved a cursor back: what it needs again stays, whatever the marks say.
    return Math.min(floor, this.retainedFloor);
  }

  /**
   * Where `POST /channel/replay` starts: the first retained message published at or after
   * `sinceMs`, or the message at `offset`; `earliest` when that is no longer retained.
   */
  async replayTarget(at: { readonly sinceMs: number } | { readonly offset: number }): Promise<ReplayTarget> {
    const end = this.tail.end;
    const earliest = await this.retainedRecord(this.backlogStart, () => true);
    if (earliest === null) {
      if ('offset' in at ? at.offset >= end : end === 0) return { offset: end };
      return { earliest: `offset ${end} (nothing retained)` };
    }
    if ('offset' in at) {
      if (at.offset < earliest.offset) return { earliest: `offset ${earliest.offset}` };
      return { offset: at.offset };
    }
    // Offset 0 retained: nothing was ever lost, however early `since` is.
    if (at.sinceMs < earliest.publishedAtMs && earliest.offset > 0) {
      return { earliest: new Date(earliest.publishedAtMs).toISOString() };
    }
    const since = at.sinceMs;
    const found = await this.retainedRecord(
      await this.segmentBefore(since, earliest.offset),
      (r) => r.publishedAtMs >= since,
    );
    return { offset: found?.offset ?? this.tail.end };
  }

  /**
   * Where a scan for `sinceMs` may start: the first offset of the last segment whose first
   * record was published before it (publish times follow log order, bar wall-clock steps).
   */
  private async segmentBefore(sinceMs: number, from: number): Promise<number> {
    const log = this.log;
    if (log === null) return from;
    const segments = log.segments.filter((s) => s.firstOffset >= from && s.firstOffset < this.tail.start);
    let lo = 0;
    let hi = segments.length - 1;
    let start = from;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const first = (segments[mid] as { firstOffset: number }).firstOffset;
      const r = await findRecord(log, first, () => true);
      if (r !== null && r.publishedAtMs < sinceMs) {
        start = first;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return start;
  }

  /** The first record at or after `from`, on disk then in memory, outside skipped ranges, that passes `test`. */
  private async retainedRecord(from: number, test: (r: MessageRecord) => boolean): Promise<MessageRecord | null> {
    const wanted = (r: MessageRecord) => this.skippedBetween(r.offset, r.offset + 1) === 0 && test(r);
    const log = this.log;
    if (log !== null && from < this.tail.start && log.segments.length > 0) {
      const r = await findRecord(log, from, (r) => r.offset >= this.tail.start || wanted(r));
      if (r !== null && r.offset < this.tail.start) return r;
    }
    for (let o = Math.max(from, this.tail.start); o < this.tail.end; o++) {
      const r = this.tail.get(o) as MessageRecord;
      if (wanted(r)) return r;
    }
    return null;
  }

  /** Replay: `channel` reads again from `offset`; resolves once its cursor is stored. */
  replay(channel: Channel, offset: number): Promise<void> {
    channel.rewind(offset);
    this.trim();
    return this.store?.commit() ?? Promise.resolve();
  }

  noteExpired(): void {
    this.expiredCount++;
  }

  /**
   * The backlog's cap in messages: max_depth, and max_bytes over the mean message size (what
   * was published so far, else `incomingMean`). Infinite without caps.
   */
  private depthCap(incomingMean: number): number {
    const depth = this.maxDepth;
    const bytes = this.maxBytes;
    if (depth === 0 && bytes === 0) return Number.POSITIVE_INFINITY;
    let cap = depth === 0 ? Number.POSITIVE_INFINITY : depth;
    if (bytes > 0) {
      const mean = this.messageCount > 0 ? this.messageBytes / this.messageCount : incomingMean;
      cap = Math.min(cap, Math.floor(bytes / Math.max(1, mean)));
    }
    return cap;
  }

  /** Messages the deepest channel has not read (or the topic holds, without channels). */
  private deepestBacklog(): number {
    const end = this.tail.end;
    if (this.channels.size === 0) return this.depth;
    let cursor = end;
    for (const channel of this.channels.values()) if (channel.cursor < cursor) cursor = channel.cursor;
    return end - cursor - this.skippedBetween(cursor, end);
  }

  /** overflow=drop_oldest: channels (or the topic, without channels) past the cap lose their oldest. */
  private dropOverflow(): void {
    const cap = this.depthCap(0);
    if (cap === Number.POSITIVE_INFINITY || this.overflow !== 'drop_oldest') return;
    const end = this.tail.end;
    if (this.channels.size > 0) {
      for (const channel of this.channels.values()) if (end - channel.cursor > cap) channel.dropBelow(end - cap);
      this.trim();
      return;
    }
    const depth = this.depth;
    if (depth <= cap) return;
    // Without channels the dropped ranges are skips, so a restart does not bring them back.
    let excess = depth - cap;
    let at = this.backlogStart;
    while (excess > 0) {
      const skip = this.skipAt(at);
      if (skip !== undefined) {
        at = skip[1];
        continue;
      }
      const next = this.skips.find(([a]) => a > at)?.[0] ?? Number.POSITIVE_INFINITY;
      const to = Math.min(at + excess, next);
      const adjacent = this.skips.find(([, b]) => b === at);
      if (adjacent !== undefined) adjacent[1] = to;
      else this.skips.push([at, to]);
      this.droppedCount += to - at;
      excess -= to - at;
      at = to;
    }
    this.changes++;
    if (at > this.tail.start) this.tail.trimTo(Math.min(at, this.tail.end));
  }

  /** Takes the given fields of `settings` (the rest stays); stored with the topic's state. */
  configure(settings: TopicSettings): void {
    this.settings = { ...this.settings, ...settings };
    this.changes++;
    this.store?.requestFlush();
    this.dropOverflow();
  }

  /**
   * At --mem-queue-size=0 every publisher waits for the disk (durable mode). Otherwise a spill
   * is written behind the publishers, who wait only once memory is far past the limit.
   */
  private settle(): Promise<void> | null {
    const store = this.store;
    if (store === null) return null;
    const limit = this.ctx.options.memQueueSize;
    const over = this.tail.length - limit;
    if (over <= 0) return null;
    if (limit === 0 || over > Math.max(limit, SPILL_SLACK)) return store.commit();
    store.requestFlush();
    return null;
  }

  private afterAppend(): void {
    this.dropOverflow();
    const limit = this.ctx.options.memQueueSize;
    if (this.channels.size === 0) {
      // An ephemeral topic never holds more than --mem-queue-size messages (nsq-spec §5.3).
      if (this.ephemeral && this.tail.length > limit) this.tail.trimTo(this.tail.end - limit);
      return;
    }
    if (this.paused) return;
    for (const channel of this.channels.values()) {
      // With consumers the pump hands out what it can before the overflow is dropped.
      if (channel.ephemeral && channel.consumers.length === 0) channel.enforceEphemeralLimit(limit);
      channel.schedule();
    }
  }

  beginStarting(): void {
    this.starting = true;
  }

  finishStarting(): void {
    this.starting = false;
    this.trim();
  }

  /** Drops from memory what every channel passed, and written records past --mem-queue-size. */
  trim(): void {
    if (this.starting) return;
    let target = this.tail.start;
    if (this.channels.size > 0) {
      target = this.tail.end;
      for (const channel of this.channels.values()) if (channel.cursor < target) target = channel.cursor;
    }
    if (this.log !== null) {
      // A consumer right behind durable-mode publishers reads the written cache, not the disk.
      const meanBytes = this.messageCount > 0 ? this.messageBytes / this.messageCount : 0;
      const cache = Math.min(WRITTEN_CACHE, Math.floor(WRITTEN_CACHE_BYTES / Math.max(1, meanBytes)));
      const keep = Math.max(this.ctx.options.memQueueSize, cache);
      const spill = Math.min(this.writtenUpTo, this.tail.end - keep);
      if (spill > target) target = spill;
    }
    if (this.retains) target = Math.min(target, this.writtenUpTo);
    if (target > this.tail.start) this.tail.trimTo(target);
  }

  /**
   * What a flush appends, by offset: unwritten records a durable channel (or, with none, the
   * backlog) has not passed, and passed ones still outstanding. The tail stays pinned until
   * `afterWrite` or `discardUnwritten`.
   */
  collectWrites(): WriteSet {
    const from = this.writtenUpTo;
    const to = this.tail.end;
    const clock = this.ctx.clock;
    if (this.log === null || from >= to) return new WriteSet([], this.tail, to, to, clock);
    // Without channels, while lookupd's channels are being made, or with retention, every record is needed.
    let need = this.channels.size === 0 || this.starting || this.retains ? from : Number.POSITIVE_INFINITY;
    for (const channel of this.channels.values())
      if (!channel.ephemeral && channel.cursor < need) need = channel.cursor;
    need = Math.min(Math.max(need, from, this.tail.start), to);
    const held: MessageRecord[] = [];
    if (need > from) {
      const passed = new Map<number, MessageRecord>();
      for (const channel of this.channels.values()) {
        if (channel.ephemeral) continue;
        channel.forEachOutstanding((msg) => {
          const o = msg.record.offset;
          if (o >= from && o < need) passed.set(o, msg.record);
        });
      }
      for (const o of [...passed.keys()].sort((a, b) => a - b)) held.push(passed.get(o) as MessageRecord);
    }
    this.tail.pin(need);
    return new WriteSet(held, this.tail, need, to, clock);
  }

  /** A flush wrote everything below `to` that was needed: memory may now spill. */
  afterWrite(to: number): void {
    this.tail.unpin();
    if (to > this.writtenUpTo) this.writtenUpTo = to;
    if (this.unwrittenDeferred.length > 0) this.fanOutWritten(to);
    this.trim();
    if (this.ctx.options.memQueueSize === 0 && !this.paused) {
      for (const channel of this.channels.values()) channel.schedule();
    }
  }

  /** A flush failed: in durable mode its publishers got E_PUB_FAILED, so channels skip its messages. */
  discardUnwritten(to: number): void {
    this.tail.unpin();
    if (this.ctx.options.memQueueSize !== 0 || to <= this.writtenUpTo) return;
    this.unwrittenDeferred = this.unwrittenDeferred.filter((r) => r.offset >= to);
    this.skips.push([this.writtenUpTo, to]);
    this.writtenUpTo = to;
    this.changes++;
    this.trim();
  }

  /** Stored DPUBs go to the channels that have not passed them. */
  private fanOutWritten(to: number): void {
    const pending = this.unwrittenDeferred;
    this.unwrittenDeferred = [];
    for (const record of pending) {
      if (record.offset >= to) {
        this.unwrittenDeferred.push(record);
        continue;
      }
      if (this.paused) continue; // the cursor takes it from the log and defers it then
      for (const channel of this.channels.values()) if (channel.cursor <= record.offset) channel.putDeferred(record);
    }
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.releaseMark = this.tail.end;
    this.changes++;
    this.store?.requestFlush();
  }

  unpause(): void {
    if (!this.paused) return;
    this.paused = false;
    this.releaseMark = Number.POSITIVE_INFINITY;
    this.changes++;
    this.store?.requestFlush();
    this.afterAppend();
  }

  /** Drops what no channel was handed yet (nsq-spec §5.5): all without channels, else what a pause holds. */
  empty(): void {
    if (this.channels.size === 0) {
      this.dropBacklog();
      return;
    }
    if (!this.paused) return;
    // Ranges never overlap: a second empty while still paused starts where the last ended.
    const last = this.skips[this.skips.length - 1];
    const from = Math.max(this.releaseMark, last !== undefined ? last[1] : 0);
    if (this.tail.end > from) {
      this.skips.push([from, this.tail.end]);
      this.changes++;
      this.store?.requestFlush();
    }
  }

  /** Forgets skipped ranges every channel has passed. */
  pruneSkips(): void {
    if (this.skips.length === 0) return;
    let min = this.channels.size === 0 ? this.backlogStart : Number.POSITIVE_INFINITY;
    for (const channel of this.channels.values()) if (channel.cursor < min) min = channel.cursor;
    // A replay may take a cursor back anywhere retained: its skips stay with it.
    if (this.retains) min = Math.min(min, this.backlogStart);
    const kept = this.skips.filter(([, to]) => to > min);
    if (kept.length === this.skips.length) return;
    // A dropped range leaves the list but must stay out of the channels' message_count.
    for (const range of this.skips) {
      if (range[1] > min) continue;
      for (const channel of this.channels.values()) if (range[1] > channel.countFrom) channel.prunedSkips.push(range);
    }
    this.skips = kept;
    this.changes++;
  }

  /** Emptied without channels, or the last channel deleted. */
  private dropBacklog(): void {
    this.tail.clear();
    this.droppedBelow = this.tail.end;
    this.writtenUpTo = this.tail.end;
    this.skips = [];
    if (this.paused) this.releaseMark = this.tail.end;
    this.changes++;
    this.store?.clearLog(this.tail.end);
  }

  // ---- durable state (the delta/committed contract of durable-state.ts) ----

  restoreState(state: Pick<TopicDelta, 'paused' | 'releaseMark' | 'skips'> & { settings?: TopicSettings }): void {
    this.paused = state.paused;
    if (state.settings !== undefined) this.settings = state.settings;
    if (state.paused) this.releaseMark = state.releaseMark;
    this.skips = state.skips.map(([from, to]) => [from, to]);
  }

  /** What to store of this topic, or null when the store has it already. */
  durableDelta(): TopicDelta | null {
    if (this.changes === this.committedChanges) return null;
    return {
      changes: this.changes,
      paused: this.paused,
      settings: this.settings,
      nextOffset: this.tail.end,
      releaseMark: Number.isFinite(this.releaseMark) ? this.releaseMark : 0,
      skips: this.skips.map(([from, to]) => [from, to]),
    };
  }

  committed(delta: TopicDelta): void {
    this.committedChanges = delta.changes;
  }

  close(): void {
    this.deleted = true;
    for (const name of [...this.channels.keys()]) {
      const channel = this.channels.get(name) as Channel;
      this.channels.delete(name);
      channel.close();
    }
    this.tail.clear();
  }
}
