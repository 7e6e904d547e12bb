import type { IsrRecord, LeaderRecord, MemberRecord } from './keys.js';

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
  members: [members: ReadonlyMap<string, MemberRecord>];
  /** `op` says which call failed; nothing is thrown. */
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

export class HaNotLeaderError extends Error {
  readonly code = 'E_HA_NOT_LEADER';
  constructor(readonly op: string) {
    super(`${op}: this member is not the leader`);
    this.name = 'HaNotLeaderError';
  }
}
