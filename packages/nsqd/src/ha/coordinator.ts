/**
 * The etcd side of one replica group: membership, leader and epoch, in-sync set (docs/replication.md).
 * etcd decides each by compare-and-set and leases; once a term is over etcd refuses its writes
 * ({@link HaFencedError}) whatever this member believes. etcd3 is only imported as types here.
 */
import { EventEmitter } from 'node:events';
import type { Etcd3, IRequestOp, IResponseHeader, ITxnResponse } from 'etcd3';
import { AckFence } from './ack-fence.js';
import { campaignOps, planCampaign, readCampaignKeys } from './election.js';
import { connectEtcd } from './etcd-client.js';
import {
  type DeposeReason,
  type HaCoordinatorEvents,
  HaFencedError,
  HaNotLeaderError,
  type HaRole,
  type HaTerm,
} from './events.js';
import { GroupView } from './group-view.js';
import { GroupWatch, type RevisionChanges } from './group-watch.js';
import {
  checkName,
  deleteOp,
  encodeHandover,
  encodeIsr,
  encodeLeader,
  GroupKeys,
  type HandoverRecord,
  type IsrRecord,
  impliedKv,
  type LeaderRecord,
  leaderGuard,
  type MemberRecord,
  putOp,
  rev,
} from './keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import { MemberRegistration } from './member-registration.js';
import {
  type HaCoordinatorOptions,
  type HaSettings,
  leaseOptions,
  requestDeadline,
  resolveSettings,
} from './settings.js';

export type {
  DeposeReason,
  HaCoordinatorEvents,
  HaRole,
  HaTerm,
} from './events.js';
export { HaFencedError, HaNotLeaderError } from './events.js';
export type { HandoverRecord, IsrRecord, LeaderRecord, MemberAddresses, MemberRecord } from './keys.js';
export type { HaCoordinatorOptions } from './settings.js';

interface Term extends HaTerm {
  readonly lease: LeaseKeeper;
  readonly fence: AckFence;
  fenceTimer: NodeJS.Timeout | null;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** One member's coordinator for one replica group; no event is named 'error', so none throws unheard. */
export class HaCoordinator extends EventEmitter<HaCoordinatorEvents> {
  readonly keys: GroupKeys;
  readonly memberId: string;

  /** The term held now; `lastTerm` is the latest ever held, whose writes etcd must judge. */
  private heldTerm: Term | null = null;
  private lastTerm: HaTerm | null = null;
  private started: Promise<void> | null = null;
  private closing: Promise<void> | null = null;
  private campaignTimer: NodeJS.Timeout | null = null;
  private campaignTimerAt = Number.POSITIVE_INFINITY;
  private campaigning: Promise<number | null> | null = null;
  private leaderlessSinceMs: number;
  private campaignHoldUntilMs = Number.NEGATIVE_INFINITY;
  private writes: Promise<unknown> = Promise.resolve();

  private readonly settings: HaSettings;
  private readonly view: GroupView;
  private readonly watch: GroupWatch;
  private readonly registration: MemberRegistration;

  constructor(
    private readonly client: Etcd3,
    private readonly options: HaCoordinatorOptions,
    private readonly ownsClient = false,
  ) {
    super();
    checkName('member id', options.memberId);
    this.keys = new GroupKeys(options.group, options.keyPrefix);
    this.memberId = options.memberId;
    this.settings = resolveSettings(options);
    this.leaderlessSinceMs = this.settings.clock();
    this.view = new GroupView(this.keys, (err) => this.report('decode', err));
    const isClosed = () => this.closed;
    const report = (op: string, err: unknown) => this.report(op, err);
    this.watch = new GroupWatch(client, this.keys.prefix, this.settings, {
      snapshot: (kvs, revision) => this.applyBatch(() => this.view.applySnapshot(kvs, revision)),
      changes: (revisions) => this.onChanges(revisions),
      report,
      isClosed,
    });
    this.registration = new MemberRegistration(
      client,
      this.keys.member(this.memberId),
      { memberId: this.memberId, ...options.addresses },
      this.settings,
      { report, isClosed, isListed: () => this.view.members.has(this.memberId) },
    );
  }

  get role(): HaRole {
    return this.heldTerm === null ? 'follower' : 'leader';
  }

  get term(): HaTerm | null {
    return this.heldTerm === null ? null : { epoch: this.heldTerm.epoch, revision: this.heldTerm.revision };
  }

  get leader(): LeaderRecord | null {
    return this.view.leader?.record ?? null;
  }

  /** The highest epoch seen (the `epoch` key, or a leader's): 0 before the first election. */
  get epoch(): number {
    return this.view.epoch;
  }

  get isr(): IsrRecord | null {
    return this.view.isr;
  }

  get handover(): HandoverRecord | null {
    return this.view.handover;
  }

  get members(): ReadonlyMap<string, MemberRecord> {
    return this.view.members;
  }

  /** Monotonic ms until which this leader may acknowledge: last renewal's send + TTL − margin. */
  ackFenceDeadline(): number {
    return this.heldTerm?.fence.deadline() ?? Number.NEGATIVE_INFINITY;
  }

  canAcknowledge(): boolean {
    return this.heldTerm?.fence.open(this.settings.clock()) ?? false;
  }

  /** Registers, reads and watches the group, campaigns if leaderless (autoCampaign); rejects if etcd is unreachable. */
  start(): Promise<void> {
    this.started ??= this.startOnce();
    return this.started;
  }

  private async startOnce(): Promise<void> {
    if (this.closing !== null) throw new Error('coordinator is closed');
    await this.registration.register();
    await this.watch.start();
    if (this.view.leader === null) this.scheduleCampaign(0);
  }

  /** Leaves cleanly: a leader's lease is revoked so its key goes now, not a TTL later. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    await this.started?.catch(() => undefined);
    this.cancelCampaignTimer();
    const tasks: Array<Promise<unknown>> = [this.endTerm('closed')];
    for (const task of [this.registration.revoke(), this.watch.cancel()]) if (task !== null) tasks.push(task);
    for (const r of await Promise.allSettled(tasks)) {
      if (r.status === 'rejected') this.report('close', r.reason);
    }
    await this.campaigning?.catch(() => undefined);
    if (this.ownsClient) this.client.close();
  }

  private get closed(): boolean {
    return this.closing !== null;
  }

  private onChanges(revisions: readonly RevisionChanges[]): void {
    for (const { revision, changes } of revisions) {
      this.applyBatch(() => {
        for (const { key, kv } of changes) this.view.applyKey(key, kv, revision);
      });
    }
    const ourMemberKey = this.keys.member(this.memberId);
    if (revisions.some((r) => r.changes.some((c) => c.kv === null && c.key === ourMemberKey))) {
      this.registration.keyDeleted();
    }
  }

  /** Applies `mutate`, emits what changed; a held term whose leader key is gone ends, a leaderless group campaigns. */
  private applyBatch(mutate: () => void): void {
    const changed = this.view.batch(mutate);
    const leaderEntry = this.view.leader;
    if (changed.leader) {
      if (leaderEntry === null) this.leaderlessSinceMs = this.settings.clock();
      this.emit('leader', this.leader);
    }
    if (changed.isr) this.emit('isr', this.view.isr);
    if (changed.members) this.emit('members', this.view.members);
    const held = this.heldTerm;
    if (held !== null && leaderEntry?.createRevision !== held.revision) {
      this.endTerm('leader-changed').catch((err) => this.report('leader-lease-revoke', err));
    }
    if (leaderEntry === null && (changed.leader || changed.isr || changed.handover)) this.scheduleCampaign(0);
  }

  private scheduleCampaign(delayMs: number): void {
    if (!this.settings.autoCampaign || this.closed || this.heldTerm !== null || this.started === null) return;
    const at = this.settings.clock() + delayMs;
    if (this.campaignTimer !== null && this.campaignTimerAt <= at) return;
    this.cancelCampaignTimer();
    this.campaignTimerAt = at;
    this.campaignTimer = setTimeout(
      () => {
        this.campaignTimer = null;
        this.campaignTimerAt = Number.POSITIVE_INFINITY;
        this.campaign().catch((err) => {
          this.report('campaign', err);
          this.scheduleCampaign(this.settings.campaignRetryMs);
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
   * Tries once to become leader: the new epoch, or null (a leader exists, not in sync, `canLead()` said no, lost
   * the transaction, or deferring to a handover target). Concurrent calls share one attempt.
   */
  campaign(): Promise<number | null> {
    this.campaigning ??= this.campaignOnce().finally(() => {
      this.campaigning = null;
    });
    return this.campaigning;
  }

  private async campaignOnce(): Promise<number | null> {
    if (this.closed || this.heldTerm !== null || !this.settings.canLead()) return null;
    const k = this.keys;
    const read = await readCampaignKeys(this.client, k, this.deadline());
    const at = (kv: typeof read.leader) => (kv === null ? read.revision : rev(kv.mod_revision));
    this.applyBatch(() => {
      this.view.applyKey(k.leader, read.leader, at(read.leader));
      this.view.applyKey(k.epoch, read.epoch, at(read.epoch));
      this.view.applyKey(k.isr, read.isr, at(read.isr));
      this.view.applyKey(k.handover, read.handover, at(read.handover));
    });
    const plan = planCampaign(k, this.memberId, this.settings.bootstrap, read);
    if (plan === null) return null;

    const now = this.settings.clock();
    let waitUntil = this.campaignHoldUntilMs;
    // A handover value this layout does not describe is ignored (the view reported it).
    const handover = read.handover !== null ? this.view.handover : null;
    if (handover !== null && handover.epoch === plan.previousEpoch && handover.memberId !== this.memberId) {
      waitUntil = Math.max(waitUntil, this.leaderlessSinceMs + this.settings.handoverDelayMs);
    }
    if (now < waitUntil) {
      this.scheduleCampaign(waitUntil - now);
      return null;
    }

    const epoch = plan.previousEpoch + 1;
    const fence = new AckFence(this.settings.fenceMarginMs);
    let term: Term | null = null;
    const lease = new LeaseKeeper(this.client, leaseOptions(this.settings), {
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
        { compare: plan.compares, success: campaignOps(k, record, leaseId, plan.members) },
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
    const isrValue = encodeIsr(epoch, plan.members);
    this.applyBatch(() => {
      this.view.applyKey(k.leader, impliedKv(k.leader, encodeLeader(record), termRevision, termRevision), termRevision);
      this.view.applyKey(k.epoch, impliedKv(k.epoch, String(epoch), termRevision, 0), termRevision);
      this.view.applyKey(k.isr, impliedKv(k.isr, isrValue, termRevision, 0), termRevision);
      this.view.applyKey(k.handover, null, termRevision);
    });
    return epoch;
  }

  /** Fires `fenceExpired` when the fence passes; a renewal in the meantime moves it on. */
  private armFence(term: Term): void {
    const delay = Math.max(0, Math.ceil(term.fence.deadline() - this.settings.clock()));
    term.fenceTimer = setTimeout(() => {
      term.fenceTimer = null;
      if (this.heldTerm !== term) return;
      if (term.fence.open(this.settings.clock())) {
        this.armFence(term);
        return;
      }
      this.emit('fenceExpired', { epoch: term.epoch, deadlineMs: term.fence.deadline() });
      this.endTerm('fence-expired').catch((err) => this.report('leader-lease-revoke', err));
    }, delay);
  }

  /** Ends the held term: fence shuts, `deposed`, then the lease is revoked (a resign deletes the key first). */
  private endTerm(reason: DeposeReason): Promise<void> {
    const term = this.heldTerm;
    if (term === null) return Promise.resolve();
    this.heldTerm = null;
    term.fence.revoke();
    if (term.fenceTimer !== null) clearTimeout(term.fenceTimer);
    term.fenceTimer = null;
    if (reason === 'resigned') term.lease.stop();
    this.emit('deposed', { epoch: term.epoch, reason });
    if (this.view.leader?.createRevision !== term.revision) this.scheduleCampaign(0);
    return reason === 'resigned' ? Promise.resolve() : term.lease.revoke();
  }

  /**
   * Resolves once etcd committed it (the leader must not acknowledge what the member lacks before that).
   * Writes are applied in call order.
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
      const base = this.view.isr?.members ?? [];
      const members = change(base);
      const unchanged = members.length === base.length && members.every((m, i) => m === base[i]);
      // Even a no-op goes to etcd: resolving means etcd confirmed the term at that moment.
      const res = await this.leaderTxn(
        op,
        term,
        unchanged ? [] : [putOp(this.keys.isr, encodeIsr(term.epoch, members))],
      );
      const revision = rev(res.header.revision);
      if (unchanged) return this.view.isr ?? { epoch: term.epoch, members, revision: 0 };
      const value = impliedKv(this.keys.isr, encodeIsr(term.epoch, members), revision, 0);
      this.applyBatch(() => this.view.applyKey(this.keys.isr, value, revision));
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
   * Planned handover: stops leading at once, then one guarded transaction records `target` as preferred and
   * deletes the leader key. Others wait `handoverDelayMs` before campaigning, so the target wins.
   */
  async resign(target?: string): Promise<void> {
    const term = this.heldTerm;
    if (term === null) throw new HaNotLeaderError('resign');
    if (target !== undefined) {
      checkName('member id', target);
      if (target === this.memberId) throw new Error('resign: the target is this member');
      if (!(this.view.isr?.members.includes(target) ?? false)) {
        throw new Error(`resign: ${target} is not in the in-sync set, it could not be elected`);
      }
    }
    this.campaignHoldUntilMs = this.settings.clock() + this.settings.handoverDelayMs;
    await this.endTerm('resigned');
    const ops =
      target === undefined ? [] : [putOp(this.keys.handover, encodeHandover({ epoch: term.epoch, memberId: target }))];
    try {
      await this.leaderTxn('resign', term, [...ops, deleteOp(this.keys.leader)]);
    } finally {
      term.lease.revoke().catch((err) => this.report('leader-lease-revoke', err));
    }
  }

  private deadline(): { deadline: Date } {
    return requestDeadline(this.settings);
  }

  private report(op: string, err: unknown): void {
    this.emit('etcdError', { op, error: asError(err) });
  }
}

/** Loads etcd3 only now (an nsqd without --ha-group never pays for it); the coordinator owns the client. */
export async function createHaCoordinator(
  options: HaCoordinatorOptions & { readonly etcdEndpoints: readonly string[] },
): Promise<HaCoordinator> {
  const client = await connectEtcd({ endpoints: options.etcdEndpoints });
  return new HaCoordinator(client, options, true);
}
