/**
 * The campaign transaction (docs/replication.md, "Election"): one read of the group's singleton
 * keys at one revision, and the compare-and-set built from it, so that of several simultaneous
 * candidates exactly one wins and the epoch grows by exactly one.
 */
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from 'etcd3';
import {
  absent,
  decodeEpoch,
  decodeIsr,
  deleteOp,
  encodeIsr,
  encodeLeader,
  type GroupKeys,
  type LeaderRecord,
  modifiedAt,
  putOp,
  rev,
} from './keys.js';

export interface CampaignRead {
  readonly leader: IKeyValue | null;
  readonly epoch: IKeyValue | null;
  readonly isr: IKeyValue | null;
  readonly handover: IKeyValue | null;
  readonly revision: number;
}

export async function readCampaignKeys(
  client: Etcd3,
  keys: GroupKeys,
  callOptions: { deadline: Date },
): Promise<CampaignRead> {
  const read = await client.kv.txn(
    {
      success: [keys.leader, keys.epoch, keys.isr, keys.handover].map((key) => ({
        request_range: { key: Buffer.from(key) },
      })),
    },
    callOptions,
  );
  const [leader, epoch, isr, handover] = read.responses.map((r) => r.response_range.kvs[0] ?? null);
  return {
    leader: leader ?? null,
    epoch: epoch ?? null,
    isr: isr ?? null,
    handover: handover ?? null,
    revision: rev(read.header.revision),
  };
}

export interface CampaignPlan {
  readonly compares: ICompare[];
  /** The epoch the read found (0: none); the campaign elects the next one. */
  readonly previousEpoch: number;
  /** The in-sync set the new term starts with. */
  readonly members: readonly string[];
}

/**
 * What a campaign compares, or null when this member may not campaign: there is a leader, it is
 * not in the in-sync set, or the group needs founding and it may not bootstrap.
 */
export function planCampaign(
  keys: GroupKeys,
  memberId: string,
  bootstrap: boolean,
  read: CampaignRead,
): CampaignPlan | null {
  if (read.leader !== null) return null;
  const compares = [absent(keys.leader)];
  if (read.isr === null) {
    // Bootstrap: only a group that never elected anyone (no epoch either) may start from nothing.
    if (read.epoch !== null || !bootstrap) return null;
    compares.push(absent(keys.isr), absent(keys.epoch));
    return { compares, previousEpoch: 0, members: [memberId] };
  }
  const isr = decodeIsr(keys.isr, read.isr.value, rev(read.isr.mod_revision));
  if (!isr.members.includes(memberId)) return null;
  compares.push(modifiedAt(keys.isr, isr.revision));
  let previousEpoch = 0;
  if (read.epoch !== null) {
    previousEpoch = decodeEpoch(keys.epoch, read.epoch.value);
    compares.push(modifiedAt(keys.epoch, rev(read.epoch.mod_revision)));
  } else {
    compares.push(absent(keys.epoch));
  }
  return { compares, previousEpoch, members: isr.members };
}

/** The campaign's writes: the leader key under the term's lease, epoch + 1, the isr re-stamped. */
export function campaignOps(
  keys: GroupKeys,
  record: LeaderRecord,
  leaseId: string,
  members: readonly string[],
): IRequestOp[] {
  return [
    putOp(keys.leader, encodeLeader(record), leaseId),
    putOp(keys.epoch, String(record.epoch)),
    putOp(keys.isr, encodeIsr(record.epoch, members)),
    deleteOp(keys.handover),
  ];
}
