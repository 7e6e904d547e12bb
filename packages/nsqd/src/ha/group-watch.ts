import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { prefixEnd, rev } from './keys.js';
import { type HaSettings, requestDeadline } from './settings.js';

/** One key's new value (null: deleted). */
export interface KeyChange {
  readonly key: string;
  readonly kv: IKeyValue | null;
}

/** The changes of one revision: one transaction's consistent state. */
export interface RevisionChanges {
  readonly revision: number;
  readonly changes: readonly KeyChange[];
}

export interface GroupWatchHooks {
  /** The whole group, read at `revision`. */
  snapshot(kvs: readonly IKeyValue[], revision: number): void;
  /** One watch response, its changes grouped by revision, oldest first. */
  changes(revisions: readonly RevisionChanges[]): void;
  report(op: string, err: unknown): void;
  isClosed(): boolean;
}

/**
 * Reads a group's keys at one revision and watches them from the next, reading everything again
 * whenever etcd cancels the watch.
 */
export class GroupWatch {
  private watcher: Watcher | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly settings: HaSettings,
    private readonly hooks: GroupWatchHooks,
  ) {}

  /** The first read and the watch; rejects if etcd cannot be read. */
  async start(): Promise<void> {
    const res = await this.client.kv.range(
      { key: Buffer.from(this.prefix), range_end: prefixEnd(this.prefix) },
      requestDeadline(this.settings),
    );
    const revision = rev(res.header.revision);
    this.hooks.snapshot(res.kvs, revision);
    if (this.hooks.isClosed()) return;
    // Not waiting for etcd to confirm the watch: it starts at the next revision whenever it connects.
    const watcher = this.client
      .watch()
      .prefix(this.prefix)
      .startRevision(String(revision + 1))
      .watcher();
    this.watcher = watcher;
    watcher.on('data', (w: IWatchResponse) => this.onWatch(w));
    watcher.on('disconnected', (err: Error) => this.hooks.report('watch', err));
    // etcd cancelled the watch (e.g. its start revision was compacted): read everything again.
    watcher.on('error', (err: Error) => {
      this.hooks.report('watch', err);
      if (this.watcher !== watcher) return;
      this.watcher = null;
      watcher.cancel().catch(() => undefined);
      this.restartUntilDone();
    });
  }

  cancel(): Promise<void> | null {
    const watcher = this.watcher;
    this.watcher = null;
    return watcher === null ? null : watcher.cancel();
  }

  private restartUntilDone(): void {
    if (this.hooks.isClosed()) return;
    this.start().catch((err) => {
      this.hooks.report('resync', err);
      setTimeout(() => this.restartUntilDone(), this.settings.campaignRetryMs);
    });
  }

  private onWatch(w: IWatchResponse): void {
    if (this.hooks.isClosed()) return;
    const events = w.events ?? [];
    // One response may carry several revisions (a watch catching up): each is reported on its own.
    const revisions: RevisionChanges[] = [];
    for (let i = 0; i < events.length; ) {
      const revision = rev(events[i].kv.mod_revision);
      let j = i;
      while (j < events.length && rev(events[j].kv.mod_revision) === revision) j++;
      const changes = events
        .slice(i, j)
        .map((ev) => ({ key: ev.kv.key.toString('utf8'), kv: ev.type === 'Put' ? ev.kv : null }));
      revisions.push({ revision, changes });
      i = j;
    }
    this.hooks.changes(revisions);
  }
}
