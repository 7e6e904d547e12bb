import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isEphemeralName, isValidTopicName } from '@nsq-ts/protocol';
import type { Channel } from '../channel.js';
import { type Clock, type TimerHandle, wallFromMonotonic } from '../clock.js';
import { LogReader } from '../log/log-reader.js';
import { SegmentLog } from '../log/segment-log.js';
import type { WriteSet } from '../log/write-set.js';
import type { Logger } from '../logger.js';
import type { ChannelMessage, MessageRecord } from '../message.js';
import type { NsqdOptions } from '../options.js';
import type { Topic } from '../topic.js';
import { readNsqDataPath } from './nsq-import.js';
import {
  type ChannelState,
  channelKey,
  float64s,
  type LoadedTopic,
  outstandingKey,
  putOp,
  type StateClear,
  type StateOp,
  StateStore,
  type TopicState,
  topicKey,
} from './state-store.js';

/** What the storage needs from the broker. */
export interface StorageHost {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly topics: ReadonlyMap<string, Topic>;
  /** Makes a topic around a reopened log (start-up). */
  restoreTopic(name: string, log: SegmentLog, state: TopicState | null): Topic;
}

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

function waiters(): Waiters {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A flush may fail with nobody left waiting (the publisher disconnected).
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const RETRY_AFTER_FAILURE_MS = 1_000;
/** Bytes a recovery probe writes: about one MPUB batch. */
const PROBE_BYTES = 64 * 1024;

/**
 * Durable storage for one nsqd (DESIGN §2, issue #4): the topics' segment logs and the channel
 * state in LevelDB, written together by *flushes*. A flush snapshots, in one synchronous step,
 * the records each topic must write and every changed channel's cursor and outstanding set;
 * then appends the records (one write per topic), fsyncs them when the sync policy says so,
 * and writes the state batch. The log goes first, so stored state never points at a record
 * that is not on disk.
 *
 * Group commit: publishers that must wait for the disk share the promise of the next flush;
 * one flush (and one fsync) serves all of them. --sync-every counts messages written to and
 * read from disk since the last fsync, as NSQ's disk queue does (a message that never leaves
 * memory never forces a sync); --sync-timeout bounds how long any change stays unsynced.
 */
export class Storage {
  private readonly host: StorageHost;
  private readonly options: NsqdOptions;
  private readonly logger: Logger;
  private readonly dataPath: string;
  private db: StateStore | null = null;
  private next: Waiters | null = null;
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private opsSinceSync = 0;
  private readonly clock: Clock;
  private timer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  /** Keys and key prefixes to delete at the start of the next flush (deleted topics and channels). */
  private pendingClears: StateClear[] = [];
  /** File work (segments of emptied or deleted topics) for the start of the next flush. */
  private pendingLogWork: (() => Promise<void>)[] = [];
  private closing = false;
  /** Set by the sync-timeout timer: the next flush looks for finished segments. */
  private floorsDue = false;
  /** Each topic's `stateVersion` as last written. */
  private readonly savedTopics = new WeakMap<Topic, number>();
  /** null when the last write succeeded; else why it failed (/ping NOK, E_PUB_FAILED). */
  health: string | null = null;

  constructor(host: StorageHost) {
    this.host = host;
    this.options = host.options;
    this.logger = host.logger;
    this.clock = host.clock;
    this.dataPath = host.options.dataPath === '' ? process.cwd() : host.options.dataPath;
  }

  private topicDir(name: string): string {
    return join(this.dataPath, 'topics', name);
  }

  /**
   * Opens the state store (taking the data-path lock) and restores every topic and channel:
   * logs reopened (torn tails truncated), cursors and paused flags set, and outstanding
   * messages read back from the logs — deferred ones due at their original time.
   */
  async open(): Promise<void> {
    await mkdir(this.dataPath, { recursive: true });
    this.db = await StateStore.open(join(this.dataPath, 'state'));
    const loaded = await this.db.load();
    // A topic written to disk before its first state flush (crash) still has a directory.
    const dirs = await readdir(join(this.dataPath, 'topics')).catch(() => [] as string[]);
    if (loaded.size === 0 && dirs.length === 0) await this.importNsq();
    for (const name of dirs) if (!loaded.has(name) && isValidTopicName(name)) loaded.set(name, emptyTopic());
    for (const [name, topicState] of loaded) {
      if (isEphemeralName(name) || !isValidTopicName(name)) continue;
      const log = await SegmentLog.open(this.topicDir(name), this.logOptions(), this.logger);
      let next = topicState.state.nextOffset;
      for (const c of topicState.channels.values()) {
        next = Math.max(next, c.state.cursor);
        for (const offset of c.outstanding.keys()) next = Math.max(next, offset + 1);
      }
      const topic = this.host.restoreTopic(name, log, { ...topicState.state, nextOffset: next });
      await this.restoreChannels(topic, topicState);
      topic.trim();
    }
    this.timer = this.clock.setTimer(this.onSyncTimeout, this.options.syncTimeoutMs);
  }

  /** Every --sync-timeout: a synced flush when anything changed, and housekeeping. */
  private readonly onSyncTimeout = (): void => {
    // Finished segments are looked for at this pace, not in every group commit: finding a
    // channel's floor walks all its outstanding messages.
    this.floorsDue = true;
    for (const topic of this.host.topics.values()) {
      topic.tail.shrinkIfEmpty();
      for (const channel of topic.channels.values()) channel.inFlight.shrinkIfEmpty();
    }
    if (this.opsSinceSync > 0 || this.changed()) this.requestFlush(true);
    this.timer?.refresh();
  };

  /**
   * First start on a data path a real nsqd left (DESIGN §2 Import): its topics, channels,
   * paused flags and queued messages are taken over — each channel's own queue as messages it
   * holds (attempts kept), the topic's queue as its backlog — stored, and NSQ's files renamed
   * `*.imported` so they are never taken twice.
   */
  private async importNsq(): Promise<void> {
    const nsq = await readNsqDataPath(this.dataPath, this.options.maxMsgSize);
    if (nsq === null) return;
    for (const warning of nsq.warnings) this.logger.warn(`IMPORT: ${warning}`);
    let messages = 0;
    for (const t of nsq.topics) {
      const topic = this.host.restoreTopic(t.name, this.freshLog(t.name), null);
      const held: [Channel, MessageRecord, number][] = [];
      const channels = t.channels.map((c) => {
        const channel = topic.addChannel(c.name, 0);
        channel.paused = c.paused;
        return [channel, c] as const;
      });
      for (const [channel, c] of channels) {
        for (const m of c.messages)
          held.push([channel, topic.appendImported(m.id, nsToMs(m.timestampNs), m.body), m.attempts]);
      }
      // Channels read the topic's own queue from here on; what they held they hold again. What
      // nsqd had put in them counts no more than on its own restart (message_count 0), what is
      // still in the topic's queue counts once it reaches them, as nsqd's topic pump counts it.
      const end = topic.tail.end;
      for (const [channel] of channels) {
        channel.cursor = end;
        channel.countFrom = end;
      }
      for (const [channel, record, attempts] of held) channel.restoreOutstanding(record, attempts, 0);
      for (const m of t.messages) topic.appendImported(m.id, nsToMs(m.timestampNs), m.body);
      if (t.paused) {
        topic.paused = true;
        topic.releaseMark = end;
      }
      messages += topic.tail.end;
    }
    await this.flush(true);
    if (this.health !== null) throw new Error(`failed to import NSQ data - ${this.health}`);
    for (const file of nsq.files) await rename(file, `${file}.imported`);
    this.logger.info(
      `IMPORT: took over ${nsq.topics.length} topic(s) and ${messages} message(s) from NSQ's data path; its files are renamed *.imported`,
    );
  }

  private logOptions() {
    return { maxBytesPerFile: this.options.maxBytesPerFile, maxBodyBytes: this.options.maxMsgSize, clock: this.clock };
  }

  private async restoreChannels(topic: Topic, loaded: LoadedTopic): Promise<void> {
    const wanted = new Map<number, { channel: Channel; attempts: number; dueAtWallMs: number }[]>();
    for (const [name, c] of loaded.channels) {
      if (isEphemeralName(name)) continue;
      const channel = topic.addChannel(name, c.state.cursor);
      // What the topic released before the restart was counted by the last process.
      channel.countFrom = topic.readLimit;
      channel.paused = c.state.paused;
      for (const offset of float64s(c.state.ahead)) channel.holdAhead(offset);
      for (const [offset, o] of c.outstanding) {
        let list = wanted.get(offset);
        if (list === undefined) {
          list = [];
          wanted.set(offset, list);
        }
        list.push({ channel, attempts: o.attempts, dueAtWallMs: o.dueAtWallMs });
      }
    }
    if (wanted.size === 0 || topic.log === null) return;
    const offsets = [...wanted.keys()].sort((a, b) => a - b);
    const found = await readRecords(topic.log, offsets);
    for (const offset of offsets) {
      const record = found.get(offset);
      for (const w of wanted.get(offset) ?? []) {
        if (record === undefined) {
          this.logger.error(`CHANNEL(${topic.name}:${w.channel.name}): message at offset ${offset} lost (not on disk)`);
          this.pendingClears.push({ key: outstandingKey(topic.name, w.channel.name, offset) });
          continue;
        }
        w.channel.restoreOutstanding(record, w.attempts, w.dueAtWallMs);
      }
    }
    for (const channel of topic.channels.values()) channel.savedVersion = channel.stateVersion;
  }

  /** The log of a topic made at run time. */
  freshLog(name: string): SegmentLog {
    return SegmentLog.fresh(this.topicDir(name), this.logOptions(), this.logger);
  }

  /** Something the state store records changed (a topic or channel made, paused...). */
  touch(): void {
    this.requestFlush(false);
  }

  /** The promise of the next flush: resolved once what was published before this call is on disk. */
  commit(): Promise<void> {
    this.next ??= waiters();
    this.requestFlush(false);
    return this.next.promise;
  }

  /** Counts a message read from disk toward --sync-every (writes are counted by flushes). */
  noteOp(): void {
    if (++this.opsSinceSync >= this.options.syncEvery) this.requestFlush(false);
  }

  /** A topic was emptied or lost its last channel: its segments go in the next flush. */
  clearLog(topic: Topic): void {
    const log = topic.log as SegmentLog;
    const next = topic.tail.end;
    this.pendingLogWork.push(() => log.clear(next));
    this.requestFlush(false);
  }

  /**
   * A channel was deleted: every key of it goes at the start of the next flush — by prefix,
   * so a put of a flush that was under way when it was deleted cannot bring it back.
   */
  dropChannel(topic: Topic, channel: Channel): void {
    if (channel.ephemeral || topic.log === null) return;
    this.pendingClears.push(
      { key: channelKey(topic.name, channel.name) },
      { prefix: `o:${topic.name}:${channel.name}:` },
    );
    channel.saved.clear();
    this.requestFlush(false);
  }

  /** A topic was deleted: its state, then its segment files, go at the start of the next flush. */
  dropTopic(topic: Topic): void {
    const log = topic.log;
    if (log === null) return;
    this.pendingClears.push(
      { key: topicKey(topic.name) },
      { prefix: `c:${topic.name}:` },
      { prefix: `o:${topic.name}:` },
    );
    this.pendingLogWork.push(() => log.destroy());
    this.requestFlush(false);
  }

  private changed(): boolean {
    for (const topic of this.host.topics.values()) {
      if (topic.log === null) continue;
      if (topic.writtenUpTo < topic.tail.end) return true;
      for (const channel of topic.channels.values()) if (channel.savedVersion !== channel.stateVersion) return true;
    }
    return false;
  }

  private requestFlush(sync: boolean): void {
    if (sync) this.opsSinceSync = Math.max(this.opsSinceSync, this.options.syncEvery);
    // While the disk is failing only the retry timer flushes (no busy loop on a full disk).
    if (this.flushScheduled || this.flushing !== null || this.closing || this.retryTimer !== null) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.closing) void this.flush(false);
    });
  }

  /** One flush; when another is running, runs after it (never two at once). */
  flush(forceSync: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        await this.flushOnce(forceSync);
      } finally {
        if (this.flushing === started) this.flushing = null;
      }
      if (this.closing || this.health !== null) return;
      const more = this.next !== null || this.pendingLogWork.length > 0 || this.pendingClears.length > 0;
      if (more || this.opsSinceSync >= this.options.syncEvery) this.requestFlush(false);
    };
    const prior = this.flushing;
    const started: Promise<void> = (prior ?? Promise.resolve()).then(run);
    this.flushing = started;
    return started;
  }

  private async flushOnce(forceSync: boolean): Promise<void> {
    const db = this.db;
    if (db === null) return;
    const done = this.next;
    this.next = null;
    const logWork = this.pendingLogWork;
    this.pendingLogWork = [];
    const clears = this.pendingClears;
    this.pendingClears = [];
    const ops: StateOp[] = [];

    const findFloors = this.floorsDue || this.closing;
    this.floorsDue = false;
    // The snapshot: synchronous, so records, cursors and outstanding sets agree.
    const writes: { topic: Topic; records: WriteSet; to: number }[] = [];
    const after: (() => void)[] = [];
    const floors: { log: SegmentLog; floor: number }[] = [];
    let recordCount = 0;
    for (const topic of this.host.topics.values()) {
      const log = topic.log;
      if (log === null || topic.deleted) continue;
      const records = topic.collectWrites();
      recordCount += records.count;
      writes.push({ topic, records, to: topic.tail.end });
      topic.pruneSkips();
      // The log's next offset is written only with other topic changes: start-up takes the
      // largest of it, the log's end and every stored cursor and outstanding offset, so a
      // durable commit of publishes alone is one fsync (the segment's), not two.
      const topicVersion = topic.stateVersion;
      if (this.savedTopics.get(topic) !== topicVersion) {
        after.push(() => this.savedTopics.set(topic, topicVersion));
        ops.push(
          putOp(topicKey(topic.name), {
            paused: topic.paused,
            nextOffset: topic.tail.end,
            releaseMark: Number.isFinite(topic.releaseMark) ? topic.releaseMark : 0,
            skips: topic.skips,
          } satisfies TopicState),
        );
      }
      let floor = topic.channels.size === 0 ? -1 : Number.POSITIVE_INFINITY;
      for (const channel of topic.channels.values()) {
        if (channel.ephemeral) continue;
        const channelFloor = this.snapshotChannel(topic, channel, ops, after, findFloors);
        if (channelFloor < floor) floor = channelFloor;
      }
      // Only ephemeral channels: none reads the disk, so every segment is finished.
      if (floor === Number.POSITIVE_INFINITY) floor = log.endOffset;
      if (findFloors && floor >= 0) floors.push({ log, floor });
    }
    this.opsSinceSync += recordCount;
    const sync = forceSync || this.opsSinceSync >= this.options.syncEvery;
    if (sync) this.opsSinceSync = 0;

    let workDone = 0;
    try {
      // After a failure, a flush with no records would succeed without showing that the disk
      // takes data again: a probe write must, before the node calls itself healthy.
      if (this.health !== null && recordCount === 0) await this.probe();
      // Deleted state goes before deleted files: a crash in between leaves files nothing
      // refers to, never state that refers to missing files.
      while (clears.length > 0) {
        await db.clear(clears[0] as StateClear);
        clears.shift();
      }
      for (; workDone < logWork.length; workDone++) await (logWork[workDone] as () => Promise<void>)();
      await Promise.all(writes.map((w) => (w.records.count > 0 ? w.topic.log?.append(w.records) : undefined)));
      if (sync) await Promise.all(writes.map((w) => w.topic.log?.sync()));
      if (ops.length > 0) await db.write(ops, sync);
    } catch (err) {
      const message = (err as Error).message;
      if (this.health === null) this.logger.error(`DISKQUEUE: failed to write - ${message}`);
      this.health = `failed to write to disk - ${message}`;
      // Nothing of this flush counts as saved: the next one rewrites all of it.
      this.opsSinceSync = Math.max(this.opsSinceSync, this.options.syncEvery);
      for (const topic of this.host.topics.values()) {
        this.savedTopics.delete(topic);
        for (const channel of topic.channels.values()) channel.savedVersion = -1;
      }
      for (const w of writes) w.topic.discardUnwritten(w.to);
      // Only what did not run is tried again (a topic directory removed twice could take a
      // recreated topic's new segment with it).
      this.pendingLogWork.unshift(...logWork.slice(workDone));
      this.pendingClears.unshift(...clears);
      done?.reject(new Error(this.health));
      this.scheduleRetry();
      return;
    }
    if (this.health !== null) this.logger.info('DISKQUEUE: writes succeed again');
    this.health = null;
    for (const fn of after) fn();
    for (const w of writes) w.topic.afterWrite(w.to);
    done?.resolve();
    // Segments wholly below every channel's floor are finished (stored state agrees now).
    for (const { log, floor } of floors) await log.deleteBelow(floor).catch(() => undefined);
    for (const w of writes) if (w.records.count === 0) await w.topic.log?.release().catch(() => undefined);
  }

  /**
   * Adds a changed channel's state to the batch: cursor, paused flag and the in-flight and
   * requeued messages in one value; a put for each new or changed deferred message and a
   * delete for each that left the deferred set. Returns the channel's ack floor (lowest
   * offset it still needs). `after` runs once the batch is stored.
   */
  private snapshotChannel(
    topic: Topic,
    channel: Channel,
    ops: StateOp[],
    after: (() => void)[],
    findFloor: boolean,
  ): number {
    let floor = channel.cursor;
    const version = channel.stateVersion;
    const unchanged = channel.savedVersion === version;
    if (unchanged && !findFloor) return floor;
    const hot: number[] = [];
    const deferred = new Map<number, ChannelMessage>();
    const changes: [ChannelMessage, number, number][] = [];
    channel.forEachOutstanding((msg) => {
      const offset = msg.record.offset;
      if (offset < floor) floor = offset;
      if (unchanged) return;
      // Deferred: in a heap without an owner (in flight has one; requeued is in no heap).
      if (msg.owner !== null || msg.heapIndex < 0) {
        hot.push(offset, msg.attempts);
        return;
      }
      deferred.set(offset, msg);
      const due = Math.round(wallFromMonotonic(msg.heapKey, this.clock));
      // The two clocks' difference wanders by a few ms between calls: not a change.
      if (msg.savedAttempts !== msg.attempts || Math.abs(due - msg.savedDueAtWallMs) > 1000) {
        ops.push(putOp(outstandingKey(topic.name, channel.name, offset), { attempts: msg.attempts, dueAtWallMs: due }));
        changes.push([msg, msg.attempts, due]);
      }
    });
    if (unchanged) return floor;
    const state: ChannelState = { paused: channel.paused, cursor: channel.cursor };
    if (hot.length > 0) state.hot = new Uint8Array(new Float64Array(hot).buffer);
    const ahead = channel.aheadOffsets();
    if (ahead !== null) state.ahead = new Uint8Array(new Float64Array(ahead).buffer);
    ops.push(putOp(channelKey(topic.name, channel.name), state));
    for (const [offset, msg] of channel.saved) {
      if (deferred.get(offset) !== msg)
        ops.push({ type: 'del', key: outstandingKey(topic.name, channel.name, offset) });
    }
    after.push(() => {
      channel.saved = deferred;
      for (const [msg, attempts, due] of changes) {
        msg.savedAttempts = attempts;
        msg.savedDueAtWallMs = due;
      }
      channel.savedVersion = version;
    });
    return floor;
  }

  /** Writes, syncs and deletes PROBE_BYTES in the data path; throws when the disk refuses. */
  private async probe(): Promise<void> {
    const path = join(this.dataPath, '.write-probe');
    try {
      await writeFile(path, Buffer.alloc(PROBE_BYTES), { flush: true });
    } finally {
      await rm(path, { force: true });
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.closing) return;
    this.retryTimer = this.clock.setTimer(() => {
      this.retryTimer = null;
      this.requestFlush(true);
    }, RETRY_AFTER_FAILURE_MS);
  }

  /**
   * Clean shutdown (nsq-spec §5.7): one last synced flush writes every record still needed and
   * every channel's state — in-flight messages included, so they come back after a restart.
   */
  async close(): Promise<void> {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    if (this.retryTimer !== null) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = null;
    this.closing = true;
    try {
      await this.flush(true);
      if (this.health !== null)
        this.logger.error(`DISKQUEUE: last flush failed, unwritten messages are lost - ${this.health}`);
    } finally {
      for (const topic of this.host.topics.values()) await topic.log?.close().catch(() => undefined);
      await this.db?.close();
      this.db = null;
    }
  }
}

function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}

function emptyTopic(): LoadedTopic {
  return { state: { paused: false, nextOffset: 0, releaseMark: 0, skips: [] }, channels: new Map(), known: false };
}

/** Reads the records at `offsets` (ascending) with one sequential pass; body copies of their own. */
async function readRecords(log: SegmentLog, offsets: readonly number[]): Promise<Map<number, MessageRecord>> {
  const found = new Map<number, MessageRecord>();
  const first = offsets[0] as number;
  const last = offsets[offsets.length - 1] as number;
  let wake: (() => void) | null = null;
  const reader = new LogReader(log, first, () => wake?.());
  const wanted = new Set(offsets);
  let at = first;
  try {
    while (at <= last) {
      const r = reader.peek(at);
      if (r === null) {
        if (reader.exhausted) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      reader.advance();
      if (wanted.has(r.offset)) found.set(r.offset, r.compact());
      at = r.offset + 1;
    }
  } finally {
    reader.close();
  }
  return found;
}
