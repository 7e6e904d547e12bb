import type { IKeyValue } from 'etcd3';
import {
  decodeEpoch,
  decodeHandover,
  decodeIsr,
  decodeLeader,
  decodeMember,
  type GroupKeys,
  type HandoverRecord,
  type IsrRecord,
  type LeaderRecord,
  type MemberRecord,
  rev,
} from './keys.js';

export interface LeaderEntry {
  readonly record: LeaderRecord;
  /** Identifies the term: a new leader key gets a new create revision. */
  readonly createRevision: number;
}

/** What one batch of applied keys changed. */
export interface ViewChanges {
  readonly leader: boolean;
  readonly isr: boolean;
  readonly handover: boolean;
  readonly members: boolean;
}

/**
 * A group's keys as etcd last showed them, fed by reads, the watch and the coordinator's own
 * transactions. Each key remembers the revision it was last applied at, so a watch event older
 * than a transaction's own answer is not applied over it.
 */
export class GroupView {
  private readonly applied = new Map<string, number>();
  private leaderEntry: LeaderEntry | null = null;
  private lastEpochSeen = 0;
  private isrRecord: IsrRecord | null = null;
  private handoverRecord: HandoverRecord | null = null;
  private readonly memberRecords = new Map<string, MemberRecord>();
  private membersVersion = 0;

  constructor(
    private readonly keys: GroupKeys,
    /** A value this layout does not describe; the key then counts as absent. */
    private readonly onBadValue: (err: unknown) => void,
  ) {}

  get leader(): LeaderEntry | null {
    return this.leaderEntry;
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

  /** Runs `mutate` (which applies keys) and says which parts of the view it changed. */
  batch(mutate: () => void): ViewChanges {
    const leader = this.leaderEntry;
    const isr = this.isrRecord;
    const handover = this.handoverRecord;
    const members = this.membersVersion;
    mutate();
    return {
      leader: leader !== this.leaderEntry,
      isr: isr !== this.isrRecord,
      handover: handover !== this.handoverRecord,
      members: members !== this.membersVersion,
    };
  }

  /** Applies a read of the whole group at `revision`: keys it does not list are gone. */
  applySnapshot(kvs: readonly IKeyValue[], revision: number): void {
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

  /** Applies one key's value (null: deleted) as of `revision`, unless something newer was applied. */
  applyKey(key: string, kv: IKeyValue | null, revision: number): void {
    if ((this.applied.get(key) ?? 0) >= revision) return;
    this.applied.set(key, revision);
    try {
      this.decodeInto(key, kv, revision);
    } catch (err) {
      // Absent here; etcd's compares still guard every write against the real value.
      this.onBadValue(err);
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
}
