import type { RecordSource } from '../log/record-codec.js';
import type { SegmentLog } from '../log/segment-log.js';
import type { StateClear, StateOp, StateStore } from './state-store.js';

export type LogOp =
  /** The topic dropped its whole backlog: every segment goes, the log goes on at `nextOffset`. */
  | { readonly kind: 'clear'; readonly nextOffset: number }
  /** The topic was deleted: its segments and then its directory go. */
  | { readonly kind: 'destroy' };

export interface TopicBatch {
  readonly topic: string;
  /** A deleted topic's, for a `destroy`. */
  readonly log: SegmentLog;
  /** File work before any append; `writeBatch` removes each op once it is done. */
  readonly ops: LogOp[];
  /** Ascending offsets, encoded as in record-codec.ts; offsets may skip (finished before they were due to be written). */
  readonly records: RecordSource;
  /** Once the state is stored: delete the segments wholly below this offset (-1: none). */
  readonly deleteBelow: number;
}

/**
 * One flush as plain data (see docs/storage.md). The log goes before the state, so stored state never points at
 * a record not on disk; deleted state goes before deleted files, so a crash leaves only unreferenced files.
 */
export interface FlushBatch {
  /** Keys and key prefixes of deleted topics and channels; `writeBatch` removes each once done. */
  readonly clears: StateClear[];
  /** Written before any append: which appended records are dead letters (state-store.ts `deadLetterOps`). */
  readonly intents: StateOp[];
  readonly topics: TopicBatch[];
  /** Topic and channel state, written last, in one atomic LevelDB batch. */
  readonly state: StateOp[];
  /** fsync the appended records and the state write (--sync-every, --sync-timeout). */
  readonly sync: boolean;
}

/** Replication's view of every flush (replication/leader-stream.ts); a lone nsqd has none and does no work for it. */
export interface FlushTap {
  /**
   * Before the write, which consumes `clears` and `ops`: keeps what to send and may add state ops (the
   * batch's place in the stream). Null: nothing to send.
   */
  capture(batch: FlushBatch): FlushShipment | null;
  /** Why no publish may be stored now (fewer in sync than --min-insync, not leading), or null. */
  refusal(): string | null;
  /** `publishes` were refused on the tap's verdict: answered E_PUB_FAILED, or (not `answered`) left unanswered. */
  noteRefused(publishes: number, answered: boolean): void;
}

/**
 * Why a stored flush's publishes may not be acknowledged. `settled`: every member that may lead holds what this
 * flush holds or was removed from the in-sync set in etcd, so a later flush that skips the records and is settled
 * the same way makes a refusal true. Not settled (the fence shut, etcd refused a shrink): a member that may lead
 * could hold the records and nothing more can reach it, so neither OK nor an error is true.
 */
export interface ShipRefusal {
  readonly reason: string;
  readonly settled: boolean;
}

export interface FlushShipment {
  /**
   * Sends it (once, while or after it is stored here); resolves null once the publishes it holds may be
   * acknowledged, else why not. Never rejects.
   */
  ship(): Promise<ShipRefusal | null>;
}

export const NO_RECORDS: RecordSource = {
  count: 0,
  offsetAt: () => 0,
  bodyLengthAt: () => 0,
  encodeAt: (_i, _out, pos) => pos,
};

export function batchRecords(batch: FlushBatch): number {
  let n = 0;
  for (const t of batch.topics) n += t.records.count;
  return n;
}

/**
 * On failure throws with `clears` and `ops` holding exactly what did not run (a directory removed twice could
 * take a recreated topic's new segment with it); the appends and the state write are all to be redone.
 */
export async function writeBatch(batch: FlushBatch, db: StateStore): Promise<void> {
  while (batch.clears.length > 0) {
    await db.clear(batch.clears[0] as StateClear);
    batch.clears.shift();
  }
  if (batch.intents.length > 0) await db.write(batch.intents, batch.sync);
  for (const t of batch.topics) {
    while (t.ops.length > 0) {
      const op = t.ops[0] as LogOp;
      await (op.kind === 'clear' ? t.log.clear(op.nextOffset) : t.log.destroy());
      t.ops.shift();
    }
  }
  await Promise.all(batch.topics.map((t) => (t.records.count > 0 ? t.log.append(t.records) : undefined)));
  if (batch.sync) await Promise.all(batch.topics.map((t) => t.log.sync()));
  if (batch.state.length > 0) await db.write(batch.state, batch.sync);
}

/** Finished segments go, idle logs close their descriptor; failures here lose nothing. */
export async function finishBatch(batch: FlushBatch): Promise<void> {
  for (const t of batch.topics) if (t.deleteBelow >= 0) await t.log.deleteBelow(t.deleteBelow).catch(() => undefined);
  for (const t of batch.topics) if (t.records.count === 0) await t.log.release().catch(() => undefined);
}
