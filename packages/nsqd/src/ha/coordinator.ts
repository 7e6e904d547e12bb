/**
 * The etcd side of one replica group: who is a member, who leads at which epoch, who is in sync.
 * etcd decides every one of these (compare-and-set transactions, leases); this module never
 * assumes its own view is current, it only uses it to decide when to ask. The key layout is in
 * keys.ts and docs/replication.md.
 *
 * - **Members** register `members/<id>` under a lease of their own, kept alive for the process's life.
 * - **Election**: a member that sees no leader (and is listed in the in-sync set) campaigns in one
 *   transaction: leader absent, isr unchanged since it read itself in it, epoch unchanged →
 *   put leader (bound to a lease granted for this term), epoch + 1, isr with the new epoch, and
 *   drop any handover. Bootstrap: a group that never had a leader (no epoch, no isr) is won by
 *   the first member to campaign, alone in the new in-sync set.
 * - **Fencing**: the term's lease is renewed by keepalives whose send times open an {@link AckFence};
 *   the leader may acknowledge only while `canAcknowledge()` is true (check it synchronously before
 *   every acknowledgement: the `fenceExpired` event is a timer and may be late). Once the fence
 *   passes, the term is over for good: the lease is given up and `deposed` follows.
 * - **Writes as leader** (isr shrink/expand, resign) are transactions guarded by the leader key's
 *   create revision (the term's identity). They are sent even when this member already knows it
 *   was deposed — etcd, not the local view, refuses them with {@link HaFencedError}.
 *
 * etcd3 is only imported as types here; {@link createHaCoordinator} loads it.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, IRequestOp, IResponseHeader, ITxnResponse, IWatchResponse, Watcher } from 'etcd3';
import { monotonicMs } from '../clock.js';
import { AckFence } from './ack-fence.js';
import { connectEtcd } from './etcd-client.js';
import {
  absent,
  checkName,
  decodeEpoch,
  decodeHandover,
  decodeIsr,
  decodeLeader,
  decodeMember,
  encodeHandover,
  encodeIsr,
  encodeLeader,
  encodeMember,
  GroupKeys,
  type HandoverRecord,
  type IsrRecord,
  type LeaderRecord,
  leaderGuard,
  type MemberAddresses,
  type MemberRecord,
  modifiedAt,
  prefixEnd,
} from './keys.js';
import { isLeaseNotFound, LeaseKeeper } from './lease-keeper.js';

export type { HandoverRecord, IsrRecord, LeaderRecord, MemberAddresses, MemberRecord } from './keys.js';

export interface HaCoordinatorOptions {
  /** The replica group (`--ha-group`): one key prefix in etcd. */
  readonly group: string;
  /** This member's id, unique in the group and stable across restarts. */
  readonly memberId: string;
  readonly addresses: MemberAddresses;
  /** `--ha-lease-ttl` in whole seconds (etcd's unit; it raises values below its minimum). Default 5. */
  readonly leaseTtlSeconds?: number;
  /** Subtracted from every renewal's expiry bound. Default max(100 ms, TTL / 10). */
  readonly fenceMarginMs?: number;
  /** Between keepalives of both leases. Default TTL / 3. */
  readonly keepaliveIntervalMs?: number;
  /** Deadline of each etcd request other than keepalives. Default max(1 s, TTL / 2). */
  readonly requestTimeoutMs?: number;
  /** How long members other than a handover's target wait before they campaign. Default 1 s. */
  readonly handoverDelayMs?: number;
  /** Before another campaign after one failed on an etcd error. Default 500 ms. */
  readonly campaignRetryMs?: number;
  /** Campaign by itself whenever the group has no leader (default true); else only `campaign()`. */
  readonly autoCampaign?: boolean;
  /** Asked before each campaign: may this member lead now (e.g. its storage is open)? Default yes. */
  readonly canLead?: () => boolean;
  /** May this member found a group that never had a leader? Default true. */
  readonly bootstrap?: boolean;
  /** Monotonic milliseconds for the fence arithmetic. Default performance.now(). */
  readonly clock?: () => number;
  /** Root of every group's keys. Default `/nsq-ts/ha/`. */
  readonly keyPrefix?: string;
}

/** A term this member holds (or held): its epoch and the revision that created its leader key. */
export interface HaTerm {
  readonly epoch: number;
  readonly revision: number;
}

export type HaRole = 'leader' | 'follower';

export type DeposeReason =
  /** No keepalive succeeded in time: the fence passed (`fenceExpired` came first). */
  | 'fence-expired'
  /** etcd answered a keepalive: the term's lease is gone. */
  | 'lease-lost'
  /** The watch showed the leader key deleted or replaced. */
  | 'leader-changed'
  /** etcd refused a write as leader: the leader key is not ours any more. */
  | 'fenced-write'
  | 'resigned'
  | 'closed';

export interface HaCoordinatorEvents {
  /** This member won an election: it leads at `term.epoch`, the fence is open. */
  elected: [term: HaTerm];
  /** The fence passed without a renewal: stop acknowledging, close the client listener. */
  fenceExpired: [info: { epoch: number; deadlineMs: number }];
  /** This member no longer leads `epoch` (never again: a new election gives a new epoch). */
  deposed: [info: { epoch: number; reason: DeposeReason }];
  /** The group's leader as etcd last showed it (this member or another; null: none). */
  leader: [leader: LeaderRecord | null];
  /** The in-sync set as etcd last showed it. */
  isr: [isr: IsrRecord | null];
  /** The registered members changed. */
  members: [members: ReadonlyMap<string, MemberRecord>];
  /** An etcd call made in the background failed; `op` says which. Nothing is thrown. */
  etcdError: [info: { op: string; error: Error }];
}

/** etcd refused a write as leader: the term it was made in is over. */
export class HaFencedError extends Error {
  readonly code = 'E_HA_FENCED';
  constructor(
    readonly op: string,
    readonly epoch: number,
  ) {
    super(`${op} refused by etcd: this member no longer leads epoch ${epoch}`);
    this.name = 'HaFencedError';
  }
}

/** A write as leader from a member that has never led. */
export class HaNotLeaderError extends Error {
  readonly code = 'E_HA_NOT_LEADER';
  constructor(readonly op: string) {
    super(`${op}: this member is not the leader`);
    this.name = 'HaNotLeaderError';
  }
}

interface Term extends HaTerm {
  readonly lease: LeaseKeeper;
  readonly fence: AckFence;
  fenceTimer: NodeJS.Timeout | null;
}

interface LeaderEntry {
  readonly record: LeaderRecord;
  readonly createRevision: number;
}

function rev(value: string | number): number {
  return Number(value);
}

function put(key: string, value: string, lease?: string): IRequestOp {
  return {
    request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) },
  };
}

function del(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * One member's coordinator for one replica group. Construct, listen, `start()`; `close()` at the end.
 * Events are typed by {@link HaCoordinatorEvents}; none is named 'error', so none throws unheard.
 */
export class HaCoordinator extends EventEmitter<HaCoordinatorEvents> {
  readonly keys: GroupKeys;
  readonly memberId: string;
  private readonly clock: () => number;
  private readonly ttlSeconds: number;
  private readonly fenceMarginMs: number;
  private readonly keepaliveIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly handoverDelayMs: number;
  private readonly campaignRetryMs: number;
  private readonly autoCampaign: boolean;
  private readonly canLead: () => boolean;
  private readonly bootstrap: boolean;

  // What etcd last showed, each key with the revision it was last applied at (so a watch event
  // older than a transaction's own answer is not applied over it).
  private readonly applied = new Map<string, number>();
  private leaderEntry: LeaderEntry | null = null;
  private lastEpochSeen = 0;
  private isrRecord: IsrRecord | null = null;
  private handoverRecord: HandoverRecord | null = null;
  private readonly memberRecords = new Map<string, MemberRecord>();
  private membersVersion = 0;

  private heldTerm: Term | null = null;
  private lastTerm: HaTerm | null = null;
  private memberLease: LeaseKeeper | null = null;
  private watcher: Watcher | null = null;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private campaignTimer: NodeJS.Timeout | null = null;
  private campaignTimerAt = Number.POSITIVE_INFINITY;
  private campaigning: Promise<number | null> | null = null;
  private leaderlessSinceMs: number;
  private campaignHoldUntilMs = Number.NEGATIVE_INFINITY;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: Etcd3,
    private readonly options: HaCoordinatorOptions,
    private readonly ownsClient = false,
  ) {
    super();
    checkName('member id', options.memberId);
    this.keys = new GroupKeys(options.group, options.keyPrefix);
    this.memberId = options.memberId;
    this.clock = options.clock ?? monotonicMs;
    this.ttlSeconds = options.leaseTtlSeconds ?? 5;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1) {
      throw new RangeError(`lease TTL must be a whole number of seconds >= 1, got ${this.ttlSeconds}`);
    }
    const ttlMs = this.ttlSeconds * 1_000;
    this.fenceMarginMs = options.fenceMarginMs ?? Math.max(100, ttlMs / 10);
    this.keepaliveIntervalMs = options.keepaliveIntervalMs ?? ttlMs / 3;
    if (this.keepaliveIntervalMs <= 0 || this.keepaliveIntervalMs >= ttlMs - this.fenceMarginMs) {
      throw new RangeError(
        `keepalive interval ${this.keepaliveIntervalMs} ms must be > 0 and < TTL − fence margin (${ttlMs - this.fenceMarginMs} ms)`,
      );
    }
    this.requestTimeoutMs = options.requestTimeoutMs ?? Math.max(1_000, ttlMs / 2);
    this.handoverDelayMs = options.handoverDelayMs ?? 1_000;
    this.campaignRetryMs = options.campaignRetryMs ?? 500;
    this.autoCampaign = options.autoCampaign ?? true;
    this.canLead = options.canLead ?? (() => true);
    this.bootstrap = options.bootstrap ?? true;
    this.leaderlessSinceMs = this.clock();
  }

  // ---- what etcd last showed ----

  get role(): HaRole {
    return this.heldTerm === null ? 'follower' : 'leader';
  }

  /** The term this member leads, or null. */
  get term(): HaTerm | null {
    return this.heldTerm === null ? null : { epoch: this.heldTerm.epoch, revision: this.heldTerm.revision };
  }

  get leader(): LeaderRecord | null {
    return this.leaderEntry?.record ?? null;
  }

  /** The highest epoch seen (the `epoch` key, or a leader's): 0 before the first election. */
  get epoch(): number {
    return this.lastEpochSeen;
  }

  get isr(): IsrRecord | null {
    return this.isrRecord;
  }

  get handover(): HandoverRecord | null {
    return this.handoverRecord;
  }

  get members(): ReadonlyMap<string, MemberRecord> {
    return this.memberRecords;
  }

  /**
   * Monotonic ms (on the injected clock) until which this leader may still acknowledge: the last
   * renewal's send time + TTL − margin, always before etcd could expire the term's lease.
   * −Infinity when not leading.
   */
  ackFenceDeadline(): number {
    return this.heldTerm?.fence.deadline() ?? Number.NEGATIVE_INFINITY;
  }

  /** Whether an acknowledgement may be sent now: leading and before the fence. */
  canAcknowledge(): boolean {
    return this.heldTerm?.fence.open(this.clock()) ?? false;
  }

  // ---- life cycle ----

  /**
   * Registers this member, reads the group's state, watches it, and (with autoCampaign)
   * campaigns if there is no leader. Rejects if etcd cannot be reached within the deadlines.
   */
  start(): Promise<void> {
    this.started ??= this.startOnce();
    return this.started;
  }

  private async startOnce(): Promise<void> {
    if (this.closing !== null) throw new Error('coordinator is closed');
    await this.register();
    await this.resync();
    if (this.leaderEntry === null) this.scheduleCampaign(0);
  }

  /**
   * Leaves the group cleanly: a leader's term ends (its lease revoked, so the leader key goes
   * now, not a TTL later), the member key's lease is revoked, the watch cancelled. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.started?.catch(() => undefined);
    this.cancelCampaignTimer();
    const tasks: Array<Promise<unknown>> = [];
    tasks.push(this.endTerm('closed'));
    if (this.memberLease !== null) tasks.push(this.memberLease.revoke());
    if (this.watcher !== null) tasks.push(this.watcher.cancel());
    this.watcher = null;
    for (const r of await Promise.allSettled(tasks)) {
      if (r.status === 'rejected') this.report('close', r.reason);
    }
    await this.campaigning?.catch(() => undefined);
    if (this.ownsClient) this.client.close();
  }

  private get closed(): boolean {
    return this.closing !== null;
  }

  // ---- membership ----

  private async register(): Promise<void> {
    const lease = new LeaseKeeper(this.client, this.leaseOptions(), {
      renewed: () => undefined,
      lost: () => this.reRegister(lease),
      failed: (error) => this.report('member-keepalive', error),
    });
    this.memberLease = lease;
    const id = await lease.grant();
    const record: MemberRecord = { memberId: this.memberId, ...this.options.addresses };
    try {
      await this.client.kv.put(
        { key: Buffer.from(this.keys.member(this.memberId)), value: Buffer.from(encodeMember(record)), lease: id },
        this.deadline(),
      );
    } catch (err) {
      lease.revoke().catch(() => undefined);
      throw err;
    }
    if (this.closed) await lease.revoke();
  }

  /** The member lease expired (e.g. a long partition): register again, retrying until it works. */
  private reRegister(lost: LeaseKeeper): void {
    if (this.closed || this.memberLease !== lost) return;
    this.register().catch((err) => {
      this.report('register', err);
      setTimeout(() => this.reRegister(this.memberLease ?? lost), this.campaignRetryMs);
    });
  }

  // ---- reading and watching ----

  /** Reads the whole group at one revision, applies it, and watches from the next revision. */
  private async resync(): Promise<void> {
    const res = await this.client.kv.range(
      { key: Buffer.from(this.keys.prefix), range_end: prefixEnd(this.keys.prefix) },
      this.deadline(),
    );
    const revision = rev(res.header.revision);
    this.applyBatch(() => this.applySnapshot(res.kvs, revision));
    if (this.closed) return;
    // Not waiting for etcd to confirm the watch: it starts at the next revision whenever it connects.
    const watcher = this.client
      .watch()
      .prefix(this.keys.prefix)
      .startRevision(String(revision + 1))
      .watcher();
    this.watcher = watcher;
    watcher.on('data', (w: IWatchResponse) => this.onWatch(w));
    watcher.on('disconnected', (err: Error) => this.report('watch', err));
    // etcd cancelled the watch (e.g. its start revision was compacted): read everything again.
    watcher.on('error', (err: Error) => {
      this.report('watch', err);
      if (this.watcher !== watcher) return;
      this.watcher = null;
      watcher.cancel().catch(() => undefined);
      this.resyncUntilDone();
    });
  }

  private resyncUntilDone(): void {
    if (this.closed) return;
    this.resync().catch((err) => {
      this.report('resync', err);
      setTimeout(() => this.resyncUntilDone(), this.campaignRetryMs);
    });
  }

  private onWatch(w: IWatchResponse): void {
    if (this.closed) return;
    const events = w.events ?? [];
    // One response may carry several revisions (a watch catching up): each revision is one
    // transaction's consistent state, so each is applied and reported on its own.
    for (let i = 0; i < events.length; ) {
      const revision = rev(events[i].kv.mod_revision);
      let j = i;
      while (j < events.length && rev(events[j].kv.mod_revision) === revision) j++;
      const group = events.slice(i, j);
      this.applyBatch(() => {
        for (const ev of group) this.applyKey(ev.kv.key.toString('utf8'), ev.type === 'Put' ? ev.kv : null, revision);
      });
      i = j;
    }
    const ourMemberKey = this.keys.member(this.memberId);
    if (events.some((ev) => ev.type === 'Delete' && ev.kv.key.toString('utf8') === ourMemberKey)) {
      this.reputMemberKey();
    }
  }

  /** Our member key was deleted (by hand, or with our expired lease): put it back. */
  private reputMemberKey(): void {
    const lease = this.memberLease;
    if (this.closed || lease === null || lease.id === null || this.memberRecords.has(this.memberId)) return;
    const record: MemberRecord = { memberId: this.memberId, ...this.options.addresses };
    this.client.kv
      .put(
        {
          key: Buffer.from(this.keys.member(this.memberId)),
          value: Buffer.from(encodeMember(record)),
          lease: lease.id,
        },
        this.deadline(),
      )
      .catch((err) => {
        if (!isLeaseNotFound(err)) {
          this.report('register', err);
          return;
        }
        // The key went with our lease (it expired across a partition): a new lease, a new key.
        lease.stop();
        this.reRegister(lease);
      });
  }

  private applySnapshot(kvs: readonly IKeyValue[], revision: number): void {
    const present = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      present.add(key);
      this.applyKey(key, kv, rev(kv.mod_revision));
    }
    const singletons = [this.keys.leader, this.keys.epoch, this.keys.isr, this.keys.handover];
    const memberKeys = [...this.memberRecords.keys()].map((id) => this.keys.member(id));
    for (const key of [...singletons, ...memberKeys]) {
      if (!present.has(key)) this.applyKey(key, null, revision);
    }
  }

  /**
   * Applies `mutate` to the mirror, then emits what changed and reacts: a held term whose leader
   * key is no longer ours ends, and a leaderless group gets a campaign.
   */
  private applyBatch(mutate: () => void): void {
    const before = {
      leader: this.leaderEntry,
      isr: this.isrRecord,
      handover: this.handoverRecord,
      members: this.membersVersion,
    };
    mutate();
    const leaderChanged = before.leader !== this.leaderEntry;
    if (leaderChanged) {
      if (this.leaderEntry === null) this.leaderlessSinceMs = this.clock();
      this.emit('leader', this.leader);
    }
    if (before.isr !== this.isrRecord) this.emit('isr', this.isrRecord);
    if (before.members !== this.membersVersion) {
      this.emit('members', this.memberRecords);
    }
    const held = this.heldTerm;
    if (held !== null && this.leaderEntry?.createRevision !== held.revision) {
      this.endTerm('leader-changed').catch((err) => this.report('leader-lease-revoke', err));
    }
    if (
      this.leaderEntry === null &&
      (leaderChanged || before.isr !== this.isrRecord || before.handover !== this.handoverRecord)
    ) {
      this.scheduleCampaign(0);
    }
  }

  /** Applies one key's value (null: deleted) as of `revision`, unless something newer was applied. */
  private applyKey(key: string, kv: IKeyValue | null, revision: number): void {
    if ((this.applied.get(key) ?? 0) >= revision) return;
    this.applied.set(key, revision);
    try {
      this.decodeInto(key, kv, revision);
    } catch (err) {
      // A value this layout does not describe counts as absent here; etcd's compares still guard.
      this.report('decode', err);
      this.decodeInto(key, null, revision);
    }
  }

  private decodeInto(key: string, kv: IKeyValue | null, revision: number): void {
    const k = this.keys;
    if (key === k.leader) {
      if (kv === null) {
        this.leaderEntry = null;
      } else {
        const record = decodeLeader(key, kv.value);
        this.leaderEntry = { record, createRevision: rev(kv.create_revision) };
        this.seeEpoch(record.epoch);
      }
    } else if (key === k.epoch) {
      if (kv !== null) this.seeEpoch(decodeEpoch(key, kv.value));
    } else if (key === k.isr) {
      this.isrRecord = kv === null ? null : decodeIsr(key, kv.value, revision);
    } else if (key === k.handover) {
      this.handoverRecord = kv === null ? null : decodeHandover(key, kv.value);
    } else {
      const id = k.memberIdOf(key);
      if (id === null) return;
      if (kv !== null) this.memberRecords.set(id, decodeMember(key, kv.value));
      else if (!this.memberRecords.delete(id)) return;
      this.membersVersion++;
    }
  }

  private seeEpoch(epoch: number): void {
    if (epoch > this.lastEpochSeen) this.lastEpochSeen = epoch;
  }

  // ---- election ----

  private scheduleCampaign(delayMs: number): void {
    if (!this.autoCampaign || this.closed || this.heldTerm !== null || this.started === null) return;
    const at = this.clock() + delayMs;
    if (this.campaignTimer !== null && this.campaignTimerAt <= at) return;
    this.cancelCampaignTimer();
    this.campaignTimerAt = at;
    this.campaignTimer = setTimeout(
      () => {
        this.campaignTimer = null;
        this.campaignTimerAt = Number.POSITIVE_INFINITY;
        this.campaign().catch((err) => {
          this.report('campaign', err);
          this.scheduleCampaign(this.campaignRetryMs);
        });
      },
      Math.max(0, Math.ceil(delayMs)),
    );
  }

  private cancelCampaignTimer(): void {
    if (this.campaignTimer !== null) clearTimeout(this.campaignTimer);
    this.campaignTimer = null;
    this.campaignTimerAt = Number.POSITIVE_INFINITY;
  }

  /**
   * Tries once to become leader. Resolves with the new epoch, or null: there is a leader, this
   * member is not in the in-sync set (or may not bootstrap), `canLead()` said no, another
   * member's transaction won, or it defers to a handover target (then it retries by itself when
   * the delay has passed). Rejects on an etcd error. Concurrent calls share one attempt.
   */
  campaign(): Promise<number | null> {
    this.campaigning ??= this.campaignOnce().finally(() => {
      this.campaigning = null;
    });
    return this.campaigning;
  }

  private async campaignOnce(): Promise<number | null> {
    if (this.closed || this.heldTerm !== null || !this.canLead()) return null;
    const k = this.keys;
    const read = await this.client.kv.txn(
      {
        success: [k.leader, k.epoch, k.isr, k.handover].map((key) => ({ request_range: { key: Buffer.from(key) } })),
      },
      this.deadline(),
    );
    const [leaderKv, epochKv, isrKv, handoverKv] = read.responses.map((r) => r.response_range.kvs[0] ?? null);
    const revision = rev(read.header.revision);
    this.applyBatch(() => {
      this.applyKey(k.leader, leaderKv ?? null, leaderKv ? rev(leaderKv.mod_revision) : revision);
      this.applyKey(k.epoch, epochKv ?? null, epochKv ? rev(epochKv.mod_revision) : revision);
      this.applyKey(k.isr, isrKv ?? null, isrKv ? rev(isrKv.mod_revision) : revision);
      this.applyKey(k.handover, handoverKv ?? null, handoverKv ? rev(handoverKv.mod_revision) : revision);
    });
    if (leaderKv !== null && leaderKv !== undefined) return null;

    const compares = [absent(k.leader)];
    let previousEpoch = 0;
    let members: readonly string[];
    if (isrKv === null || isrKv === undefined) {
      // Bootstrap: only a group that never elected anyone (no epoch either) may start from nothing.
      if (epochKv || !this.bootstrap) return null;
      compares.push(absent(k.isr), absent(k.epoch));
      members = [this.memberId];
    } else {
      const isr = decodeIsr(k.isr, isrKv.value, rev(isrKv.mod_revision));
      if (!isr.members.includes(this.memberId)) return null;
      compares.push(modifiedAt(k.isr, isr.revision));
      if (epochKv) {
        previousEpoch = decodeEpoch(k.epoch, epochKv.value);
        compares.push(modifiedAt(k.epoch, rev(epochKv.mod_revision)));
      } else {
        compares.push(absent(k.epoch));
      }
      members = isr.members;
    }

    const now = this.clock();
    let waitUntil = this.campaignHoldUntilMs;
    // A handover value this layout does not describe is ignored (applyKey reported it).
    const handover = handoverKv ? this.handoverRecord : null;
    if (handover !== null && handover.epoch === previousEpoch && handover.memberId !== this.memberId) {
      waitUntil = Math.max(waitUntil, this.leaderlessSinceMs + this.handoverDelayMs);
    }
    if (now < waitUntil) {
      this.scheduleCampaign(waitUntil - now);
      return null;
    }

    const epoch = previousEpoch + 1;
    const fence = new AckFence(this.fenceMarginMs);
    let term: Term | null = null;
    const lease = new LeaseKeeper(this.client, this.leaseOptions(), {
      renewed: (sentAtMs, ttlMs) => fence.renewed(sentAtMs, ttlMs),
      lost: () => {
        if (term !== null && this.heldTerm === term) {
          this.endTerm('lease-lost').catch((err) => this.report('leader-lease-revoke', err));
        }
      },
      failed: (error) => this.report('leader-keepalive', error),
    });
    const leaseId = await lease.grant();
    const record: LeaderRecord = { memberId: this.memberId, ...this.options.addresses, epoch };
    let res: ITxnResponse;
    try {
      res = await this.client.kv.txn(
        {
          compare: compares,
          success: [
            put(k.leader, encodeLeader(record), leaseId),
            put(k.epoch, String(epoch)),
            put(k.isr, encodeIsr(epoch, members)),
            del(k.handover),
          ],
        },
        this.deadline(),
      );
    } catch (err) {
      // The outcome is unknown: the revoke removes the leader key if the transaction did commit.
      lease.revoke().catch((e) => this.report('leader-lease-revoke', e));
      throw err;
    }
    if (!res.succeeded || this.closed) {
      // Awaited: close() waits for this attempt before it closes the client.
      await lease.revoke().catch((e) => this.report('leader-lease-revoke', e));
      return null;
    }
    const termRevision = rev(res.header.revision);
    term = { epoch, revision: termRevision, lease, fence, fenceTimer: null };
    this.heldTerm = term;
    this.lastTerm = { epoch, revision: termRevision };
    this.cancelCampaignTimer();
    this.armFence(term);
    this.emit('elected', { epoch, revision: termRevision });
    // After 'elected': if the watch already showed the key gone again, 'deposed' follows it.
    this.applyBatch(() => {
      this.applyKey(
        k.leader,
        this.syntheticKv(k.leader, encodeLeader(record), termRevision, termRevision),
        termRevision,
      );
      this.applyKey(k.epoch, this.syntheticKv(k.epoch, String(epoch), termRevision, 0), termRevision);
      this.applyKey(k.isr, this.syntheticKv(k.isr, encodeIsr(epoch, members), termRevision, 0), termRevision);
      this.applyKey(k.handover, null, termRevision);
    });
    return epoch;
  }

  /** A key/value as a transaction's own answer implies it (etcd does not echo puts back). */
  private syntheticKv(key: string, value: string, modRevision: number, createRevision: number): IKeyValue {
    return {
      key: Buffer.from(key),
      value: Buffer.from(value),
      mod_revision: String(modRevision),
      create_revision: String(createRevision),
      version: '0',
      lease: '0',
    };
  }

  /** Fires `fenceExpired` when the fence passes; a renewal in the meantime moves it on. */
  private armFence(term: Term): void {
    const delay = Math.max(0, Math.ceil(term.fence.deadline() - this.clock()));
    term.fenceTimer = setTimeout(() => {
      term.fenceTimer = null;
      if (this.heldTerm !== term) return;
      if (term.fence.open(this.clock())) {
        this.armFence(term);
        return;
      }
      this.emit('fenceExpired', { epoch: term.epoch, deadlineMs: term.fence.deadline() });
      this.endTerm('fence-expired').catch((err) => this.report('leader-lease-revoke', err));
    }, delay);
  }

  /**
   * Ends the held term (no-op without one): the fence shuts first, then `deposed`, then the
   * term's lease is revoked (so etcd deletes the leader key at once) — except for a resign,
   * which deletes the key itself in its transaction and then revokes.
   */
  private endTerm(reason: DeposeReason): Promise<void> {
    const term = this.heldTerm;
    if (term === null) return Promise.resolve();
    this.heldTerm = null;
    term.fence.revoke();
    if (term.fenceTimer !== null) clearTimeout(term.fenceTimer);
    term.fenceTimer = null;
    if (reason === 'resigned') term.lease.stop();
    this.emit('deposed', { epoch: term.epoch, reason });
    if (this.leaderEntry?.createRevision !== term.revision) this.scheduleCampaign(0);
    return reason === 'resigned' ? Promise.resolve() : term.lease.revoke();
  }

  // ---- writes as leader ----

  /**
   * Removes `memberId` from the in-sync set; resolves once etcd committed it (the leader must
   * not acknowledge anything the member lacks before that). Rejects with HaFencedError if this
   * member's term is over, HaNotLeaderError if it never led. Writes are applied in call order.
   */
  shrinkIsr(memberId: string): Promise<IsrRecord> {
    return this.writeIsr('shrinkIsr', (members) => members.filter((m) => m !== memberId), memberId);
  }

  /** Adds `memberId` to the in-sync set (it has caught up); resolves once committed. */
  expandIsr(memberId: string): Promise<IsrRecord> {
    checkName('member id', memberId);
    return this.writeIsr('expandIsr', (members) => (members.includes(memberId) ? members : [...members, memberId]));
  }

  private writeIsr(
    op: string,
    change: (members: readonly string[]) => readonly string[],
    removed?: string,
  ): Promise<IsrRecord> {
    const write = this.writes.then(async () => {
      if (removed === this.memberId) throw new Error(`${op}: the leader cannot leave the in-sync set`);
      const term = this.heldTerm ?? this.lastTerm;
      if (term === null) throw new HaNotLeaderError(op);
      const base = this.isrRecord?.members ?? [];
      const members = change(base);
      const unchanged = members.length === base.length && members.every((m, i) => m === base[i]);
      // Even a no-op goes to etcd: resolving means etcd confirmed the term at that moment.
      const res = await this.leaderTxn(op, term, unchanged ? [] : [put(this.keys.isr, encodeIsr(term.epoch, members))]);
      const revision = rev(res.header.revision);
      if (unchanged) return this.isrRecord ?? { epoch: term.epoch, members, revision: 0 };
      this.applyBatch(() =>
        this.applyKey(
          this.keys.isr,
          this.syntheticKv(this.keys.isr, encodeIsr(term.epoch, members), revision, 0),
          revision,
        ),
      );
      return { epoch: term.epoch, members, revision };
    });
    this.writes = write.catch(() => undefined);
    return write;
  }

  /** One transaction guarded by the leader key still being the one `term` created. */
  private async leaderTxn(op: string, term: HaTerm, ops: IRequestOp[]): Promise<{ header: IResponseHeader }> {
    const res = await this.client.kv.txn(
      { compare: [leaderGuard(this.keys, term.revision)], success: ops },
      this.deadline(),
    );
    if (!res.succeeded) {
      if (this.heldTerm?.revision === term.revision) {
        this.endTerm('fenced-write').catch((err) => this.report('leader-lease-revoke', err));
      }
      throw new HaFencedError(op, term.epoch);
    }
    return res;
  }

  /**
   * Planned handover: stops leading at once (the fence shuts and `deposed` is emitted before
   * anything is sent), then in one guarded transaction records `target` as the preferred next
   * leader and deletes the leader key, then revokes the term's lease. Members other than the
   * target wait `handoverDelayMs` before they campaign, so the target (if it is in the in-sync
   * set and up) wins. Without a target the leader key is just deleted. Rejects with
   * HaNotLeaderError when not leading, HaFencedError when etcd shows the term already over.
   */
  async resign(target?: string): Promise<void> {
    const term = this.heldTerm;
    if (term === null) throw new HaNotLeaderError('resign');
    if (target !== undefined) {
      checkName('member id', target);
      if (target === this.memberId) throw new Error('resign: the target is this member');
      if (!(this.isrRecord?.members.includes(target) ?? false)) {
        throw new Error(`resign: ${target} is not in the in-sync set, it could not be elected`);
      }
    }
    this.campaignHoldUntilMs = this.clock() + this.handoverDelayMs;
    await this.endTerm('resigned');
    const ops =
      target === undefined ? [] : [put(this.keys.handover, encodeHandover({ epoch: term.epoch, memberId: target }))];
    try {
      await this.leaderTxn('resign', term, [...ops, del(this.keys.leader)]);
    } finally {
      term.lease.revoke().catch((err) => this.report('leader-lease-revoke', err));
    }
  }

  // ---- helpers ----

  private leaseOptions() {
    return {
      ttlSeconds: this.ttlSeconds,
      intervalMs: this.keepaliveIntervalMs,
      requestTimeoutMs: this.requestTimeoutMs,
      clock: this.clock,
    };
  }

  private deadline(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.requestTimeoutMs) };
  }

  private report(op: string, err: unknown): void {
    this.emit('etcdError', { op, error: asError(err) });
  }
}

/**
 * Loads etcd3 (only now: an nsqd without --ha-group never pays for it), connects to
 * `etcdEndpoints` and returns a coordinator that owns the client (closing it closes the client).
 * Call `start()` on it after attaching listeners.
 */
export async function createHaCoordinator(
  options: HaCoordinatorOptions & { readonly etcdEndpoints: readonly string[] },
): Promise<HaCoordinator> {
  const client = await connectEtcd({ endpoints: options.etcdEndpoints });
  return new HaCoordinator(client, options, true);
}
