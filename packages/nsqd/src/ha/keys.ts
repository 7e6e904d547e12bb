/**
 * The etcd key layout of one replica group, and the JSON values under it.
 *
 * ```
 * /nsq-ts/ha/<group>/members/<memberId>  lease: the member's own   {"member_id","replication_address",
 *                                                                   "tcp_address","http_address",
 *                                                                   "broadcast_address"}
 * /nsq-ts/ha/<group>/leader              lease: the leader's term   the member's fields + "epoch"
 * /nsq-ts/ha/<group>/epoch               no lease                   "7" — the last epoch ever elected
 * /nsq-ts/ha/<group>/isr                 no lease                   {"epoch":7,"members":["a","b"]}
 * /nsq-ts/ha/<group>/handover            no lease, optional         {"epoch":7,"member_id":"b"}
 * ```
 *
 * What writes each key and when: docs/replication.md ("Keys").
 *
 * Values are snake_case JSON, like NSQ's own HTTP API, so `etcdctl get --prefix /nsq-ts/ha/`
 * reads naturally; they are mapped to camelCase here and nowhere else.
 */
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3';

export const DEFAULT_KEY_PREFIX = '/nsq-ts/ha/';

/** The addresses a member announces: where followers, clients and HTTP callers reach it. */
export interface MemberAddresses {
  /** host:port of its replication listener (an nsq-ts extension). */
  readonly replicationAddress: string;
  /** host:port of its NSQ TCP listener (open only while it leads). */
  readonly tcpAddress: string;
  readonly httpAddress: string;
  /** The address it registers with nsqlookupd as (NSQ's --broadcast-address). */
  readonly broadcastAddress: string;
}

export interface MemberRecord extends MemberAddresses {
  readonly memberId: string;
}

export interface LeaderRecord extends MemberRecord {
  readonly epoch: number;
}

export interface IsrRecord {
  /** The epoch of the term that wrote this value. */
  readonly epoch: number;
  readonly members: readonly string[];
  /** The etcd mod revision of this value (0 when the key does not exist). */
  readonly revision: number;
}

export interface HandoverRecord {
  /** The epoch of the leader that resigned in favour of `memberId`. */
  readonly epoch: number;
  readonly memberId: string;
}

/** Group names and member ids become key segments: keep them to one path segment of plain text. */
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkName(what: string, name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`invalid ${what} ${JSON.stringify(name)}: 1-64 of [A-Za-z0-9_.-]`);
}

export class GroupKeys {
  readonly prefix: string;
  readonly membersPrefix: string;
  readonly leader: string;
  readonly epoch: string;
  readonly isr: string;
  readonly handover: string;

  constructor(group: string, keyPrefix: string = DEFAULT_KEY_PREFIX) {
    checkName('group', group);
    this.prefix = `${keyPrefix.endsWith('/') ? keyPrefix : `${keyPrefix}/`}${group}/`;
    this.membersPrefix = `${this.prefix}members/`;
    this.leader = `${this.prefix}leader`;
    this.epoch = `${this.prefix}epoch`;
    this.isr = `${this.prefix}isr`;
    this.handover = `${this.prefix}handover`;
  }

  member(memberId: string): string {
    return `${this.membersPrefix}${memberId}`;
  }

  /** The member id of a `members/<id>` key, or null for any other key. */
  memberIdOf(key: string): string | null {
    return key.startsWith(this.membersPrefix) ? key.slice(this.membersPrefix.length) : null;
  }
}

/** The exclusive end of a prefix range, as etcd's range_end wants it (the prefix with its last byte + 1). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  return end;
}

// ---- compares ----

/** The key does not exist (etcd's "create revision 0"). */
export function absent(key: string): ICompare {
  return { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 };
}

/** The key was last modified at `revision` (0: it does not exist). */
export function modifiedAt(key: string, revision: number): ICompare {
  return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: revision };
}

/** The leader key is still the one created at `termRevision`: the term is still ours. */
export function leaderGuard(keys: GroupKeys, termRevision: number): ICompare {
  return { key: Buffer.from(keys.leader), target: 'Create', result: 'Equal', create_revision: termRevision };
}

// ---- requests ----

/** etcd's revisions arrive as decimal strings. */
export function rev(value: string | number): number {
  return Number(value);
}

export function putOp(key: string, value: string, lease?: string): IRequestOp {
  return {
    request_put: { key: Buffer.from(key), value: Buffer.from(value), ...(lease === undefined ? {} : { lease }) },
  };
}

export function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

/** A key/value as a transaction's own answer implies it (etcd does not echo puts back). */
export function impliedKv(key: string, value: string, modRevision: number, createRevision: number): IKeyValue {
  return {
    key: Buffer.from(key),
    value: Buffer.from(value),
    mod_revision: String(modRevision),
    create_revision: String(createRevision),
    version: '0',
    lease: '0',
  };
}

// ---- values ----

export function encodeMember(m: MemberRecord): string {
  return JSON.stringify(memberJson(m));
}

export function encodeLeader(l: LeaderRecord): string {
  return JSON.stringify({ ...memberJson(l), epoch: l.epoch });
}

export function encodeIsr(epoch: number, members: readonly string[]): string {
  return JSON.stringify({ epoch, members });
}

export function encodeHandover(h: HandoverRecord): string {
  return JSON.stringify({ epoch: h.epoch, member_id: h.memberId });
}

function memberJson(m: MemberRecord): Record<string, string> {
  return {
    member_id: m.memberId,
    replication_address: m.replicationAddress,
    tcp_address: m.tcpAddress,
    http_address: m.httpAddress,
    broadcast_address: m.broadcastAddress,
  };
}

/** A value that is not what this layout says (written by something else): reported, not trusted. */
export class HaValueError extends Error {
  constructor(key: string, why: string) {
    super(`unexpected value at ${key}: ${why}`);
    this.name = 'HaValueError';
  }
}

function parseObject(key: string, raw: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HaValueError(key, 'not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HaValueError(key, 'not a JSON object');
  return v as Record<string, unknown>;
}

function str(key: string, o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (typeof v !== 'string') throw new HaValueError(key, `"${field}" is not a string`);
  return v;
}

function epochOf(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new HaValueError(key, 'bad epoch');
  return v;
}

export function decodeMember(key: string, raw: Buffer): MemberRecord {
  const o = parseObject(key, raw);
  return {
    memberId: str(key, o, 'member_id'),
    replicationAddress: str(key, o, 'replication_address'),
    tcpAddress: str(key, o, 'tcp_address'),
    httpAddress: str(key, o, 'http_address'),
    broadcastAddress: str(key, o, 'broadcast_address'),
  };
}

export function decodeLeader(key: string, raw: Buffer): LeaderRecord {
  const o = parseObject(key, raw);
  return { ...decodeMember(key, raw), epoch: epochOf(key, o.epoch) };
}

export function decodeEpoch(key: string, raw: Buffer): number {
  const text = raw.toString('utf8');
  if (!/^[1-9][0-9]*$/.test(text)) throw new HaValueError(key, 'not a positive integer');
  return epochOf(key, Number(text));
}

export function decodeIsr(key: string, raw: Buffer, revision: number): IsrRecord {
  const o = parseObject(key, raw);
  const members = o.members;
  if (!Array.isArray(members) || !members.every((m) => typeof m === 'string')) {
    throw new HaValueError(key, '"members" is not a list of strings');
  }
  return { epoch: epochOf(key, o.epoch), members: members as string[], revision };
}

export function decodeHandover(key: string, raw: Buffer): HandoverRecord {
  const o = parseObject(key, raw);
  return { epoch: epochOf(key, o.epoch), memberId: str(key, o, 'member_id') };
}
