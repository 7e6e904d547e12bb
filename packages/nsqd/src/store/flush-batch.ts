import type { RecordSource } from '../log/record-codec.js';
import type { SegmentLog } from '../log/segment-log.js';
import type { StateClear, StateOp, StateStore } from './state-store.js';

/** File work on a topic's log, as data. */
export type LogOp =
  /** The topic dropped its whole backlog: every segment goes, the log goes on at `nextOffset`. */
  | { readonly kind: 'clear'; readonly nextOffset: number }
  /** The topic was deleted: its segments and then its directory go. */
  | { readonly kind: 'destroy' };

/** What one flush does to one topic's log. */
export interface TopicBatch {
  readonly topic: string;
  /** The local log it applies to (a deleted topic's, for a `destroy`). */
  readonly log: SegmentLog;
  /** File work before any append; `writeBatch` removes each op once it is done. */
  readonly ops: LogOp[];
  /**
   * Records to append at the log's end, ascending offsets, each encoded as record-codec.ts lays
   * it out; the first one's offset is `records.offsetAt(0)`. Offsets may skip (records finished
   * before they were due to be written never are).
   */
  readonly records: RecordSource;
  /** Once the state is stored: delete the segments wholly below this offset (-1: none). */
  readonly deleteBelow: number;
}

/**
 * One flush as plain data: applied in this order by `writeBatch` (and the clean-up by
 * `finishBatch`), here from a snapshot of the broker, on a follower from the leader's stream.
 * The log goes before the state, so stored state never points at a record not on disk; deleted
 * state goes before deleted files, so a crash in between leaves files nothing refers to, never
 * state that refers to missing files.
 */
export interface FlushBatch {
  /** Keys and key prefixes of deleted topics and channels; `writeBatch` removes each once done. */
  readonly clears: StateClear[];
  /**
   * Written before any append when not empty: which appended records are dead letters, so that
   * a crash before `state` leaves them recognisable (state-store.ts `deadLetterOps`).
   */
  readonly intents: StateOp[];
  readonly topics: TopicBatch[];
  /** Topic and channel state, written last, in one atomic LevelDB batch. */
  readonly state: StateOp[];
  /** fsync the appended records and the state write (--sync-every, --sync-timeout). */
  readonly sync: boolean;
}

/** No records (a deleted topic's batch). */
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
 * Writes a batch to the local disk. On failure it throws with `clears` and each topic's `ops`
 * holding exactly what did not run (a topic directory removed twice could take a recreated
 * topic's new segment with it); the appends and the state write are all to be redone.
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

/**
 * After a batch is stored: finished segments go, and logs that wrote nothing close their
 * descriptor. Failures here lose nothing and are left for the next batch.
 */
export async function finishBatch(batch: FlushBatch): Promise<void> {
  for (const t of batch.topics) if (t.deleteBelow >= 0) await t.log.deleteBelow(t.deleteBelow).catch(() => undefined);
  for (const t of batch.topics) if (t.records.count === 0) await t.log.release().catch(() => undefined);
}
