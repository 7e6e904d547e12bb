import { join } from 'node:path';
import { isEphemeralName, isValidTopicName } from '@nsq-ts/protocol';
import type { Channel } from '../channel.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { ChannelDelta, TopicDelta } from '../durable-state.js';
import type { FileSystem } from '../log/file-system.js';
import { forEachRecord } from '../log/log-reader.js';
import { SegmentLog, type SegmentLogOptions } from '../log/segment-log.js';
import type { Logger } from '../logger.js';
import type { MessageRecord } from '../message.js';
import type { NsqdOptions } from '../options.js';
import type { Topic } from '../topic.js';
import { OutcomeUnknownError, type TopicStore } from '../topic-store.js';
import {
  batchRecords,
  type FlushBatch,
  type FlushTap,
  finishBatch,
  type LogOp,
  NO_RECORDS,
  type TopicBatch,
  writeBatch,
} from './flush-batch.js';
import { readNsqDataPath } from './nsq-import.js';
import {
  channelClears,
  channelStateOps,
  deadLetterKey,
  deadLetterOps,
  deferredKey,
  emptyLoadedTopic,
  float64s,
  type LoadedTopic,
  type StateClear,
  type StateOp,
  StateStore,
  type TopicState,
  topicClears,
  topicStateOp,
} from './state-store.js';

export interface StorageHost {
  readonly options: NsqdOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly topics: ReadonlyMap<string, Topic>;
  restoreTopic(name: string, store: TopicStore, state: TopicState | null): Topic;
}

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  /** commit() calls sharing the promise: the publishes a refusal answers (and any replay or redrive step). */
  publishers: number;
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
  return { promise, resolve, reject, publishers: 0 };
}

const RETRY_AFTER_FAILURE_MS = 1_000;
/** Bytes a recovery probe writes: about one MPUB batch. */
const PROBE_BYTES = 64 * 1024;

interface PendingOps {
  readonly topic: string;
  readonly ops: LogOp[];
}

/** A flush's batch and what to tell the topics and channels once it is stored. */
interface Snapshot {
  readonly batch: FlushBatch;
  readonly written: { readonly topic: Topic; readonly to: number }[];
  readonly topicDeltas: [Topic, TopicDelta][];
  readonly channelDeltas: [Channel, ChannelDelta][];
  /** Dead letters the batch appends, by topic (given back if it fails). */
  readonly deadLetters: [Topic, number[]][];
  readonly extraState: StateOp[];
}

class BoundTopicStore implements TopicStore {
  constructor(
    private readonly storage: Storage,
    private readonly topic: string,
    readonly log: SegmentLog,
  ) {}

  health(): string | null {
    return this.storage.health;
  }

  refusal(): string | null {
    return this.storage.refusal();
  }

  commit(): Promise<void> {
    return this.storage.commit();
  }

  requestFlush(): void {
    this.storage.requestFlush();
  }

  noteDiskRead(): void {
    this.storage.noteDiskRead();
  }

  clearLog(nextOffset: number): void {
    this.storage.queueLogOp(this.topic, this.log, { kind: 'clear', nextOffset });
  }

  dropChannel(channel: string): void {
    this.storage.dropChannel(this.topic, channel);
  }
}

/**
 * Durable storage (DESIGN §2): segment logs plus channel state in LevelDB, written together by flushes: a
 * synchronous snapshot (`durableDelta()`) into a `FlushBatch`, `writeBatch`, then `committed(delta)`.
 * Group commit: one flush and fsync serve every waiting publisher. --sync-every counts messages written to
 * and read from disk since the last fsync, as NSQ's disk queue does; --sync-timeout bounds unsynced time.
 */
export class Storage {
  private readonly host: StorageHost;
  private readonly options: NsqdOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly fs: FileSystem;
  private readonly dataPath: string;
  private db: StateStore | null = null;
  private next: Waiters | null = null;
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private opsSinceSync = 0;
  private timer: TimerHandle | null = null;
  private retryTimer: TimerHandle | null = null;
  /** State of deleted topics and channels, cleared first by the next flush. */
  private pendingClears: StateClear[] = [];
  private pendingOps = new Map<SegmentLog, PendingOps>();
  /** State writes of the storage's own (start-up repairs), in the next flush's state batch. */
  private pendingState: StateOp[] = [];
  private closing = false;
  /** Set by the sync-timeout timer: the next flush looks for finished segments. */
  private floorsDue = false;
  /** A flush moved channel cursors without looking: the next sync timeout flushes to look. */
  private floorsStale = false;
  /**
   * Publishes refused after their flush was stored (replication): answered once a later flush stored their
   * skips here and on every member that may lead, so neither this member after a restart nor one elected
   * delivers them.
   */
  private refusing: { readonly done: Waiters; readonly reason: string }[] = [];
  /** Test only (the window between a refusal and its skips' flush): the flush after a refusal starts this late. */
  private readonly stallAfterRefusalMs = Number(process.env.NSQ_TS_TEST_STALL_AFTER_REFUSAL_MS ?? 0);
  private stallNext = false;
  /** null when the last write succeeded; else why it failed (/ping NOK, E_PUB_FAILED). */
  health: string | null = null;

  constructor(
    host: StorageHost,
    fs: FileSystem,
    private readonly tap: FlushTap | null = null,
  ) {
    this.host = host;
    this.fs = fs;
    this.options = host.options;
    this.logger = host.logger;
    this.clock = host.clock;
    this.dataPath = host.options.dataPath === '' ? process.cwd() : host.options.dataPath;
  }

  private topicDir(name: string): string {
    return join(this.dataPath, 'topics', name);
  }

  private logOptions(): SegmentLogOptions {
    return {
      maxBytesPerFile: this.options.maxBytesPerFile,
      maxBodyBytes: this.options.maxMsgSize,
      clock: this.clock,
      fs: this.fs,
      yieldWhileEncoding: this.options.memQueueSize > 0,
    };
  }

  /** Opens the state store (taking the data-path lock); torn log tails are truncated, deferred keep their due time. */
  async open(): Promise<void> {
    await this.fs.mkdir(this.dataPath, { recursive: true });
    this.db = await StateStore.open(join(this.dataPath, 'state'));
    const loaded = await this.db.load();
    // A topic written to disk before its first state flush (crash) still has a directory.
    const dirs = await this.fs.readdir(join(this.dataPath, 'topics')).catch(() => [] as string[]);
    if (loaded.size === 0 && dirs.length === 0) await this.importNsq();
    for (const name of dirs) if (!loaded.has(name) && isValidTopicName(name)) loaded.set(name, emptyLoadedTopic());
    for (const [name, topicState] of loaded) {
      if (isEphemeralName(name) || !isValidTopicName(name)) continue;
      const log = await SegmentLog.open(this.topicDir(name), this.logOptions(), this.logger);
      let next = topicState.state.nextOffset;
      const orphans = topicState.deadLetterIntent;
      for (const offset of orphans) next = Math.max(next, offset + 1);
      for (const c of topicState.channels.values()) {
        next = Math.max(next, c.state.cursor);
        for (const offset of c.outstanding.keys()) next = Math.max(next, offset + 1);
      }
      const store = new BoundTopicStore(this, name, log);
      const topic = this.host.restoreTopic(name, store, { ...topicState.state, nextOffset: next });
      if (orphans.length > 0) {
        // The skips and the intent's deletion are stored by one state write.
        topic.skipOrphans(orphans);
        this.pendingState.push({ type: 'del', key: deadLetterKey(name) });
        this.logger.warn(`TOPIC(${name}): ${orphans.length} dead letter(s) of an uncommitted move skipped`);
      }
      await this.restoreChannels(topic, topicState);
      topic.trim();
    }
    this.timer = this.clock.setTimer(this.onSyncTimeout, this.options.syncTimeoutMs);
  }

  private readonly onSyncTimeout = (): void => {
    // Finished segments are looked for at this pace, not in every group commit: finding a
    // channel's floor walks all its outstanding messages.
    this.floorsDue = true;
    for (const topic of this.host.topics.values()) {
      topic.tail.shrinkIfEmpty();
      for (const channel of topic.channels.values()) channel.inFlight.shrinkIfEmpty();
    }
    // A channel that drained just after the last look would keep its finished segments until
    // the next change: a flush after the cursors moved looks for them whatever else it holds.
    if (this.opsSinceSync > 0 || this.changed() || this.floorsStale) this.scheduleFlush(true);
    this.timer?.refresh();
  };

  /** First start on a real nsqd's data path (DESIGN §2 Import); NSQ's files become `*.imported`, never taken twice. */
  private async importNsq(): Promise<void> {
    const nsq = await readNsqDataPath(this.dataPath, this.options.maxMsgSize);
    if (nsq === null) return;
    for (const warning of nsq.warnings) this.logger.warn(`IMPORT: ${warning}`);
    let messages = 0;
    for (const t of nsq.topics) {
      const topic = this.host.restoreTopic(t.name, this.freshTopic(t.name), null);
      const held = t.channels.map((c) =>
        c.messages.map((m) => [topic.appendImported(m.id, nsToMs(m.timestampNs), m.body), m.attempts] as const),
      );
      // Channels read the topic's own queue from here on; what they held they hold again. What
      // nsqd had put in them counts no more than on its own restart (message_count 0), what is
      // still in the topic's queue counts once it reaches them, as nsqd's topic pump counts it.
      const end = topic.tail.end;
      t.channels.forEach((c, i) => {
        const channel = topic.restoreChannel(c.name, end, c.paused, end);
        for (const [record, attempts] of held[i] ?? []) channel.restoreOutstanding(record, attempts, 0);
      });
      for (const m of t.messages) topic.appendImported(m.id, nsToMs(m.timestampNs), m.body);
      if (t.paused) topic.restoreState({ paused: true, releaseMark: end, skips: [] });
      messages += topic.tail.end;
    }
    await this.flush(true);
    if (this.health !== null) throw new Error(`failed to import NSQ data - ${this.health}`);
    for (const file of nsq.files) await this.fs.rename(file, `${file}.imported`);
    this.logger.info(
      `IMPORT: took over ${nsq.topics.length} topic(s) and ${messages} message(s) from NSQ's data path; its files are renamed *.imported`,
    );
  }

  private async restoreChannels(topic: Topic, loaded: LoadedTopic): Promise<void> {
    const wanted = new Map<number, { channel: Channel; attempts: number; dueAtWallMs: number }[]>();
    for (const [name, c] of loaded.channels) {
      if (isEphemeralName(name)) continue;
      // What the topic released before the restart was counted by the last process.
      const channel = topic.restoreChannel(name, c.state.cursor, c.state.paused, topic.readLimit);
      if (c.state.settings !== undefined) channel.settings = c.state.settings;
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
    if (wanted.size > 0 && topic.log !== null) {
      const offsets = [...wanted.keys()].sort((a, b) => a - b);
      const found = await readRecords(topic.log, offsets);
      for (const offset of offsets) {
        const record = found.get(offset);
        for (const w of wanted.get(offset) ?? []) {
          if (record === undefined) {
            this.logger.error(
              `CHANNEL(${topic.name}:${w.channel.name}): message at offset ${offset} lost (not on disk)`,
            );
            this.pendingClears.push({ key: deferredKey(topic.name, w.channel.name, offset) });
            continue;
          }
          w.channel.restoreOutstanding(record, w.attempts, w.dueAtWallMs);
        }
      }
    }
    // What was just read back is what the store holds.
    for (const channel of topic.channels.values()) {
      const delta = channel.durableDelta();
      if (delta !== null) channel.committed(delta);
    }
  }

  freshTopic(name: string): TopicStore {
    return new BoundTopicStore(this, name, SegmentLog.fresh(this.topicDir(name), this.logOptions(), this.logger));
  }

  /** The promise of the next flush: resolved once what was published before this call is on disk. */
  commit(): Promise<void> {
    this.next ??= waiters();
    this.next.publishers++;
    this.scheduleFlush(false);
    return this.next.promise;
  }

  /** A flush soon, that nobody waits for: something to store changed (a spill, a topic made, a pause). */
  requestFlush(): void {
    this.scheduleFlush(false);
  }

  /** Counts a message read from disk toward --sync-every (writes are counted by flushes). */
  noteDiskRead(): void {
    if (++this.opsSinceSync >= this.options.syncEvery) this.scheduleFlush(false);
  }

  queueLogOp(topic: string, log: SegmentLog, op: LogOp): void {
    let pending = this.pendingOps.get(log);
    if (pending === undefined) {
      pending = { topic, ops: [] };
      this.pendingOps.set(log, pending);
    }
    pending.ops.push(op);
    this.scheduleFlush(false);
  }

  dropChannel(topic: string, channel: string): void {
    this.pendingClears.push(...channelClears(topic, channel));
    this.scheduleFlush(false);
  }

  /** A topic was deleted: its state, then its segment files, go at the start of the next flush. */
  dropTopic(topic: Topic): void {
    const log = topic.log;
    if (log === null) return;
    this.pendingClears.push(...topicClears(topic.name));
    this.queueLogOp(topic.name, log, { kind: 'destroy' });
  }

  private changed(): boolean {
    for (const topic of this.host.topics.values()) {
      if (topic.log === null) continue;
      if (topic.writtenUpTo < topic.tail.end) return true;
      for (const channel of topic.channels.values()) if (!channel.ephemeral && channel.dirty) return true;
    }
    return false;
  }

  private scheduleFlush(sync: boolean): void {
    if (sync) this.opsSinceSync = Math.max(this.opsSinceSync, this.options.syncEvery);
    // While the disk is failing only the retry timer flushes (no busy loop on a full disk).
    if (this.flushScheduled || this.flushing !== null || this.closing || this.retryTimer !== null) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.closing) void this.flush(false);
    });
  }

  /** Why no publish may be stored now (the replication tap's verdict), or null. */
  refusal(): string | null {
    const reason = this.tap?.refusal() ?? null;
    if (reason !== null) this.tap?.noteRefused(1, true);
    return reason;
  }

  /** Rejects the publishes of a flush the tap refused; the tap counts them. */
  private refuse(done: Waiters, err: Error): void {
    this.tap?.noteRefused(done.publishers, !(err instanceof OutcomeUnknownError));
    done.reject(err);
  }

  /** One flush, after the one running if any (never two at once). */
  flush(forceSync: boolean): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        await this.flushOnce(forceSync);
      } finally {
        if (this.flushing === started) this.flushing = null;
      }
      if (this.closing || this.health !== null) return;
      const more =
        this.next !== null || this.pendingOps.size > 0 || this.pendingClears.length > 0 || this.refusing.length > 0;
      if (more || this.opsSinceSync >= this.options.syncEvery) this.scheduleFlush(false);
    };
    const prior = this.flushing;
    const started: Promise<void> = (prior ?? Promise.resolve()).then(run);
    this.flushing = started;
    return started;
  }

  /** Runs `fn` between two flushes, nothing written meanwhile: replication copies the data path so. */
  between<T>(fn: (db: StateStore, dataPath: string) => Promise<T>): Promise<T> {
    const run = (this.flushing ?? Promise.resolve()).then(() => {
      if (this.db === null) throw new Error('storage is closed');
      return fn(this.db, this.dataPath);
    });
    const settled: Promise<void> = run.then(
      () => undefined,
      () => undefined,
    );
    this.flushing = settled;
    void settled.then(() => {
      if (this.flushing !== settled) return;
      this.flushing = null;
      this.scheduleFlush(false);
    });
    return run;
  }

  private async flushOnce(forceSync: boolean): Promise<void> {
    const db = this.db;
    if (db === null) return;
    if (this.stallNext) {
      this.stallNext = false;
      await new Promise((resolve) => setTimeout(resolve, this.stallAfterRefusalMs));
    }
    const done = this.next;
    this.next = null;
    // Their skips are in this flush's topic state.
    const refusals = this.refusing;
    this.refusing = [];
    const snap = this.snapshot(forceSync);
    const batch = snap.batch;
    const shipment = this.tap?.capture(batch) ?? null;
    // A healthy disk: the batch goes to the followers while this member writes it, so a sync ack waits for the
    // slower of the two, not their sum. Followers may then hold a batch this disk refuses: its publishers get
    // no answer (below), and the next flush sends its records again, which a follower stores once.
    const early = this.health === null && shipment !== null ? shipment.ship() : null;
    try {
      // After a failure, a flush with no records would succeed without showing that the disk
      // takes data again: a probe write must, before the node calls itself healthy.
      if (this.health !== null && batchRecords(batch) === 0) await this.probe();
      await writeBatch(batch, db);
    } catch (err) {
      const message = (err as Error).message;
      if (this.health === null) this.logger.error(`DISKQUEUE: failed to write - ${message}`);
      this.health = `failed to write to disk - ${message}`;
      this.opsSinceSync = Math.max(this.opsSinceSync, this.options.syncEvery);
      // Nothing of the batch is committed: the next one takes the same changes again.
      for (const w of snap.written) w.topic.discardUnwritten(w.to);
      for (const [topic, offsets] of snap.deadLetters) topic.untakeDeadLetters(offsets);
      this.pendingState.unshift(...snap.extraState);
      this.requeue(batch);
      // In a group the records may be on this disk unskipped, and this member may lead again after a
      // restart: a refusal could be a lie, so the publishers get no answer.
      done?.reject(this.tap === null ? new Error(this.health) : new OutcomeUnknownError(this.health));
      for (const r of refusals) this.refuse(r.done, new OutcomeUnknownError(r.reason));
      this.scheduleRetry();
      return;
    }
    if (this.health !== null) this.logger.info('DISKQUEUE: writes succeed again');
    this.health = null;
    // Stored here whatever the followers answer: a refusal only withholds the acknowledgement.
    const refused = early !== null ? await early : shipment === null ? null : await shipment.ship();
    for (const [topic, delta] of snap.topicDeltas) topic.committed(delta);
    for (const [channel, delta] of snap.channelDeltas) channel.committed(delta);
    // This flush stored the skips of earlier refusals, and every member that may lead has them, unless the fence shut.
    const unknown = refused !== null && !refused.settled;
    for (const r of refusals) this.refuse(r.done, unknown ? new OutcomeUnknownError(r.reason) : new Error(r.reason));
    if (refused === null) {
      for (const w of snap.written) w.topic.afterWrite(w.to);
      done?.resolve();
    } else {
      // Stored but refused: never delivered here; the skips go to disk and to the followers with the next flush,
      // fsynced, and only then is the refusal answered.
      for (const w of snap.written) w.topic.refusedWrite(w.to);
      this.opsSinceSync = Math.max(this.opsSinceSync, this.options.syncEvery);
      if (done !== null) {
        if (refused.settled) this.refusing.push({ done, reason: refused.reason });
        else this.refuse(done, new OutcomeUnknownError(refused.reason));
      }
      this.stallNext = this.stallAfterRefusalMs > 0;
    }
    await finishBatch(batch);
  }

  private snapshot(forceSync: boolean): Snapshot {
    const findFloors = this.floorsDue || this.closing;
    this.floorsDue = false;
    const pendingOps = this.pendingOps;
    this.pendingOps = new Map();
    const clears = this.pendingClears;
    this.pendingClears = [];
    const topics: TopicBatch[] = [];
    const extraState = this.pendingState;
    this.pendingState = [];
    const state: StateOp[] = [...extraState];
    const intents: StateOp[] = [];
    const deadLetters: Snapshot['deadLetters'] = [];
    const written: Snapshot['written'] = [];
    const topicDeltas: Snapshot['topicDeltas'] = [];
    const channelDeltas: Snapshot['channelDeltas'] = [];
    const live = new Set<SegmentLog>();
    for (const topic of this.host.topics.values()) if (topic.log !== null && !topic.deleted) live.add(topic.log);
    // Deleted topics' logs: file work only.
    for (const [log, p] of pendingOps)
      if (!live.has(log)) topics.push({ topic: p.topic, log, ops: p.ops, records: NO_RECORDS, deleteBelow: -1 });
    let recordCount = 0;
    for (const topic of this.host.topics.values()) {
      const log = topic.log;
      if (log === null || topic.deleted) continue;
      const records = topic.collectWrites();
      recordCount += records.count;
      written.push({ topic, to: topic.tail.end });
      const dead = topic.takeDeadLetters();
      if (dead.length > 0) {
        const ops = deadLetterOps(topic.name, dead);
        intents.push(ops.intent);
        state.push(ops.done);
        deadLetters.push([topic, dead]);
      }
      topic.pruneSkips();
      const topicDelta = topic.durableDelta();
      if (topicDelta !== null) {
        state.push(topicStateOp(topic.name, topicDelta));
        topicDeltas.push([topic, topicDelta]);
      }
      let floor = topic.channels.size === 0 ? -1 : Number.POSITIVE_INFINITY;
      for (const channel of topic.channels.values()) {
        if (channel.ephemeral) continue;
        const delta = channel.durableDelta();
        if (delta !== null) {
          channelStateOps(topic.name, channel.name, delta, state);
          channelDeltas.push([channel, delta]);
        }
        const channelFloor = delta !== null ? delta.floor : findFloors ? channel.ackFloor() : channel.cursor;
        if (channelFloor < floor) floor = channelFloor;
      }
      // Only ephemeral channels: none reads the disk, so every segment is finished.
      if (floor === Number.POSITIVE_INFINITY) floor = log.endOffset;
      const ops = pendingOps.get(log)?.ops ?? [];
      topics.push({
        topic: topic.name,
        log,
        ops,
        records,
        deleteBelow: findFloors && floor >= 0 ? topic.deletableBelow(floor) : -1,
      });
    }
    this.floorsStale = !findFloors && (this.floorsStale || channelDeltas.length > 0);
    this.opsSinceSync += recordCount;
    const sync = forceSync || this.opsSinceSync >= this.options.syncEvery;
    if (sync) this.opsSinceSync = 0;
    return {
      batch: { clears, intents, topics, state, sync },
      written,
      topicDeltas,
      channelDeltas,
      deadLetters,
      extraState,
    };
  }

  /** What a failed batch did not do goes before what was queued since. */
  private requeue(batch: FlushBatch): void {
    this.pendingClears.unshift(...batch.clears);
    const ops = new Map<SegmentLog, PendingOps>();
    for (const t of batch.topics) if (t.ops.length > 0) ops.set(t.log, { topic: t.topic, ops: [...t.ops] });
    for (const [log, p] of this.pendingOps) {
      const failed = ops.get(log);
      if (failed === undefined) ops.set(log, p);
      else failed.ops.push(...p.ops);
    }
    this.pendingOps = ops;
  }

  /** Writes, syncs and deletes PROBE_BYTES in the data path; throws when the disk refuses. */
  private async probe(): Promise<void> {
    const path = join(this.dataPath, '.write-probe');
    try {
      await this.fs.writeFile(path, Buffer.alloc(PROBE_BYTES), { flush: true });
    } finally {
      await this.fs.rm(path, { force: true });
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.closing) return;
    this.retryTimer = this.clock.setTimer(() => {
      this.retryTimer = null;
      this.scheduleFlush(true);
    }, RETRY_AFTER_FAILURE_MS);
  }

  /** Clean shutdown (nsq-spec §5.7): a last synced flush, in-flight included so they come back after a restart. */
  async close(): Promise<void> {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    if (this.retryTimer !== null) this.clock.clearTimer(this.retryTimer);
    this.retryTimer = null;
    this.closing = true;
    try {
      await this.flush(true);
      // The last flush's refusals wait for one more that stores their skips; any left get no answer.
      if (this.refusing.length > 0 && this.health === null) await this.flush(true);
      for (const r of this.refusing.splice(0)) this.refuse(r.done, new OutcomeUnknownError(r.reason));
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

/** Reads the records at `offsets` (ascending) with one sequential pass; body copies of their own. */
async function readRecords(log: SegmentLog, offsets: readonly number[]): Promise<Map<number, MessageRecord>> {
  const found = new Map<number, MessageRecord>();
  const wanted = new Set(offsets);
  await forEachRecord(log, offsets[0] as number, offsets[offsets.length - 1] as number, (r) => {
    if (wanted.has(r.offset)) found.set(r.offset, r.compact());
  });
  return found;
}
