import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock } from '../clock.js';
import type { FileSystem } from '../log/file-system.js';
import { SegmentLog, type SegmentLogOptions } from '../log/segment-log.js';
import type { Logger } from '../logger.js';
import { type FlushBatch, finishBatch, type TopicBatch, writeBatch } from '../store/flush-batch.js';
import { type StateOp, StateStore } from '../store/state-store.js';
import type { CopyEnd, CopyFile, Position, WireBatch } from './wire.js';

/** Where a full copy is received, inside the data path, until it is whole. */
const COPY_DIR = 'copy-incoming';
/** Where a leader keeps the hard links of the copies it is sending (leader-stream.ts). */
export const COPY_OUT_DIR = 'copy-outgoing';
/** Batches held while a copy comes in: past this the copy is given up (the leader starts another). */
const MAX_HELD_BYTES = 512 * 1024 * 1024;

/** A full copy coming in: its files as far as they came, its state so far, the batches that came meanwhile. */
interface Incoming {
  readonly position: Position;
  readonly files: Map<string, { handle: FileHandle; size: number }>;
  db: StateStore | null;
  readonly held: { batch: WireBatch; bytes: number; done: (err?: Error) => void }[];
  heldBytes: number;
}

/** The member's place in the stream, stored with the state of the batch that moved it. */
export const POSITION_KEY = 'r:position';

export function positionOp(p: Position): StateOp {
  return { type: 'put', key: POSITION_KEY, value: Buffer.from(JSON.stringify(p)) };
}

export async function readPosition(db: StateStore): Promise<Position> {
  const raw = await db.get(POSITION_KEY);
  if (raw === undefined) return { seq: 0, epoch: 0 };
  return JSON.parse(raw.toString('utf8')) as Position;
}

export interface ReplicaStoreOptions {
  readonly dataPath: string;
  readonly log: SegmentLogOptions;
  readonly logger: Logger;
}

/**
 * A follower's data path: the leader's batches written by the same `writeBatch`, onto the same
 * layout (state/ and topics/<name>/), so promotion is an ordinary start from disk.
 */
export class ReplicaStore {
  private readonly logs = new Map<string, SegmentLog>();
  private applying: Promise<void> = Promise.resolve();
  private incoming: Incoming | null = null;

  private constructor(
    private readonly options: ReplicaStoreOptions,
    private db: StateStore,
    private at: Position,
  ) {}

  static async open(options: ReplicaStoreOptions): Promise<ReplicaStore> {
    await options.log.fs.mkdir(options.dataPath, { recursive: true });
    // A copy cut short by a crash: the data path beside it is still the one its position describes.
    await rm(join(options.dataPath, COPY_DIR), { recursive: true, force: true });
    await rm(join(options.dataPath, COPY_OUT_DIR), { recursive: true, force: true });
    const db = await StateStore.open(join(options.dataPath, 'state'));
    return new ReplicaStore(options, db, await readPosition(db));
  }

  get position(): Position {
    return this.at;
  }

  private async logOf(topic: string): Promise<SegmentLog> {
    let log = this.logs.get(topic);
    if (log === undefined) {
      log = await SegmentLog.open(join(this.options.dataPath, 'topics', topic), this.options.log, this.options.logger);
      this.logs.set(topic, log);
    }
    return log;
  }

  /**
   * Stores one batch exactly as the leader did; batches are applied in call order, each once. One that comes
   * while a full copy does follows the data path the copy makes: it is held until the copy ends.
   */
  apply(b: WireBatch, bytes = 0): Promise<void> {
    const copy = this.incoming;
    if (copy !== null) {
      if (copy.heldBytes + bytes > MAX_HELD_BYTES) {
        return Promise.reject(new Error(`more than ${MAX_HELD_BYTES} bytes of batches came during a full copy`));
      }
      copy.heldBytes += bytes;
      return new Promise((resolve, reject) =>
        copy.held.push({ batch: b, bytes, done: (err) => (err === undefined ? resolve() : reject(err)) }),
      );
    }
    return this.store(b);
  }

  private store(b: WireBatch): Promise<void> {
    return this.chain(async () => {
      // Already stored (a batch resent after a reconnect).
      if (b.seq <= this.at.seq) return;
      const topics: TopicBatch[] = [];
      for (const t of b.topics) {
        const log = await this.logOf(t.topic);
        // Records at or past this batch's first are in no batch this member stored: a write that failed after
        // its append (then sent again), or a leader's batch nobody acknowledged. The leader's history wins.
        const first = t.records.count > 0 && t.ops.length === 0 ? t.records.offsetAt(0) : Number.POSITIVE_INFINITY;
        if (log.endOffset > first) {
          this.options.logger.warn(
            `REPLICATION: dropping records ${first}–${log.endOffset - 1} of ${t.topic} that no stored batch holds`,
          );
          await log.truncateFrom(first);
        }
        topics.push({
          topic: t.topic,
          log,
          ops: [...t.ops],
          records: t.records,
          deleteBelow: t.deleteBelow,
        });
      }
      const batch: FlushBatch = { clears: [...b.clears], intents: b.intents, topics, state: b.state, sync: b.sync };
      await writeBatch(batch, this.db);
      for (const t of b.topics) if (t.ops.some((op) => op.kind === 'destroy')) this.logs.delete(t.topic);
      this.at = { seq: b.seq, epoch: b.epoch };
      await finishBatch(batch);
    });
  }

  /**
   * A full copy of the leader's data path at `position` starts: it is written beside the data path (in
   * copy-incoming/) and takes its place only when whole, so a copy cut short leaves this member as it was.
   */
  beginCopy(position: Position): Promise<void> {
    this.abandonCopy(new Error('another full copy started'));
    const copy: Incoming = { position, files: new Map(), db: null, held: [], heldBytes: 0 };
    this.incoming = copy;
    return this.chain(async () => {
      const dir = join(this.options.dataPath, COPY_DIR);
      await rm(dir, { recursive: true, force: true });
      await mkdir(join(dir, 'topics'), { recursive: true });
      copy.db = await StateStore.open(join(dir, 'state'));
    });
  }

  /** One piece of a copied segment file, at the offset where the previous piece ended. */
  copyFile(piece: CopyFile): Promise<void> {
    const copy = this.copying();
    return this.chain(async () => {
      let file = copy.files.get(piece.path);
      if (file === undefined) {
        const path = join(this.options.dataPath, COPY_DIR, piece.path);
        await mkdir(dirname(path), { recursive: true });
        file = { handle: await open(path, 'w'), size: 0 };
        copy.files.set(piece.path, file);
      }
      if (piece.offset !== file.size) {
        throw new Error(`copied ${piece.path} at ${piece.offset}, but ${file.size} bytes came before`);
      }
      await file.handle.write(piece.bytes, 0, piece.bytes.length, piece.offset);
      file.size += piece.bytes.length;
    });
  }

  /** Some of the leader's state keys. */
  copyState(ops: StateOp[]): Promise<void> {
    const copy = this.copying();
    return this.chain(async () => {
      await (copy.db as StateStore).write(ops, false);
    });
  }

  /**
   * The copy is whole: every file checked against the leader's sizes and fsynced, the position stored with
   * the state, then the copy replaces the data path (the state last: a crash in between leaves no position,
   * and the next connection asks for a copy again); the batches held meanwhile are then stored.
   */
  endCopy(end: CopyEnd): Promise<void> {
    const copy = this.copying();
    const run = this.chain(async () => {
      const sent = new Map(end.files.map((f) => [f.path, f.size]));
      for (const [path, size] of sent) {
        if ((copy.files.get(path)?.size ?? 0) !== size) throw new Error(`copied ${path} is incomplete`);
      }
      for (const [path, file] of copy.files) {
        if (!sent.has(path)) throw new Error(`copied ${path} is not in the leader's list`);
        await file.handle.sync();
        await file.handle.close();
      }
      copy.files.clear();
      const db = copy.db as StateStore;
      await db.write([positionOp(end.position)], true);
      await db.close();
      copy.db = null;
      await this.closeFiles();
      const root = this.options.dataPath;
      const dir = join(root, COPY_DIR);
      try {
        await rm(join(root, 'state'), { recursive: true, force: true });
        await rm(join(root, 'topics'), { recursive: true, force: true });
        await rename(join(dir, 'topics'), join(root, 'topics'));
        await rename(join(dir, 'state'), join(root, 'state'));
        await syncDir(root);
      } finally {
        // Whatever state/ holds now, its position says what this member has (none: a copy is asked for again).
        this.db = await StateStore.open(join(root, 'state'));
        this.at = await readPosition(this.db);
      }
      await rm(dir, { recursive: true, force: true });
    });
    run.then(
      () => {
        if (this.incoming !== copy) return;
        this.incoming = null;
        for (const h of copy.held) this.store(h.batch).then(() => h.done(), h.done);
      },
      (err: Error) => this.abandon(copy, err),
    );
    return run;
  }

  /** The copy in progress was cut short (the connection ended): its pieces go. */
  abandonCopy(why: Error): void {
    if (this.incoming !== null) this.abandon(this.incoming, why);
  }

  private abandon(copy: Incoming, why: Error): void {
    if (this.incoming !== copy) return;
    this.incoming = null;
    for (const h of copy.held) h.done(why);
    void this.chain(async () => {
      for (const file of copy.files.values()) await file.handle.close().catch(() => undefined);
      await copy.db?.close().catch(() => undefined);
      await rm(join(this.options.dataPath, COPY_DIR), { recursive: true, force: true });
    });
  }

  private copying(): Incoming {
    if (this.incoming === null) throw new Error('replication: a copy frame outside a full copy');
    return this.incoming;
  }

  /** Runs `fn` after everything before it; a failure is the caller's, not the next step's. */
  private chain(fn: () => Promise<void>): Promise<void> {
    const run = this.applying.then(fn);
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async closeFiles(): Promise<void> {
    for (const log of this.logs.values()) await log.close().catch(() => undefined);
    this.logs.clear();
    await this.db.close();
  }

  async close(): Promise<void> {
    await this.applying;
    await this.closeFiles();
  }
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export function replicaLogOptions(
  o: { maxBytesPerFile: number; maxMsgSize: number },
  clock: Clock,
  fs: FileSystem,
): SegmentLogOptions {
  return { maxBytesPerFile: o.maxBytesPerFile, maxBodyBytes: o.maxMsgSize, clock, fs };
}
