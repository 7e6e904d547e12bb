import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock } from '../clock.js';
import type { FileSystem } from '../log/file-system.js';
import { SegmentLog, type SegmentLogOptions } from '../log/segment-log.js';
import type { Logger } from '../logger.js';
import { type FlushBatch, finishBatch, type TopicBatch, writeBatch } from '../store/flush-batch.js';
import { type StateOp, StateStore } from '../store/state-store.js';
import type { Position, Snapshot, WireBatch } from './wire.js';

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

  private constructor(
    private readonly options: ReplicaStoreOptions,
    private db: StateStore,
    private at: Position,
  ) {}

  static async open(options: ReplicaStoreOptions): Promise<ReplicaStore> {
    await options.log.fs.mkdir(options.dataPath, { recursive: true });
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

  /** Stores one batch exactly as the leader did; batches are applied in call order, each once. */
  apply(b: WireBatch): Promise<void> {
    const run = this.applying.then(async () => {
      // Already stored (a batch resent after a reconnect).
      if (b.seq <= this.at.seq) return;
      const topics: TopicBatch[] = [];
      for (const t of b.topics) {
        topics.push({
          topic: t.topic,
          log: await this.logOf(t.topic),
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
    this.applying = run.catch(() => undefined);
    return run;
  }

  /**
   * Takes the leader's whole data path (a full copy): what this member had goes, the state last, so a
   * copy cut short leaves no position and is asked for again.
   */
  replace(s: Snapshot): Promise<void> {
    const run = this.applying.then(async () => {
      await this.closeFiles();
      const root = this.options.dataPath;
      await rm(join(root, 'state'), { recursive: true, force: true });
      await rm(join(root, 'topics'), { recursive: true, force: true });
      for (const f of s.files) {
        const path = join(root, f.path);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, f.bytes, { flush: true });
      }
      this.db = await StateStore.open(join(root, 'state'));
      await this.db.write(
        s.state.map((e) => ({ type: 'put', key: e.key, value: e.value })),
        true,
      );
      this.at = s.position;
    });
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

export function replicaLogOptions(
  o: { maxBytesPerFile: number; maxMsgSize: number },
  clock: Clock,
  fs: FileSystem,
): SegmentLogOptions {
  return { maxBytesPerFile: o.maxBytesPerFile, maxBodyBytes: o.maxMsgSize, clock, fs };
}
