import { type Clock, wallFromMonotonic } from './clock.js';
import type { ChannelDelta, ChannelSettings, DeferredEntry } from './durable-state.js';
import type { ChannelMessage } from './message.js';

/** The live state a journal compares with what the store holds (a `Channel`). */
export interface JournaledChannel {
  readonly cursor: number;
  readonly paused: boolean;
  readonly settings: ChannelSettings;
  aheadOffsets(): number[] | null;
  forEachOutstanding(fn: (msg: ChannelMessage) => void): void;
}

/** Two readings of the clocks' difference wander by a few ms: a due time closer than this is unchanged. */
const DUE_TIME_SLACK_MS = 1_000;

/**
 * A channel's durable bookkeeping: a change count its state transitions bump, and what the
 * store confirmed last (`committed`). `delta()` is the difference as plain data.
 */
export class ChannelJournal {
  /** Bumped by every change of the outstanding sets (deliver, FIN, REQ, timeout, deferral, empty) and settings. */
  changes = 0;
  private committedChanges = -1;
  private committedCursor = -1;
  private committedPaused = false;
  /** Deferred messages as stored, by offset. */
  private readonly stored = new Map<number, DeferredEntry>();

  constructor(
    private readonly channel: JournaledChannel,
    private readonly clock: Clock,
  ) {}

  /** Something the store does not have yet. */
  get dirty(): boolean {
    const c = this.channel;
    return (
      this.changes !== this.committedChanges || c.cursor !== this.committedCursor || c.paused !== this.committedPaused
    );
  }

  /** The channel's state to store, or null when the store has it already. */
  delta(): ChannelDelta | null {
    if (!this.dirty) return null;
    const channel = this.channel;
    let floor = channel.cursor;
    const hot: number[] = [];
    const puts: DeferredEntry[] = [];
    const stored = this.stored;
    const deferred = stored.size > 0 ? new Set<number>() : null;
    channel.forEachOutstanding((msg) => {
      const offset = msg.record.offset;
      if (offset < floor) floor = offset;
      if (msg.state !== 'deferred') {
        hot.push(offset, msg.attempts);
        return;
      }
      deferred?.add(offset);
      const due = Math.round(wallFromMonotonic(msg.heapKey, this.clock));
      const was = stored.get(offset);
      if (was === undefined || was.attempts !== msg.attempts || Math.abs(due - was.dueAtWallMs) > DUE_TIME_SLACK_MS)
        puts.push({ offset, attempts: msg.attempts, dueAtWallMs: due });
    });
    const deletes: number[] = [];
    if (deferred !== null) for (const offset of stored.keys()) if (!deferred.has(offset)) deletes.push(offset);
    return {
      changes: this.changes,
      cursor: channel.cursor,
      paused: channel.paused,
      settings: channel.settings,
      hot: new Float64Array(hot),
      ahead: channel.aheadOffsets() ?? [],
      deferredPuts: puts,
      deferredDeletes: deletes,
      floor,
    };
  }

  /** The store holds `delta` now (deltas are committed in the order they were taken). */
  committed(delta: ChannelDelta): void {
    this.committedChanges = delta.changes;
    this.committedCursor = delta.cursor;
    this.committedPaused = delta.paused;
    for (const entry of delta.deferredPuts) this.stored.set(entry.offset, entry);
    for (const offset of delta.deferredDeletes) this.stored.delete(offset);
  }
}
