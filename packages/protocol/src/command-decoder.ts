/**
 * Server-side streaming decoder of V2 commands (nsq-spec §2.2).
 *
 *   NAME[ param1[ param2 ...]][\r]\n                      every command
 *   [size: int32 BE][size bytes]                          IDENTIFY, AUTH, PUB, DPUB, MPUB only
 *
 * One accumulator and a cursor: complete commands are decoded straight out of the socket's
 * chunk; only a command split across chunks is carried over. A body is copied exactly once,
 * into a buffer of its own, so the broker can keep it without pinning socket chunks. Every
 * announced body size is checked against its limit before a byte of it is buffered.
 */

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

export interface Command {
  name: string;
  params: string[];
  /** The body of a body command once read; null for commands without a body or a rejected size. */
  body: Buffer | null;
  /** The announced body size, -1 for commands without one. */
  bodySize: number;
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
   * (always fatal) and decoding stops. Return false to stop decoding.
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
  return { name: 'FIN', params: [buf.toString('latin1', at, at + FIN_ID_BYTES)], body: null, bodySize: -1 };
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
}

const BODY_COMMANDS: ReadonlySet<string> = new Set(['PUB', 'MPUB', 'DPUB', 'IDENTIFY', 'AUTH']);

export function hasBody(name: string): boolean {
  return BODY_COMMANDS.has(name);
}

const State = { Line: 0, Size: 1, Body: 2, Halted: 3 } as const;
type State = (typeof State)[keyof typeof State];

export class CommandDecoder {
  private readonly maxMsgBytes: number;
  private readonly maxBodyBytes: number;
  /** Unconsumed input (a view of the last chunk, or a carried-over copy). */
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private state: State = State.Line;
  /** The body command whose size or body is being read. */
  private current: Command | null = null;
  private bodyFilled = 0;
  /** Set by stop(): the handler asked to pause; push() resumes. */
  private stopped = false;

  constructor(options: CommandDecoderOptions) {
    this.maxMsgBytes = options.maxMsgBytes;
    this.maxBodyBytes = options.maxBodyBytes;
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
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  /**
   * Removes and returns the bytes received but not decoded. Used at a protocol upgrade (TLS,
   * compression), where the rest of the stream belongs to the new layer.
   */
  takeRemainder(): Buffer {
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return rest;
  }

  /** Bytes held for a command split across chunks (bounded by the line and body limits). */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + this.bodyFilled;
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

  private compact(): void {
    if (this.pos >= this.buf.length) {
      this.buf = Buffer.alloc(0);
      this.pos = 0;
    }
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
      const cmd: Command = { name, params, body: null, bodySize: -1 };
      this.current = cmd;
      this.state = State.Size;
      if (!handler.onBodyCommandLine(cmd)) {
        this.stopped = true;
      }
      return true;
    }
    if (!handler.onCommand({ name, params, body: null, bodySize: -1 })) this.stopped = true;
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
    this.state = State.Body;
    this.bodyFilled = 0;
    const available = this.buf.length - this.pos;
    if (available >= size) {
      // The whole body is here: one copy into a buffer of its own.
      cmd.body = Buffer.allocUnsafe(size);
      this.buf.copy(cmd.body, 0, this.pos, this.pos + size);
      this.pos += size;
      this.bodyFilled = size;
    } else {
      // Allocated at its announced (already bounded) size, filled as chunks arrive.
      cmd.body = Buffer.allocUnsafe(size);
    }
    return true;
  }

  private decodeBody(handler: CommandHandler): boolean {
    const cmd = this.current as Command;
    const body = cmd.body as Buffer;
    if (this.bodyFilled < body.length) {
      const n = Math.min(body.length - this.bodyFilled, this.buf.length - this.pos);
      this.buf.copy(body, this.bodyFilled, this.pos, this.pos + n);
      this.bodyFilled += n;
      this.pos += n;
      if (this.bodyFilled < body.length) return false;
    }
    this.current = null;
    this.bodyFilled = 0;
    this.state = State.Line;
    if (!handler.onCommand(cmd)) this.stopped = true;
    return true;
  }
}
