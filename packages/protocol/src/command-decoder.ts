/**
 * Server-side streaming decoder of V2 commands (nsq-spec §2.2).
 *
 *   NAME[ param1[ param2 ...]][\r]\n                      every command
 *   [size: int32 BE][size bytes]                          IDENTIFY, AUTH, PUB, DPUB, MPUB only
 *
 * One accumulator and a cursor: complete commands are decoded straight out of the socket's
 * chunk; only a command split across chunks is carried over. A body is copied exactly once,
 * into a buffer of its own, so the broker can keep it without pinning socket chunks. Every
 * announced body size is checked against its limit before a byte of it is buffered, and a body
 * still coming in is held as the pieces that arrived (BodyPieces): what a connection holds is
 * what its client sent, never what it announced.
 *
 * MPUB is read as nsqd reads it (protocol_v2.go readMPUB): its size field is only validated;
 * the message count and each message's size and bytes then come from the stream itself, each
 * size checked as soon as its 4 bytes are in, so a framing error is reported at the byte nsqd
 * reports it. The size field therefore need not match the framing — nsqjs sends the sum of the
 * message bodies alone, and nsqd (and this decoder) take every message anyway:
 *
 *   MPUB <topic>\n [size: int32][count: int32] count × ([length: int32][length bytes])
 */

import { ErrorCode, ProtocolError } from './errors.js';

/**
 * nsqd reads lines through a 16 KiB bufio.Reader: a line of 16384 bytes or more without its
 * `\n` drops the connection.
 */
export const MAX_LINE_BYTES = 16 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;

/** Command names, so the frequent ones are shared strings rather than a new string per line. */
const NAMES: readonly string[] = [
  'FIN',
  'RDY',
  'REQ',
  'PUB',
  'NOP',
  'SUB',
  'CLS',
  'MPUB',
  'DPUB',
  'AUTH',
  'TOUCH',
  'IDENTIFY',
];

function commandName(buf: Buffer, start: number, end: number): string {
  const length = end - start;
  for (const known of NAMES) {
    if (known.length !== length) continue;
    let i = 0;
    while (i < length && buf[start + i] === known.charCodeAt(i)) i++;
    if (i === length) return known;
  }
  return buf.toString('latin1', start, end);
}
const SIZE_BYTES = 4;
const EMPTY = Buffer.alloc(0);
/**
 * A piece of input kept past its push is copied out of its chunk when it is under 1/CARRY_SHARE
 * of it, so a command cut short never pins a whole socket read (up to 64 KiB) for a few bytes.
 */
const CARRY_SHARE = 4;

/**
 * The memory `buf` keeps alive: its whole chunk for a view, its own bytes for a small buffer cut
 * from Node's shared pool.
 */
function retained(buf: Buffer): number {
  const whole = buf.buffer.byteLength;
  return whole === Buffer.poolSize && buf.length < Buffer.poolSize >>> 1 ? buf.length : whole;
}

/** `buf[from, to)` to keep: the view, or a copy when the view is a small part of `buf`. */
function keep(buf: Buffer, from: number, to: number): Buffer {
  return (to - from) * CARRY_SHARE < buf.length ? Buffer.from(buf.subarray(from, to)) : buf.subarray(from, to);
}

/** Small pieces of a body are gathered in blocks of this size (no object per dribbled byte). */
const BLOCK_BYTES = 4096;

/**
 * The part of a body that has arrived, joined by one copy once all of it is in. Announced sizes
 * are not allocated up front: a client announcing 5 MiB and stalling costs what it sent. A
 * large share of a chunk is kept as a view of it; anything smaller is copied into blocks, so
 * neither a socket read nor an object per piece is kept for a few bytes.
 */
class BodyPieces {
  private pieces: Buffer[] = [];
  private block: Buffer = EMPTY;
  private blockUsed = 0;
  length = 0;

  add(buf: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    this.length += n;
    if (n >= BLOCK_BYTES && n * CARRY_SHARE >= buf.length) {
      this.seal();
      this.pieces.push(buf.subarray(from, to));
      return;
    }
    while (from < to) {
      if (this.blockUsed === this.block.length) {
        this.seal();
        this.block = Buffer.allocUnsafe(BLOCK_BYTES);
      }
      const k = Math.min(to - from, this.block.length - this.blockUsed);
      buf.copy(this.block, this.blockUsed, from, from + k);
      this.blockUsed += k;
      from += k;
    }
  }

  /** Everything added, copied into `body` (of `length` bytes); empties the list. */
  take(body: Buffer): Buffer {
    this.seal();
    let at = 0;
    for (const piece of this.pieces) {
      piece.copy(body, at);
      at += piece.length;
    }
    this.clear();
    return body;
  }

  clear(): void {
    this.pieces = [];
    this.block = EMPTY;
    this.blockUsed = 0;
    this.length = 0;
  }

  private seal(): void {
    if (this.blockUsed > 0) this.pieces.push(this.block.subarray(0, this.blockUsed));
    this.block = EMPTY;
    this.blockUsed = 0;
  }

  get retainedBytes(): number {
    let n = this.block.length;
    for (const piece of this.pieces) n += retained(piece);
    return n;
  }
}

/** Where an MPUB's messages are in its `Command.body`. */
export interface MpubMessages {
  count: number;
  /** Offset in the body of each message's first byte. */
  readonly starts: number[];
  readonly lengths: number[];
}

export interface Command {
  name: string;
  params: string[];
  /**
   * The body of a body command once read; null for commands without a body, a rejected size or
   * an MPUB framing error. An MPUB's body is what followed its size field: the count, then each
   * message's length and bytes.
   */
  body: Buffer | null;
  /** The announced body size, -1 for commands without one. */
  bodySize: number;
  /**
   * MPUB: its messages' positions in `body`. The decoder reuses this object for the next MPUB:
   * it is valid during `onCommand` only.
   */
  messages: MpubMessages | null;
  /** MPUB: nsqd's (fatal) error for a bad count or message size, found as the bytes came in. */
  error: ProtocolError | null;
}

export interface CommandHandler {
  /**
   * A body command's line is complete; its body is not read yet. Return false to stop decoding
   * (e.g. after a fatal error for a bad topic, which NSQ reports before reading the body).
   */
  onBodyCommandLine(cmd: Command): boolean;
  /**
   * A complete command. For a body command whose announced size is <= 0 or over its limit,
   * `body` is null and `bodySize` holds the announced size: the handler reports the NSQ error
   * (always fatal) and decoding stops; so it does for an MPUB whose `error` is set. Return false
   * to stop decoding.
   */
  onCommand(cmd: Command): boolean;
  /** A line exceeded MAX_LINE_BYTES; the connection should be dropped without a frame. */
  onLineTooLong(): void;
  /**
   * Optional fast path for the commonest command, `FIN <16-byte id>`: the ID's bytes are
   * `buf[at, at + 16)`, valid only during the call, and no Command, params array or ID string
   * is made (at 500k FIN/s they were ~30 % of everything a broker allocated). A handler that
   * cannot take it there calls its own `onCommand` with `finCommand(buf, at)`.
   */
  onFin?(buf: Buffer, at: number): boolean;
}

function hasSpace(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === SPACE) return true;
  return false;
}

/** The general form of a FIN that reached `onFin`. */
export function finCommand(buf: Buffer, at: number): Command {
  return {
    name: 'FIN',
    params: [buf.toString('latin1', at, at + FIN_ID_BYTES)],
    body: null,
    bodySize: -1,
    messages: null,
    error: null,
  };
}

const FIN_ID_BYTES = 16;
/** `FIN` as bytes. */
const F = 0x46;
const I = 0x49;
const N = 0x4e;

export interface CommandDecoderOptions {
  /** Limit for PUB and DPUB bodies (`--max-msg-size`). */
  maxMsgBytes: number;
  /** Limit for IDENTIFY, AUTH and MPUB bodies (`--max-body-size`). */
  maxBodyBytes: number;
  /**
   * Where a complete body of `size` bytes is copied to (default `Buffer.allocUnsafe`): a broker
   * may carve a topic's bodies out of blocks of its own (`cmd` holds the name and params).
   */
  allocBody?: (cmd: Command, size: number) => Buffer;
}

function allocUnsafe(_cmd: Command, size: number): Buffer {
  return Buffer.allocUnsafe(size);
}

const BODY_COMMANDS: ReadonlySet<string> = new Set(['PUB', 'MPUB', 'DPUB', 'IDENTIFY', 'AUTH']);

export function hasBody(name: string): boolean {
  return BODY_COMMANDS.has(name);
}

const State = { Line: 0, Size: 1, Body: 2, Mpub: 3, Halted: 4 } as const;
type State = (typeof State)[keyof typeof State];

export class CommandDecoder {
  private readonly maxMsgBytes: number;
  private readonly maxBodyBytes: number;
  private readonly allocBody: (cmd: Command, size: number) => Buffer;
  /** Unconsumed input (a view of the last chunk, or a carried-over copy). */
  private buf: Buffer = EMPTY;
  private pos = 0;
  private state: State = State.Line;
  /** The body command whose size or body is being read. */
  private current: Command | null = null;
  /** What arrived of the body being read, when it did not come in one chunk. */
  private readonly body = new BodyPieces();
  /** Set by stop(): the handler asked to pause; push() resumes. */
  private stopped = false;

  // The MPUB being read (state Mpub). Its bytes after the size field are kept in `body` as they
  // are consumed and joined in one copy at the end, so `messages` points into one buffer.
  private readonly mpub: MpubMessages = { count: 0, starts: [], lengths: [] };
  /** False until the count is read. */
  private counted = false;
  /** Messages complete so far, and bytes still to come of the one being read. */
  private mpubIndex = 0;
  private mpubRemaining = 0;
  /** Sum of the message lengths announced so far (bounded by --max-body-size). */
  private mpubMessageBytes = 0;
  /** A count or length field split across chunks. */
  private readonly field = Buffer.alloc(SIZE_BYTES);
  private fieldFilled = 0;

  constructor(options: CommandDecoderOptions) {
    this.maxMsgBytes = options.maxMsgBytes;
    this.maxBodyBytes = options.maxBodyBytes;
    this.allocBody = options.allocBody ?? allocUnsafe;
  }

  /** The limit that applies to a body command. */
  bodyLimit(name: string): number {
    return name === 'PUB' || name === 'DPUB' ? this.maxMsgBytes : this.maxBodyBytes;
  }

  /**
   * Adds a chunk (may be empty, to resume after the handler returned false) and decodes as
   * many commands as possible.
   */
  push(chunk: Buffer, handler: CommandHandler): void {
    if (this.state === State.Halted) return;
    this.append(chunk);
    this.stopped = false;
    while (this.running()) {
      if (this.state === State.Line) {
        if (!this.decodeLine(handler)) break;
      } else if (this.state === State.Size) {
        if (!this.decodeSize(handler)) break;
      } else if (this.state === State.Mpub) {
        if (!this.decodeMpub(handler)) break;
      } else if (!this.decodeBody(handler)) {
        break;
      }
    }
    this.compact();
  }

  private running(): boolean {
    return !this.stopped && this.state !== State.Halted;
  }

  /** Stops decoding for good (after a fatal error or a close). */
  halt(): void {
    this.state = State.Halted;
    this.buf = EMPTY;
    this.pos = 0;
    this.current = null;
    this.body.clear();
    this.counted = false;
  }

  /**
   * The error nsqd sends when its read of a command hits the end of the stream here (the peer
   * half-closed in the middle of a body command); null between commands or within a line, where
   * nsqd just ends the connection.
   */
  eofError(): ProtocolError | null {
    const cmd = this.current;
    if (cmd === null || this.state === State.Halted || this.state === State.Line) return null;
    const name = cmd.name;
    const message = name === 'PUB' || name === 'DPUB';
    if (this.state === State.Size) {
      return message
        ? new ProtocolError(ErrorCode.BadMessage, `${name} failed to read message body size`, true)
        : new ProtocolError(ErrorCode.BadBody, `${name} failed to read body size`, true);
    }
    if (this.state === State.Body) {
      return message
        ? new ProtocolError(ErrorCode.BadMessage, `${name} failed to read message body`, true)
        : new ProtocolError(ErrorCode.BadBody, `${name} failed to read body`, true);
    }
    if (!this.counted) return new ProtocolError(ErrorCode.BadBody, 'MPUB failed to read message count', true);
    if (this.mpubRemaining > 0)
      return new ProtocolError(ErrorCode.BadMessage, 'MPUB failed to read message body', true);
    return new ProtocolError(ErrorCode.BadMessage, `MPUB failed to read message(${this.mpubIndex}) body size`, true);
  }

  /**
   * Removes and returns the bytes received but not decoded. Used at a protocol upgrade (TLS,
   * compression), where the rest of the stream belongs to the new layer.
   */
  takeRemainder(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = EMPTY;
    this.pos = 0;
    return rest;
  }

  /**
   * Bytes held for a command split across chunks: bounded by the line limit plus the body limit
   * (an MPUB: --max-body-size bytes of messages plus their count and lengths).
   */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + this.body.length;
  }

  /** The memory held for a command split across chunks, counting whole chunks its views keep alive. */
  get retainedBytes(): number {
    return (this.buf.length > 0 ? retained(this.buf) : 0) + this.body.retainedBytes;
  }

  private append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      // Only the tail of a split line or a split size field is carried over: small by construction.
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
      this.pos = 0;
    }
  }

  /** Between pushes only what is not decoded yet is held (see keep()). */
  private compact(): void {
    if (this.pos >= this.buf.length) this.buf = EMPTY;
    else this.buf = keep(this.buf, this.pos, this.buf.length);
    this.pos = 0;
  }

  private decodeLine(handler: CommandHandler): boolean {
    const buf = this.buf;
    const nl = buf.indexOf(LF, this.pos);
    if (nl < 0) {
      if (buf.length - this.pos >= MAX_LINE_BYTES) {
        this.halt();
        handler.onLineTooLong();
      }
      return false;
    }
    if (nl - this.pos >= MAX_LINE_BYTES) {
      this.halt();
      handler.onLineTooLong();
      return false;
    }
    let end = nl;
    if (end > this.pos && buf[end - 1] === CR) end--;
    const pos = this.pos;
    if (
      end - pos === 4 + FIN_ID_BYTES &&
      buf[pos] === F &&
      buf[pos + 1] === I &&
      buf[pos + 2] === N &&
      buf[pos + 3] === SPACE &&
      handler.onFin !== undefined &&
      !hasSpace(buf, pos + 4, end)
    ) {
      this.pos = nl + 1;
      if (!handler.onFin(buf, pos + 4)) this.stopped = true;
      return true;
    }
    // Split on single spaces straight from the bytes (no whole-line string), with the command
    // name interned. latin1 maps bytes 1:1 to chars, so names echoed in errors keep their bytes.
    let sp = this.pos;
    while (sp < end && buf[sp] !== SPACE) sp++;
    const name = commandName(buf, this.pos, sp);
    const params: string[] = [];
    if (sp < end) {
      let at = sp + 1;
      for (;;) {
        let next = at;
        while (next < end && buf[next] !== SPACE) next++;
        params.push(buf.toString('latin1', at, next));
        if (next >= end) break;
        at = next + 1;
      }
    }
    this.pos = nl + 1;
    if (BODY_COMMANDS.has(name)) {
      const cmd: Command = { name, params, body: null, bodySize: -1, messages: null, error: null };
      this.current = cmd;
      this.state = State.Size;
      if (!handler.onBodyCommandLine(cmd)) {
        this.stopped = true;
      }
      return true;
    }
    if (!handler.onCommand({ name, params, body: null, bodySize: -1, messages: null, error: null })) {
      this.stopped = true;
    }
    return true;
  }

  private decodeSize(handler: CommandHandler): boolean {
    if (this.buf.length - this.pos < SIZE_BYTES) return false;
    const cmd = this.current as Command;
    const size = this.buf.readInt32BE(this.pos);
    this.pos += SIZE_BYTES;
    cmd.bodySize = size;
    if (size <= 0 || size > this.bodyLimit(cmd.name)) {
      // Rejected before buffering anything; every such error is fatal.
      this.current = null;
      handler.onCommand(cmd);
      this.halt();
      return false;
    }
    if (cmd.name === 'MPUB') {
      this.state = State.Mpub;
      this.mpubIndex = 0;
      this.mpubRemaining = 0;
      this.mpubMessageBytes = 0;
      return true;
    }
    this.state = State.Body;
    if (this.buf.length - this.pos >= size) {
      // The whole body is here: one copy into a buffer of its own.
      cmd.body = this.allocBody(cmd, size);
      this.buf.copy(cmd.body, 0, this.pos, this.pos + size);
      this.pos += size;
    }
    return true;
  }

  private decodeBody(handler: CommandHandler): boolean {
    const cmd = this.current as Command;
    if (cmd.body === null) {
      const pieces = this.body;
      const n = Math.min(cmd.bodySize - pieces.length, this.buf.length - this.pos);
      pieces.add(this.buf, this.pos, this.pos + n);
      this.pos += n;
      if (pieces.length < cmd.bodySize) return false;
      cmd.body = pieces.take(this.allocBody(cmd, pieces.length));
    }
    this.current = null;
    this.state = State.Line;
    if (!handler.onCommand(cmd)) this.stopped = true;
    return true;
  }

  /**
   * Reads as much of an MPUB as the input holds: the count, then per message its length
   * (checked at once, in nsqd's order and with its texts) and its bytes. What was consumed is
   * kept in one piece at the end of the call.
   */
  private decodeMpub(handler: CommandHandler): boolean {
    const buf = this.buf;
    const end = buf.length;
    const mpub = this.mpub;
    let p = this.pos;
    /** Start of what this call consumed and has not copied into the batch yet. */
    let from = p;
    let done = false;
    for (;;) {
      if (this.mpubRemaining > 0) {
        const n = Math.min(this.mpubRemaining, end - p);
        p += n;
        this.mpubRemaining -= n;
        if (this.mpubRemaining > 0) break;
        if (++this.mpubIndex === mpub.count) {
          done = true;
          break;
        }
        continue;
      }
      let value: number;
      if (this.fieldFilled === 0 && end - p >= SIZE_BYTES) {
        value = buf.readInt32BE(p);
        p += SIZE_BYTES;
      } else {
        const n = Math.min(SIZE_BYTES - this.fieldFilled, end - p);
        buf.copy(this.field, this.fieldFilled, p, p + n);
        this.fieldFilled += n;
        p += n;
        if (this.fieldFilled < SIZE_BYTES) break;
        this.fieldFilled = 0;
        value = this.field.readInt32BE(0);
      }
      let error: ProtocolError | null;
      if (!this.counted) {
        error = this.startBatch(value);
        // startBatch kept the count: what is kept from here on starts after it.
        from = p;
      } else {
        error = this.addMessage(value, this.body.length + p - from);
      }
      if (error !== null) {
        const cmd = this.current as Command;
        this.current = null;
        cmd.error = error;
        handler.onCommand(cmd);
        this.halt();
        return false;
      }
    }
    if (this.counted) this.body.add(buf, from, p);
    this.pos = p;
    if (!done) return false;
    const cmd = this.current as Command;
    cmd.body = this.body.take(this.allocBody(cmd, this.body.length));
    cmd.messages = mpub;
    this.current = null;
    this.counted = false;
    this.state = State.Line;
    if (!handler.onCommand(cmd)) this.stopped = true;
    return true;
  }

  /** The count is in: checked as nsqd checks it (4 bytes of count, then at least 5 per message). */
  private startBatch(count: number): ProtocolError | null {
    if (count <= 0 || count > Math.floor((this.maxBodyBytes - SIZE_BYTES) / 5)) {
      return new ProtocolError(ErrorCode.BadBody, `MPUB invalid message count ${count}`, true);
    }
    this.mpub.count = count;
    this.mpub.starts.length = count;
    this.mpub.lengths.length = count;
    const field = Buffer.allocUnsafe(SIZE_BYTES);
    field.writeInt32BE(count, 0);
    this.body.add(field, 0, SIZE_BYTES);
    this.counted = true;
    return null;
  }

  /** Message `mpubIndex` announced `length` bytes, to start at `at` in the batch. */
  private addMessage(length: number, at: number): ProtocolError | null {
    const i = this.mpubIndex;
    if (length <= 0) {
      return new ProtocolError(ErrorCode.BadMessage, `MPUB invalid message(${i}) body size ${length}`, true);
    }
    if (length > this.maxMsgBytes) {
      return new ProtocolError(ErrorCode.BadMessage, `MPUB message too big ${length} > ${this.maxMsgBytes}`, true);
    }
    // nsqd has no such bound (it buffers count × --max-msg-size); here the messages of one MPUB
    // may not add up to more than --max-body-size.
    const total = this.mpubMessageBytes + length;
    if (total > this.maxBodyBytes) {
      return new ProtocolError(ErrorCode.BadBody, `MPUB body too big ${total} > ${this.maxBodyBytes}`, true);
    }
    this.mpubMessageBytes = total;
    this.mpub.starts[i] = at;
    this.mpub.lengths[i] = length;
    this.mpubRemaining = length;
    return null;
  }
}
