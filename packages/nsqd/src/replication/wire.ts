/**
 * The replication stream's frames (docs/replication.md "Stream"): `[u32 size][u8 type][u32 header
 * size][header JSON][payload]`, size counting everything after itself. A batch frame is a FlushBatch
 * as plain data: its state values and record bytes are the payload, in header order.
 */
import { EncodedRecords, RECORD_HEADER_BYTES, type RecordSource } from '../log/record-codec.js';
import type { LogOp } from '../store/flush-batch.js';
import type { StateClear, StateOp } from '../store/state-store.js';

export const FrameType = {
  /** follower → leader, first: who it is and what it holds. */
  hello: 1,
  /** leader → follower: the stream goes on after `seq`. */
  welcome: 2,
  /** leader → follower: why it will not stream to it (then closes). */
  refuse: 3,
  batch: 4,
  /** follower → leader: everything up to `seq` is stored. */
  ack: 5,
  /**
   * leader → follower: a full copy of its data path at `position` starts (for a follower whose position it
   * lacks); then `copyFile` pieces, `copyState` pieces and `copyEnd`. Batches may come between them.
   */
  copyBegin: 6,
  /** leader → follower: `bytes` of one segment file at `offset`. */
  copyFile: 7,
  /** leader → follower: some of the leader's state keys. */
  copyState: 8,
  /** leader → follower: the copy is whole; every file's size, to check it. */
  copyEnd: 9,
} as const;

export type FrameKind = (typeof FrameType)[keyof typeof FrameType];

/** A member's place in the stream: the batches it stored, and the epoch of the last. */
export interface Position {
  readonly seq: number;
  readonly epoch: number;
}

/**
 * What every member of a group must agree on: segment files are written as the leader splits them
 * (--max-bytes-per-file), and a member reads back only records up to its own --max-msg-size.
 */
export interface GroupSettings {
  readonly max_bytes_per_file: number;
  readonly max_msg_size: number;
}

const SETTING_FLAGS: Readonly<Record<keyof GroupSettings, string>> = {
  max_bytes_per_file: '--max-bytes-per-file',
  max_msg_size: '--max-msg-size',
};

export function groupSettings(o: { readonly maxBytesPerFile: number; readonly maxMsgSize: number }): GroupSettings {
  return { max_bytes_per_file: o.maxBytesPerFile, max_msg_size: o.maxMsgSize };
}

/** Why a follower with `theirs` may not follow a leader with `ours`, or null when they agree. */
export function settingsMismatch(ours: GroupSettings, theirs: GroupSettings | undefined): string | null {
  if (theirs === undefined) return 'it sent no settings (an older nsq-ts): members must agree on them';
  const differ: string[] = [];
  for (const key of Object.keys(SETTING_FLAGS) as (keyof GroupSettings)[]) {
    if (theirs[key] !== ours[key]) differ.push(`${SETTING_FLAGS[key]}=${theirs[key]} (the leader has ${ours[key]})`);
  }
  return differ.length === 0 ? null : `settings differ from the leader's: ${differ.join(', ')}`;
}

export interface Hello {
  readonly member_id: string;
  /** The highest epoch the follower has seen: a leader below it is deposed. */
  readonly epoch: number;
  readonly position: Position;
  /** Absent from an older follower's hello. */
  readonly settings?: GroupSettings;
}

/** A batch as the follower receives it: what `writeBatch` needs but the logs. */
export interface WireBatch {
  readonly epoch: number;
  readonly seq: number;
  readonly sync: boolean;
  readonly clears: StateClear[];
  readonly intents: StateOp[];
  readonly state: StateOp[];
  readonly topics: { topic: string; ops: LogOp[]; records: RecordSource; deleteBelow: number }[];
}

interface OpHeader {
  readonly k: string;
  /** Value bytes in the payload; -1 for a delete. */
  readonly n: number;
}

interface BatchHeader {
  readonly epoch: number;
  readonly seq: number;
  readonly sync: boolean;
  readonly clears: StateClear[];
  readonly intents: OpHeader[];
  readonly state: OpHeader[];
  readonly topics: { topic: string; ops: LogOp[]; bytes: number; deleteBelow: number }[];
}

const PREFIX_BYTES = 9;

export function frame(type: FrameKind, header: unknown, payload: readonly Buffer[] = []): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  let size = PREFIX_BYTES - 4 + json.length;
  for (const p of payload) size += p.length;
  const out = Buffer.allocUnsafe(4 + size);
  out.writeUInt32BE(size, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32BE(json.length, 5);
  let pos = PREFIX_BYTES + json.copy(out, PREFIX_BYTES);
  for (const p of payload) pos += p.copy(out, pos);
  return out;
}

function opHeaders(ops: readonly StateOp[], payload: Buffer[]): OpHeader[] {
  return ops.map((op) => {
    if (op.type === 'del') return { k: op.key, n: -1 };
    payload.push(op.value);
    return { k: op.key, n: op.value.length };
  });
}

/** The records as the stream (and the segment files) hold them. */
export function recordBytes(records: RecordSource): Buffer {
  let bytes = 0;
  for (let i = 0; i < records.count; i++) bytes += RECORD_HEADER_BYTES + records.bodyLengthAt(i);
  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  for (let i = 0; i < records.count; i++) pos = records.encodeAt(i, out, pos);
  return out;
}

/** Encodes a batch before `writeBatch` runs (it consumes `clears` and `ops`). */
export function encodeBatch(
  at: Position,
  batch: {
    readonly sync: boolean;
    readonly clears: readonly StateClear[];
    readonly intents: readonly StateOp[];
    readonly state: readonly StateOp[];
    readonly topics: readonly {
      topic: string;
      ops: readonly LogOp[];
      records: RecordSource;
      deleteBelow: number;
    }[];
  },
): Buffer {
  const payload: Buffer[] = [];
  const intents = opHeaders(batch.intents, payload);
  const state = opHeaders(batch.state, payload);
  const topics = batch.topics.map((t) => {
    const bytes = recordBytes(t.records);
    payload.push(bytes);
    return { topic: t.topic, ops: [...t.ops], bytes: bytes.length, deleteBelow: t.deleteBelow };
  });
  const header: BatchHeader = {
    epoch: at.epoch,
    seq: at.seq,
    sync: batch.sync,
    clears: [...batch.clears],
    intents,
    state,
    topics,
  };
  return frame(FrameType.batch, header, payload);
}

/** Takes the payload's bytes in header order (views, not copies: a frame's buffer is never reused). */
function reader(payload: Buffer, what: string): (n: number) => Buffer {
  let pos = 0;
  return (n) => {
    if (pos + n > payload.length) throw new Error(`replication: ${what} payload shorter than its header`);
    const b = payload.subarray(pos, pos + n);
    pos += n;
    return b;
  };
}

export function decodeBatch(header: unknown, payload: Buffer): WireBatch {
  const h = header as BatchHeader;
  const take = reader(payload, 'batch');
  const ops = (list: readonly OpHeader[]): StateOp[] =>
    list.map((o) => (o.n < 0 ? { type: 'del', key: o.k } : { type: 'put', key: o.k, value: take(o.n) }));
  const intents = ops(h.intents);
  const state = ops(h.state);
  const topics = h.topics.map((t) => ({
    topic: t.topic,
    ops: t.ops,
    records: new EncodedRecords(take(t.bytes)),
    deleteBelow: t.deleteBelow,
  }));
  return { epoch: h.epoch, seq: h.seq, sync: h.sync, clears: h.clears, intents, state, topics };
}

/** Splits a byte stream into frames. A frame that comes in many chunks is joined once, when it is whole. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  /** Chunks of an incomplete frame after `buffered`, and their bytes. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The incomplete frame's whole length (prefix included), once its size is known. */
  private need = 0;

  constructor(
    private readonly onFrame: (type: number, header: unknown, payload: Buffer) => void,
    private readonly maxFrameBytes: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.need > 0 && this.buffered.length + this.pendingBytes + chunk.length < this.need) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      return;
    }
    if (this.pending.length > 0) {
      this.buffered = Buffer.concat([this.buffered, ...this.pending, chunk]);
      this.pending = [];
      this.pendingBytes = 0;
    } else this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.need = 0;
    while (this.buffered.length >= 4) {
      const size = this.buffered.readUInt32BE(0);
      if (size > this.maxFrameBytes || size < PREFIX_BYTES - 4) throw new Error(`replication: bad frame size ${size}`);
      if (this.buffered.length < 4 + size) {
        this.need = 4 + size;
        return;
      }
      const type = this.buffered.readUInt8(4);
      const jsonBytes = this.buffered.readUInt32BE(5);
      const headerEnd = PREFIX_BYTES + jsonBytes;
      if (headerEnd > 4 + size) throw new Error('replication: frame header overruns the frame');
      const header: unknown = JSON.parse(this.buffered.toString('utf8', PREFIX_BYTES, headerEnd));
      const payload = this.buffered.subarray(headerEnd, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      this.onFrame(type, header, payload);
    }
  }
}

/** The bytes of a full copy's frames: files go in pieces of this size, state keys in frames about this big. */
export const COPY_PIECE_BYTES = 1024 * 1024;

export interface CopyFile {
  /** Relative to the data path: `topics/<topic>/<file>`. */
  readonly path: string;
  readonly offset: number;
  readonly bytes: Buffer;
}

/** Only `topics/<name>/<file>`: a copied path can never point outside the data path. */
const COPIED_PATH = /^topics\/[.a-zA-Z0-9_#-]+\/[.a-zA-Z0-9_-]+$/;

function checkCopiedPath(path: string): string {
  if (!COPIED_PATH.test(path) || path.includes('..')) throw new Error(`replication: bad copied path ${path}`);
  return path;
}

export function encodeCopyFile(path: string, offset: number, bytes: Buffer): Buffer {
  return frame(FrameType.copyFile, { path, offset }, [bytes]);
}

export function decodeCopyFile(header: unknown, payload: Buffer): CopyFile {
  const h = header as { path: string; offset: number };
  if (!Number.isSafeInteger(h.offset) || h.offset < 0) throw new Error(`replication: bad copy offset ${h.offset}`);
  return { path: checkCopiedPath(h.path), offset: h.offset, bytes: payload };
}

export function encodeCopyState(entries: readonly { key: string; value: Buffer }[]): Buffer {
  const payload: Buffer[] = [];
  const state = opHeaders(
    entries.map((e) => ({ type: 'put', key: e.key, value: e.value })),
    payload,
  );
  return frame(FrameType.copyState, { state }, payload);
}

export function decodeCopyState(header: unknown, payload: Buffer): StateOp[] {
  const take = reader(payload, 'copied state');
  return (header as { state: OpHeader[] }).state.map((o) => ({ type: 'put', key: o.k, value: take(Math.max(0, o.n)) }));
}

/** The end of a full copy: the position it holds, and the size of every file it sent. */
export interface CopyEnd {
  readonly position: Position;
  readonly files: readonly { readonly path: string; readonly size: number }[];
}

export function decodeCopyEnd(header: unknown): CopyEnd {
  const h = header as CopyEnd;
  return { position: h.position, files: h.files.map((f) => ({ path: checkCopiedPath(f.path), size: f.size })) };
}
