import { link as hardLink, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { HaFollowerLag } from '@nsq-ts/http-client';
import { monotonicMs } from '../clock.js';
import type { HaCoordinator } from '../ha/coordinator.js';
import type { Logger } from '../logger.js';
import type { FlushBatch, FlushShipment, FlushTap, ShipRefusal } from '../store/flush-batch.js';
import type { StateStore } from '../store/state-store.js';
import type { HaCounters } from './ha-counters.js';
import { COPY_OUT_DIR, positionOp } from './replica-store.js';
import {
  COPY_PIECE_BYTES,
  encodeBatch,
  encodeCopyFile,
  encodeCopyState,
  FrameReader,
  FrameType,
  frame,
  type GroupSettings,
  type Hello,
  type Position,
  settingsMismatch,
} from './wire.js';

/** Runs `fn` between two flushes of the leader's storage (Storage.between). */
export type BetweenFlushes = <T>(fn: (db: StateStore, dataPath: string) => Promise<T>) => Promise<T>;

export interface LeaderStreamOptions {
  readonly memberId: string;
  readonly epoch: number;
  /** Where this member's stream stood when it was elected. */
  readonly start: Position;
  readonly ack: 'sync' | 'async';
  readonly minInsync: number;
  readonly timeoutMs: number;
  readonly maxFrameBytes: number;
  readonly between: BetweenFlushes;
  /** A follower whose hello says otherwise is refused: it would store or read the stream differently. */
  readonly settings: GroupSettings;
  readonly counters: HaCounters;
}

/** Batches kept for followers that reconnect a little behind. */
const REPLAY_BYTES = 64 * 1024 * 1024;
const MAX_CHECK_INTERVAL_MS = 1_000;
const NOT_LEADING = 'replication: this member no longer leads';

interface Link {
  readonly memberId: string;
  readonly socket: Socket;
  acked: number;
}

/** A full copy as taken between two flushes: its files hard-linked aside at their sizes, a state snapshot. */
interface CopySource {
  readonly dir: string;
  readonly position: Position;
  readonly files: { readonly path: string; readonly size: number }[];
  readonly state: AsyncIterator<[string, Buffer]>;
}

let copySerial = 0;
/** The copies this process is sending: any other directory under copy-outgoing/ is a crashed one's. */
const activeCopies = new Set<string>();

interface Sent {
  readonly at: Position;
  readonly bytes: Buffer;
  readonly sentAtMs: number;
}

interface Waiter {
  readonly seq: number;
  readonly resolve: (refused: ShipRefusal | null) => void;
}

function isEmpty(batch: FlushBatch): boolean {
  if (batch.clears.length > 0 || batch.intents.length > 0 || batch.state.length > 0) return false;
  return batch.topics.every((t) => t.records.count === 0 && t.ops.length === 0 && t.deleteBelow < 0);
}

/**
 * The leader's side of the stream: every flush goes to every follower tagged with the epoch; with sync acks a
 * flush's publishes are answered once each in-sync member acknowledged it (one round trip per flush). A member
 * too far behind is dropped from the in-sync set in etcd before anything it lacks is acknowledged.
 */
export class LeaderStream implements FlushTap {
  private at: Position;
  /** Sent batches, oldest first, at most REPLAY_BYTES; `base` is the position just before the first. */
  private readonly sent: Sent[] = [];
  private sentBytes = 0;
  private base: Position;
  private readonly links = new Map<string, Link>();
  /** Caught-up members whose expansion etcd has not committed yet: already waited for. */
  private readonly joining = new Set<string>();
  /** Why each member's last hello was refused (GET /ha); such a member is kept out of the in-sync set. */
  private readonly refused = new Map<string, string>();
  private waiters: Waiter[] = [];
  private shrinking: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  /** A member whose registration went (a stopped follower) leaves the set now, not at the next check. */
  private readonly onMembers = () => this.checkLag();
  private closed = false;

  constructor(
    private readonly options: LeaderStreamOptions,
    private readonly coordinator: HaCoordinator,
    private readonly logger: Logger,
  ) {
    this.at = options.start;
    this.base = options.start;
    this.timer = setInterval(() => this.checkLag(), Math.min(MAX_CHECK_INTERVAL_MS, options.timeoutMs / 4));
    this.timer.unref();
    coordinator.on('members', this.onMembers);
  }

  get position(): Position {
    return this.at;
  }

  capture(batch: FlushBatch): FlushShipment | null {
    if (isEmpty(batch)) return null;
    const at = { seq: this.at.seq + 1, epoch: this.options.epoch };
    batch.state.push(positionOp(at));
    const bytes = encodeBatch(at, batch);
    return { ship: () => this.ship(at, bytes) };
  }

  private ship(at: Position, bytes: Buffer): Promise<ShipRefusal | null> {
    if (this.closed) return Promise.resolve({ reason: NOT_LEADING, settled: false });
    this.at = at;
    this.sent.push({ at, bytes, sentAtMs: monotonicMs() });
    this.sentBytes += bytes.length;
    while (this.sentBytes > REPLAY_BYTES && this.sent.length > 1) {
      const old = this.sent.shift() as Sent;
      this.sentBytes -= old.bytes.length;
      this.base = old.at;
    }
    for (const link of this.links.values()) link.socket.write(bytes);
    if (this.options.ack === 'async') {
      // Nobody acknowledged it yet: a refusal now (the fence shut) leaves its outcome unknown.
      const reason = this.refusal();
      return Promise.resolve(reason === null ? null : { reason, settled: false });
    }
    return new Promise((resolve) => {
      this.waiters.push({ seq: at.seq, resolve });
      this.settle();
    });
  }

  /** In-sync members other than this one, and those joining: each must hold a batch before it is answered. */
  private required(): string[] {
    const isr = this.coordinator.isr?.members ?? [];
    const out = isr.filter((m) => m !== this.options.memberId);
    for (const m of this.joining) if (!out.includes(m)) out.push(m);
    return out;
  }

  private ackedBy(member: string): number {
    return this.links.get(member)?.acked ?? -1;
  }

  /** Why publishes may not be stored or acknowledged now, or null: checked before a publish is stored and again before it is answered. */
  refusal(): string | null {
    if (this.fenceShut()) return NOT_LEADING;
    const insync = this.coordinator.isr?.members.length ?? 0;
    if (insync < this.options.minInsync) {
      return `replication: ${insync} in-sync member(s), --min-insync=${this.options.minInsync}`;
    }
    return null;
  }

  noteRefused(publishes: number, answered: boolean): void {
    if (answered) this.options.counters.refusedPublishes += publishes;
    else this.options.counters.unansweredPublishes += publishes;
  }

  private fenceShut(): boolean {
    return this.closed || !this.coordinator.canAcknowledge();
  }

  private settle(): void {
    if (this.waiters.length === 0 || this.shrinking !== null) return;
    const required = this.required();
    let low = Number.POSITIVE_INFINITY;
    for (const m of required) low = Math.min(low, this.ackedBy(m));
    const ready = this.waiters.filter((w) => w.seq <= low);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.seq > low);
    // Every member that may lead holds these batches (or left the set in etcd): a refusal can be made true by
    // skipping them, unless the fence shut and no later batch can reach those members.
    const reason = this.refusal();
    const verdict = reason === null ? null : { reason, settled: !this.fenceShut() };
    for (const w of ready) w.resolve(verdict);
  }

  /**
   * Members whose oldest unacknowledged batch is older than --replication-timeout, or that are neither
   * connected nor registered, leave the in-sync set.
   */
  private checkLag(): void {
    if (this.closed || this.shrinking !== null) return;
    const now = monotonicMs();
    const late = this.required().filter((m) => {
      // Gone from etcd (its process died) or refused: nothing will come from it, waiting the timeout helps nobody.
      if (!this.links.has(m) && (!this.coordinator.members.has(m) || this.refused.has(m))) return true;
      const first = this.sent.find((s) => s.at.seq > this.ackedBy(m));
      return first !== undefined && now - first.sentAtMs > this.options.timeoutMs;
    });
    if (late.length === 0) return;
    this.shrinking = (async () => {
      for (const m of late) {
        this.joining.delete(m);
        if (!(this.coordinator.isr?.members.includes(m) ?? false)) continue;
        try {
          await this.coordinator.shrinkIsr(m);
          this.options.counters.isrShrinks++;
          const why = this.refused.get(m) ?? `more than ${this.options.timeoutMs} ms behind`;
          this.logger.warn(`REPLICATION: ${m} left the in-sync set (${why})`);
        } catch (err) {
          this.logger.error(`REPLICATION: shrinking the in-sync set failed - ${(err as Error).message}`);
          // Not committed: nothing it lacks may be acknowledged; the waiters get the fence's verdict.
          this.failWaiters();
          return;
        }
      }
    })().finally(() => {
      this.shrinking = null;
      this.settle();
    });
  }

  private failWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    // A member that may lead (still listed in etcd) may hold these batches and may get nothing more.
    const verdict = {
      reason: this.refusal() ?? 'replication: the in-sync set could not be updated in etcd',
      settled: false,
    };
    for (const w of waiters) w.resolve(verdict);
  }

  /** A follower connected to the replication listener. */
  accept(socket: Socket): void {
    let link: Link | null = null;
    const reader = new FrameReader((type, header) => {
      if (type === FrameType.hello && link === null) link = this.hello(socket, header as Hello);
      else if (type === FrameType.ack && link !== null) this.acked(link, (header as { seq: number }).seq);
    }, this.options.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.logger.warn(`REPLICATION: ${(err as Error).message}`);
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (link !== null && this.links.get(link.memberId) === link) this.links.delete(link.memberId);
    });
  }

  private refuse(socket: Socket, member: string, reason: string): null {
    this.options.counters.streamRefusalsSent++;
    // A refused follower retries every half second: said once per reason, not at every retry.
    if (this.refused.get(member) !== reason) this.logger.error(`REPLICATION: follower ${member} refused - ${reason}`);
    this.refused.set(member, reason);
    socket.end(frame(FrameType.refuse, { reason }));
    return null;
  }

  private hello(socket: Socket, h: Hello): Link | null {
    if (this.closed) return this.refuse(socket, h.member_id, 'not the leader');
    if (h.epoch > this.options.epoch) return this.refuse(socket, h.member_id, `epoch ${h.epoch} is newer than ours`);
    const mismatch = settingsMismatch(this.options.settings, h.settings);
    if (mismatch !== null) return this.refuse(socket, h.member_id, mismatch);
    this.refused.delete(h.member_id);
    const p = h.position;
    const link: Link = { memberId: h.member_id, socket, acked: p.seq };
    let from = -1;
    if (p.seq === this.base.seq && p.epoch === this.base.epoch) from = 0;
    else {
      const i = this.sent.findIndex((s) => s.at.seq === p.seq && s.at.epoch === p.epoch);
      if (i >= 0) from = i + 1;
    }
    if (from < 0) {
      // Not in this leader's history (new, too far behind, or holding what no one acknowledged): all of it.
      link.acked = -1;
      this.fullCopy(link, p).catch((err: Error) => {
        this.logger.error(`REPLICATION: full copy to ${h.member_id} failed - ${err.message}`);
        socket.destroy();
      });
      return link;
    }
    this.attach(link);
    socket.write(frame(FrameType.welcome, { epoch: this.options.epoch, seq: this.at.seq }));
    for (const s of this.sent.slice(from)) socket.write(s.bytes);
    this.logger.info(`REPLICATION: ${h.member_id} follows from seq ${p.seq} (leader at ${this.at.seq})`);
    this.acked(link, p.seq);
    return link;
  }

  private attach(link: Link): void {
    this.links.get(link.memberId)?.socket.destroy();
    this.links.set(link.memberId, link);
  }

  /**
   * The whole data path, in pieces. Between two flushes (a pause of one directory walk): every segment file is
   * hard-linked aside at its size, the state iterator (a LevelDB snapshot) is opened and the link joins the
   * stream; then the pieces go at the pace the socket takes them, the batches after the copy's position
   * interleaved (the follower holds them until the copy is whole). Neither side holds more than a piece.
   */
  private async fullCopy(link: Link, had: Position): Promise<void> {
    const started = monotonicMs();
    const source = await this.options.between((db, dataPath) => this.takeCopy(link, db, dataPath));
    if (source === null) return;
    let bytes = 0;
    try {
      for (const f of source.files) {
        const handle = await open(join(source.dir, f.path), 'r');
        try {
          for (let offset = 0; offset < f.size; ) {
            const piece = Buffer.allocUnsafe(Math.min(COPY_PIECE_BYTES, f.size - offset));
            const { bytesRead } = await handle.read(piece, 0, piece.length, offset);
            if (bytesRead !== piece.length)
              throw new Error(`${f.path} ended at ${offset + bytesRead} of ${f.size} bytes`);
            await this.send(link, encodeCopyFile(f.path, offset, piece));
            offset += bytesRead;
            bytes += bytesRead;
          }
        } finally {
          await handle.close();
        }
      }
      let entries: { key: string; value: Buffer }[] = [];
      let entryBytes = 0;
      for (;;) {
        const next = await source.state.next();
        if (!next.done) {
          const [key, value] = next.value;
          entries.push({ key, value });
          entryBytes += key.length + value.length;
        }
        if ((next.done && entries.length > 0) || entryBytes >= COPY_PIECE_BYTES) {
          await this.send(link, encodeCopyState(entries));
          bytes += entryBytes;
          entries = [];
          entryBytes = 0;
        }
        if (next.done) break;
      }
      await this.send(link, frame(FrameType.copyEnd, { position: source.position, files: source.files }));
      this.options.counters.fullCopiesServed++;
      this.logger.info(
        `REPLICATION: ${link.memberId} (at seq ${had.seq}, epoch ${had.epoch}) got a full copy at seq ${source.position.seq}: ${bytes} bytes in ${Math.round(monotonicMs() - started)} ms`,
      );
    } finally {
      await source.state.return?.();
      await rm(source.dir, { recursive: true, force: true });
      activeCopies.delete(source.dir);
    }
  }

  private async takeCopy(link: Link, db: StateStore, dataPath: string): Promise<CopySource | null> {
    if (this.closed || link.socket.destroyed) return null;
    const out = join(dataPath, COPY_OUT_DIR);
    for (const old of await readdir(out).catch(() => [] as string[])) {
      if (!activeCopies.has(join(out, old))) await rm(join(out, old), { recursive: true, force: true });
    }
    const dir = join(out, `${Date.now()}-${++copySerial}`);
    activeCopies.add(dir);
    const files: { path: string; size: number }[] = [];
    const topics = join(dataPath, 'topics');
    for (const topic of await readdir(topics).catch(() => [] as string[])) {
      await mkdir(join(dir, 'topics', topic), { recursive: true });
      for (const name of await readdir(join(topics, topic))) {
        const path = `topics/${topic}/${name}`;
        const info = await stat(join(dataPath, path));
        if (!info.isFile()) continue;
        await hardLink(join(dataPath, path), join(dir, path));
        files.push({ path, size: info.size });
      }
    }
    const state = db.entries()[Symbol.asyncIterator]();
    const position = this.at;
    link.socket.write(frame(FrameType.welcome, { epoch: this.options.epoch, seq: position.seq }));
    link.socket.write(frame(FrameType.copyBegin, { position }));
    this.attach(link);
    return { dir, position, files, state };
  }

  /** Writes one frame, then waits until the socket took it in (or ended: the copy stops there). */
  private async send(link: Link, bytes: Buffer): Promise<void> {
    if (this.closed || link.socket.destroyed) throw new Error('the stream ended');
    if (link.socket.write(bytes)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        link.socket.off('drain', drained);
        link.socket.off('close', closed);
        if (err === undefined) resolve();
        else reject(err);
      };
      const drained = () => done();
      const closed = () => done(new Error('the stream ended'));
      link.socket.on('drain', drained);
      link.socket.on('close', closed);
    });
  }

  private acked(link: Link, seq: number): void {
    if (seq > link.acked) link.acked = seq;
    const m = link.memberId;
    const listed = this.coordinator.isr?.members.includes(m) ?? false;
    if (!listed && !this.joining.has(m) && link.acked >= this.at.seq && !this.closed) {
      this.joining.add(m);
      this.coordinator.expandIsr(m).then(
        () => {
          this.joining.delete(m);
          this.options.counters.isrExpands++;
          this.logger.info(`REPLICATION: ${m} joined the in-sync set`);
        },
        (err: Error) => {
          this.joining.delete(m);
          this.logger.warn(`REPLICATION: adding ${m} to the in-sync set failed - ${err.message}`);
        },
      );
    }
    this.settle();
  }

  lag(): HaFollowerLag[] {
    const now = monotonicMs();
    const isr = this.coordinator.isr?.members ?? [];
    const ids = new Set([...this.links.keys(), ...isr.filter((m) => m !== this.options.memberId)]);
    for (const m of this.refused.keys()) if (this.coordinator.members.has(m)) ids.add(m);
    return [...ids].map((m) => {
      const acked = this.ackedBy(m);
      const first = this.sent.find((s) => s.at.seq > acked);
      return {
        member_id: m,
        connected: this.links.has(m),
        in_sync: isr.includes(m),
        acked_seq: Math.max(acked, 0),
        lag_batches: acked < 0 ? this.at.seq : this.at.seq - acked,
        lag_ms: first === undefined ? 0 : Math.round(now - first.sentAtMs),
        refused: this.refused.get(m) ?? '',
      };
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.coordinator.off('members', this.onMembers);
    for (const link of this.links.values()) link.socket.destroy();
    this.links.clear();
    this.failWaiters();
  }
}
