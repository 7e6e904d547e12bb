import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import {
  CLOSE_WAIT_FRAME,
  type Command,
  type CommandDecoder,
  type CommandHandler,
  DeflateOutput,
  decodeIdentifyBody,
  deflateInput,
  ErrorCode,
  encodeErrorFrame,
  encodeFrame,
  encodeResponse,
  FRAME_HEADER_BYTES,
  FrameType,
  finCommand,
  goQuote,
  HEARTBEAT_FRAME,
  type IdentifyRequest,
  type IdentifyResponse,
  type InputFilter,
  isValidChannelName,
  isValidTopicName,
  MESSAGE_HEADER_BYTES,
  MESSAGE_ID_LENGTH,
  type MpubMessages,
  OK_FRAME,
  type OutputSink,
  ProtocolError,
  parseBase10,
  SnappyOutput,
  snappyInput,
  writeMessageHeaderRaw,
} from '@nsq-ts/protocol';
import { type AuthState, isAllowed, queryAnyAuthd } from '../auth/auth-client.js';
import type { Channel, Consumer } from '../channel.js';
import { wallMs } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ChannelMessage } from '../message.js';
import type { NsqdOptions } from '../options.js';
import type { Topic } from '../topic.js';
import type { TlsSettings } from '../transport/tls-options.js';
import { VERSION } from '../version.js';

/** Client states as numbered in /stats (nsq-spec §2.5). */
export const ClientState = { Init: 0, Subscribed: 3, Closing: 4 } as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

/** What a connection needs from the broker. */
export interface ClientHost {
  readonly options: NsqdOptions;
  readonly logger: Logger;
  /** Certificate and policy for `tls_v1` upgrades; null without --tls-cert/--tls-key. */
  readonly tls: TlsSettings | null;
  getTopic(name: string): Topic;
  /** Flush this client's buffered frames at the end of the current delivery pass. */
  markDirty(client: ClientV2): void;
  onClientClosed(client: ClientV2): void;
}

/** Input held while decoding waits (auth query, disk) before the socket stops being read. */
const MAX_PARKED_BYTES = 1024 * 1024;

/** Slab the output buffer writes frames into; flushed regions are handed to the socket. */
const SLAB_BYTES = 256 * 1024;
/**
 * A connection whose socket holds more unsent bytes than this stops getting messages and has
 * its input paused (no more commands, so no more responses) until it drains, so a client that
 * never reads cannot grow nsqd's memory without bound. If it stays above this for a heartbeat
 * interval, it is disconnected (nsqd's write deadline is the heartbeat interval).
 */
export const MAX_PENDING_WRITE_BYTES = 4 * 1024 * 1024;
const MAGIC = '  V2';
const NO_SLAB = Buffer.alloc(0);
/** Bodies above this go to the socket as they are instead of being copied into the slab. */
const COPY_LIMIT_BYTES = 8 * 1024;
/** nsqd gives the TLS handshake of an upgrade 5 s (nsq-spec §2.7). */
const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;
const EMPTY = Buffer.alloc(0);

/** What IDENTIFY negotiated, applied after its JSON reply has left in plaintext. */
interface Upgrade {
  tls: boolean;
  compression: 'snappy' | 'deflate' | null;
  deflateLevel: number;
}

function fatal(code: ErrorCode, description: string): ProtocolError {
  return new ProtocolError(code, description, true);
}

/**
 * One TCP connection speaking protocol V2: decodes commands, enforces NSQ's state rules and
 * error texts in NSQ's order of checks, and writes frames through a corked output slab.
 */
export class ClientV2 implements Consumer, CommandHandler {
  readonly id: number;
  readonly socket: Socket;
  readonly remoteAddress: string;
  readonly connectTs: number;
  state: ClientState = ClientState.Init;

  clientId: string;
  hostname: string;
  userAgent = '';
  heartbeatIntervalMs: number;
  outputBufferSize = 16 * 1024;
  outputBufferTimeoutMs: number;
  sampleRate = 0;
  msgTimeoutMs: number;

  channel: Channel | null = null;
  rdy = 0;
  inFlight = 0;
  messageCount = 0;
  finishCount = 0;
  requeueCount = 0;
  readonly pubCounts = new Map<string, number>();

  private magic = '';
  private closed = false;
  private backpressured = false;
  private corked = false;
  dirty = false;
  /** Allocated on the first delivery: a publisher or an idle connection never needs one. */
  private slab: Buffer = NO_SLAB;
  private slabStart = 0;
  private slabPos = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readTimer: NodeJS.Timeout | null = null;
  /** A command was decoded since the read deadline was last renewed (see `renewReadDeadline`). */
  private commandSeen = false;
  /** Armed while the output is over MAX_PENDING_WRITE_BYTES: the write deadline. */
  private writeTimer: NodeJS.Timeout | null = null;
  /** Input paused because the output is congested. */
  private inputPaused = false;

  private readonly host: ClientHost;
  private readonly options: NsqdOptions;
  private readonly decoder: CommandDecoder;

  // Transport layers (nsq-spec §2.7): a plain connection keeps `out` = the socket and never
  // touches the rest, so upgrades cost it nothing per message.
  /** Where frames go: the socket, the TLS socket, or a compression layer over either. */
  private out: OutputSink;
  tlsSocket: TLSSocket | null = null;
  snappy = false;
  deflate = false;
  private input: InputFilter | null = null;
  private upgrade: Upgrade | null = null;
  /** `--tls-required`: every command but IDENTIFY is refused until TLS is up. */
  private tlsGate: boolean;
  /** Decoding paused for an upgrade or an auth server query; input is parked meanwhile. */
  private waiting = false;
  /** Transport bytes received during an upgrade (they belong to the new layers). */
  private parkedRaw: Buffer[] = [];
  /** Plaintext received during an auth query or a wait for the disk. */
  private parkedPlain: Buffer[] = [];
  private parkedBytes = 0;
  /** Reading paused because parkedPlain is over MAX_PARKED_BYTES. */
  private parkFull = false;
  /** A publish waits for the disk: the read deadline does not apply meanwhile. */
  private pendingStore = false;
  /** Re-runs the command that waited for the auth server; false stops decoding. */
  private retry: (() => boolean) | null = null;
  authState: AuthState | null = null;
  private readonly onRawData = (chunk: Buffer): void => this.onData(chunk);

  constructor(id: number, socket: Socket, host: ClientHost, decoder: CommandDecoder) {
    this.id = id;
    this.socket = socket;
    this.host = host;
    this.options = host.options;
    this.decoder = decoder;
    this.out = socket;
    this.tlsGate = host.options.tlsRequired !== 'false';
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.clientId = socket.remoteAddress ?? '';
    this.hostname = this.clientId;
    this.connectTs = Math.floor(wallMs() / 1000);
    this.msgTimeoutMs = this.options.msgTimeoutMs;
    this.outputBufferTimeoutMs = this.options.outputBufferTimeoutMs;
    // Default heartbeat = client timeout (60 s) / 2, capped by --max-heartbeat-interval.
    this.heartbeatIntervalMs = 30_000;

    socket.setNoDelay(true);
    socket.on('data', this.onRawData);
    socket.on('drain', () => this.onDrain());
    socket.on('error', (err) => this.host.logger.debug(`CLIENT(${this.remoteAddress}): ${err.message}`));
    socket.on('close', () => this.onSocketClose());
    socket.on('end', () => this.onInputEnd());
  }

  // ---- Consumer (what the channel sees) ----

  canReceive(): boolean {
    return this.state === ClientState.Subscribed && this.inFlight < this.rdy && !this.backpressured && !this.closed;
  }

  /**
   * Writes a message frame into the output slab (small bodies are copied next to their header
   * so a pass of deliveries leaves in one write); large bodies go to the socket as they are.
   */
  deliver(msg: ChannelMessage): void {
    const record = msg.record;
    const length = record.length;
    const headerBytes = FRAME_HEADER_BYTES + MESSAGE_HEADER_BYTES;
    const frameBytes = headerBytes + length;
    this.inFlight++;
    this.messageCount++;
    this.cork();
    const large = frameBytes > this.outputBufferSize || frameBytes > COPY_LIMIT_BYTES;
    if (!large && this.slabPos - this.slabStart + frameBytes > this.outputBufferSize) this.flushSlab();
    this.ensureSlab(large ? headerBytes : frameBytes);
    const at = writeMessageHeaderRaw(
      this.slab,
      this.slabPos,
      length,
      record.publishedAtMs,
      msg.attempts,
      record.idHi,
      record.idLo,
    );
    if (large) {
      this.slabPos = at;
      this.flushSlab();
      this.out.write(record.body);
    } else {
      record.data.copy(this.slab, at, record.start, record.start + length);
      this.slabPos = at + length;
    }
    // Checked per message too, so one delivery pass cannot overshoot the cap by a whole RDY count.
    if (!this.backpressured && this.out.writableLength + this.slabPos - this.slabStart > MAX_PENDING_WRITE_BYTES) {
      this.congested();
    }
    if (!this.dirty) {
      this.dirty = true;
      this.host.markDirty(this);
    }
  }

  releaseInFlight(): void {
    if (this.inFlight > 0) this.inFlight--;
  }

  closeForChannelDelete(): void {
    this.channel = null;
    this.close();
  }

  // ---- output ----

  private cork(): void {
    if (!this.corked) {
      this.corked = true;
      this.out.cork();
    }
  }

  private ensureSlab(bytes: number): void {
    if (this.slabPos + bytes <= this.slab.length) return;
    this.flushSlab();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    this.slabStart = 0;
    this.slabPos = 0;
  }

  /** Hands the buffered region to the socket (still corked: it leaves at flush()). */
  private flushSlab(): void {
    if (this.slabPos > this.slabStart) {
      this.out.write(this.slab.subarray(this.slabStart, this.slabPos));
      this.slabStart = this.slabPos;
    }
  }

  private writeFrame(frame: Buffer): void {
    if (this.closed) return;
    this.cork();
    this.flushSlab();
    this.out.write(frame);
    if (!this.dirty) {
      this.dirty = true;
      this.host.markDirty(this);
    }
  }

  /** Sends everything buffered: one writev per flush thanks to cork/uncork. */
  flush(): void {
    this.dirty = false;
    if (this.closed) return;
    this.flushSlab();
    if (this.corked) {
      this.corked = false;
      this.out.uncork();
    }
    if (this.out.writableLength > MAX_PENDING_WRITE_BYTES && !this.backpressured) this.congested();
  }

  /** The output is over its cap: stop deliveries and input, and arm the write deadline. */
  private congested(): void {
    this.backpressured = true;
    if (!this.inputPaused) {
      this.inputPaused = true;
      this.socket.pause();
    }
    const deadline = this.heartbeatIntervalMs;
    if (deadline > 0 && this.writeTimer === null) {
      this.writeTimer = setTimeout(() => {
        this.writeTimer = null;
        if (this.closed || this.out.writableLength <= MAX_PENDING_WRITE_BYTES) return;
        this.host.logger.warn(
          `client(${this.remoteAddress}) write deadline exceeded: ${this.out.writableLength} bytes unsent for ${deadline} ms, closing`,
        );
        this.close();
        // It does not read, so nothing written can be flushed: drop it now.
        this.socket.destroy();
      }, deadline);
    }
  }

  private onDrain(): void {
    if (this.backpressured && this.out.writableLength <= MAX_PENDING_WRITE_BYTES) {
      this.backpressured = false;
      if (this.writeTimer !== null) clearTimeout(this.writeTimer);
      this.writeTimer = null;
      if (this.inputPaused) {
        this.inputPaused = false;
        if (!this.parkFull) this.socket.resume();
      }
      this.channel?.schedule();
    }
  }

  // ---- input ----

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.magic.length < MAGIC.length) {
      const need = MAGIC.length - this.magic.length;
      this.magic += chunk.toString('latin1', 0, need);
      if (this.magic.length < MAGIC.length) return;
      if (this.magic !== MAGIC) {
        this.host.logger.error(`client(${this.remoteAddress}) bad protocol magic '${this.magic}'`);
        this.sendFatal(new ProtocolError(ErrorCode.BadProtocol, ''));
        return;
      }
      chunk = chunk.subarray(need);
      // nsqd reads the magic without a deadline; heartbeats and the read deadline start after it.
      this.startTimers();
    }
    this.onPlain(chunk);
  }

  /** Plaintext command bytes, straight from the socket or out of the TLS/compression layers. */
  private onPlain(chunk: Buffer): void {
    if (this.closed) return;
    if (this.waiting) {
      this.parkedPlain.push(chunk);
      this.parkedBytes += chunk.length;
      // Input waiting for the auth server or the disk is bounded: stop reading the socket.
      if (this.parkedBytes > MAX_PARKED_BYTES && !this.parkFull) {
        this.parkFull = true;
        this.socket.pause();
      }
      return;
    }
    this.decoder.push(chunk, this);
    this.renewReadDeadline();
    if (this.upgrade !== null) this.startUpgrade();
    this.flush();
  }

  /** Set when the peer's end of stream arrived while a command waited (auth server, disk). */
  private inputEnded = false;

  /**
   * The peer finished sending (the listener is half-open, as Go's connections are): a command
   * it cut short gets the error nsqd's read of it fails with, then the connection closes, as
   * nsqd's read loop ends at EOF. Under TLS the TLS socket ends itself.
   */
  private onInputEnd(): void {
    if (this.closed || this.tlsSocket !== null) return;
    if (this.waiting || this.upgrade !== null) {
      this.inputEnded = true;
      return;
    }
    const err = this.decoder.eofError();
    if (err !== null) this.sendFatal(err);
    else this.close();
  }

  /** Bytes from the top transport (TLS socket or the socket) when a compression layer is on. */
  private onTransportData(chunk: Buffer): void {
    if (this.closed) return;
    if (this.upgrade !== null) this.parkedRaw.push(chunk);
    else if (this.input !== null) this.input.push(chunk);
    else this.onPlain(chunk);
  }

  onLineTooLong(): void {
    // bufio.Reader fails on a line over its 16 KiB buffer; nsqd drops the connection silently.
    this.host.logger.error(`client(${this.remoteAddress}) command line too long`);
    this.close();
  }

  onBodyCommandLine(cmd: Command): boolean {
    try {
      if (this.tlsGate && cmd.name !== 'IDENTIFY') this.refuseWithoutTls(cmd);
      this.checkBeforeBody(cmd);
      // MPUB is authorized before its body is read (nsq-spec §2.8).
      if (cmd.name === 'MPUB' && !this.authorize(cmd, 'publish', cmd.params[0] as string, '')) {
        this.retry = () => this.onBodyCommandLine(cmd);
        return false;
      }
      return true;
    } catch (err) {
      return this.fail(err);
    }
  }

  onCommand(cmd: Command): boolean {
    this.commandSeen = true;
    try {
      if (this.tlsGate && cmd.body === null && cmd.name !== 'IDENTIFY') this.refuseWithoutTls(cmd);
      this.exec(cmd);
      if (this.waiting) this.retry ??= () => this.onCommand(cmd);
      return !this.closed && !this.waiting && this.upgrade === null;
    } catch (err) {
      return this.fail(err);
    }
  }

  /**
   * `FIN <id>` straight from the input bytes (CommandHandler.onFin). Anything but a plain
   * successful FIN — TLS still required, not subscribed, an unknown or foreign ID — takes the
   * general path, which produces the error exactly as for any command; a failed lookup had no
   * effect, so running it again there is harmless.
   */
  onFin(buf: Buffer, at: number): boolean {
    const channel = this.channel;
    if (
      this.tlsGate ||
      channel === null ||
      (this.state !== ClientState.Subscribed && this.state !== ClientState.Closing) ||
      channel.finishAt(buf, at, this) !== null
    ) {
      return this.onCommand(finCommand(buf, at));
    }
    this.commandSeen = true;
    this.inFlight--;
    this.finishCount++;
    return !this.closed && this.upgrade === null;
  }

  private refuseWithoutTls(cmd: Command): void {
    throw fatal(ErrorCode.Invalid, `cannot ${cmd.name} in current state (TLS required)`);
  }

  // ---- AUTH enforcement ----

  /**
   * nsqd's CheckAuth: true when the command may go on; false when the cached authorizations
   * expired and the auth server is being asked again (the command is retried afterwards).
   */
  private authorize(cmd: Command, permission: 'subscribe' | 'publish', topic: string, channel: string): boolean {
    if (this.options.authHttpAddresses.length === 0) return true;
    const state = this.authState;
    if (state === null) throw fatal(ErrorCode.AuthFirst, `AUTH required before ${cmd.name}`);
    if (Date.now() >= state.expiresAtMs) {
      this.queryAuth(this.authSecret, (fresh) => {
        this.authState = fresh;
      });
      return false;
    }
    if (!isAllowed(state, permission, topic, channel)) {
      throw fatal(ErrorCode.Unauthorized, `AUTH failed for ${cmd.name} on ${goQuote(topic)} ${goQuote(channel)}`);
    }
    return true;
  }

  private authSecret = '';

  /** Asks the auth servers with decoding paused; `done` runs on success, then decoding resumes. */
  private queryAuth(secret: string, done: (state: AuthState) => void): void {
    this.waiting = true;
    const cn = this.tlsSocket?.getPeerCertificate()?.subject?.CN ?? '';
    queryAnyAuthd(
      {
        commonName: Array.isArray(cn) ? (cn[0] ?? '') : cn,
        remoteIp: this.socket.remoteAddress ?? '',
        secret,
        tls: this.tlsSocket !== null,
      },
      {
        addresses: this.options.authHttpAddresses,
        connectTimeoutMs: this.options.httpClientConnectTimeoutMs,
        requestTimeoutMs: this.options.httpClientRequestTimeoutMs,
      },
    ).then(
      (state) => {
        if (this.closed) return;
        try {
          done(state);
        } catch (err) {
          this.fail(err);
          return;
        }
        this.resume();
      },
      (err: unknown) => {
        if (this.closed) return;
        this.host.logger.warn(`PROTOCOL(V2): [${this.remoteAddress}] auth failed - ${(err as Error).message}`);
        this.sendFatal(fatal(ErrorCode.AuthFailed, 'AUTH failed'));
      },
    );
  }

  /**
   * nsqd sets its read deadline before each command: the whole command (line and body) must
   * arrive within it, so a client dribbling bytes cannot hold the connection (slowloris). Here
   * it is renewed once per input chunk that completed a command, not per command: the
   * renewal comes microseconds later than nsqd's, and a refresh() per FIN (timer list
   * re-insertion and a clock read) was ~5 % of the broker's busy time at 500k FIN/s.
   */
  private renewReadDeadline(): void {
    if (!this.commandSeen) return;
    this.commandSeen = false;
    this.readTimer?.refresh();
  }

  /** Continues decoding after an auth query: the waiting command first, then parked input. */
  private resume(): void {
    this.waiting = false;
    const retry = this.retry;
    this.retry = null;
    if (retry !== null && !retry()) {
      this.flush();
      if (this.closed || this.waiting) return;
    }
    this.decoder.push(EMPTY, this);
    this.renewReadDeadline();
    this.flush();
    while (!this.waiting && !this.closed && this.parkedPlain.length > 0) {
      const chunk = this.parkedPlain.shift() as Buffer;
      this.parkedBytes -= chunk.length;
      this.onPlain(chunk);
    }
    if (this.parkFull && this.parkedBytes <= MAX_PARKED_BYTES) {
      this.parkFull = false;
      if (!this.inputPaused) this.socket.resume();
    }
    if (this.inputEnded && !this.waiting && this.parkedPlain.length === 0) this.onInputEnd();
  }

  // ---- upgrades (nsq-spec §2.7: JSON in plaintext, TLS + OK, then compression + OK) ----

  private startUpgrade(): void {
    const upgrade = this.upgrade as Upgrade;
    // The JSON reply leaves in plaintext before anything changes.
    this.flush();
    const rest = this.decoder.takeRemainder();
    if (!upgrade.tls) {
      this.startCompression(upgrade, rest);
      return;
    }
    const settings = this.host.tls as TlsSettings;
    this.socket.off('data', this.onRawData);
    // Bytes the client sent after IDENTIFY are the start of its handshake: replay them first.
    const raw: Duplex = rest.length === 0 ? this.socket : prefixedStream(this.socket, rest);
    const tlsSocket = new TLSSocket(raw, {
      isServer: true,
      secureContext: settings.context,
      requestCert: settings.serverOptions.requestCert,
      rejectUnauthorized: settings.serverOptions.rejectUnauthorized,
    });
    const timer = setTimeout(() => this.upgradeFailed(new Error('TLS handshake timeout')), TLS_HANDSHAKE_TIMEOUT_MS);
    tlsSocket.on('error', (err) => {
      clearTimeout(timer);
      this.upgradeFailed(err);
    });
    tlsSocket.on('close', () => this.onSocketClose());
    tlsSocket.on('drain', () => this.onDrain());
    tlsSocket.on('data', (chunk: Buffer) => this.onTransportData(chunk));
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      if (this.closed) return;
      if (settings.requireCert && Object.keys(tlsSocket.getPeerCertificate()).length === 0) {
        this.upgradeFailed(new Error('client did not provide a certificate'));
        return;
      }
      this.tlsSocket = tlsSocket;
      this.tlsGate = false;
      this.out = tlsSocket;
      this.writeFrame(OK_FRAME);
      this.flush();
      this.startCompression(upgrade, EMPTY);
    });
  }

  /** Installs snappy or deflate (if negotiated) over the current transport, then resumes input. */
  private startCompression(upgrade: Upgrade, rest: Buffer): void {
    const transport = this.tlsSocket ?? this.socket;
    if (upgrade.compression !== null) {
      const onError = (err: Error): void => this.upgradeFailed(err);
      const onPlain = (data: Buffer): void => this.onPlain(data);
      if (upgrade.compression === 'snappy') {
        this.snappy = true;
        this.out = new SnappyOutput(transport);
        this.input = snappyInput(onPlain, onError);
      } else {
        this.deflate = true;
        this.out = new DeflateOutput(transport, upgrade.deflateLevel);
        this.input = deflateInput(onPlain, onError);
      }
      if (transport === this.socket) {
        this.socket.off('data', this.onRawData);
        this.socket.on('data', (chunk: Buffer) => this.onTransportData(chunk));
      }
      this.writeFrame(OK_FRAME);
      this.flush();
    }
    this.upgrade = null;
    const parked = this.parkedRaw;
    this.parkedRaw = [];
    const input = this.input;
    if (rest.length > 0) parked.unshift(rest);
    for (const chunk of parked) {
      if (input !== null) input.push(chunk);
      else this.onPlain(chunk);
    }
  }

  private upgradeFailed(err: Error): void {
    if (this.closed) return;
    this.host.logger.warn(`PROTOCOL(V2): [${this.remoteAddress}] IDENTIFY failed ${err.message}`);
    this.close();
    this.socket.destroy();
  }

  /** Sends an error frame; a fatal one closes the connection. Returns whether to go on. */
  private fail(err: unknown): boolean {
    if (!(err instanceof ProtocolError)) throw err;
    if (err.fatal) {
      this.sendFatal(err);
      return false;
    }
    this.writeFrame(encodeErrorFrame(err.code, err.description));
    return true;
  }

  private sendFatal(err: ProtocolError): void {
    this.host.logger.debug(`client(${this.remoteAddress}): fatal ${err.message}`);
    // E_BAD_PROTOCOL is sent bare, without a description (nsq-spec §2.1).
    this.writeFrame(
      err.description === '' ? encodeFrame(FrameType.Error, err.code) : encodeErrorFrame(err.code, err.description),
    );
    this.flush();
    this.close();
  }

  /** Checks NSQ makes before it reads a command's body (state, params, names, DPUB timeout). */
  private checkBeforeBody(cmd: Command): void {
    const p = cmd.params;
    switch (cmd.name) {
      case 'IDENTIFY':
        if (this.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot IDENTIFY in current state');
        return;
      case 'AUTH':
        if (this.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot AUTH in current state');
        if (p.length !== 0) throw fatal(ErrorCode.Invalid, 'AUTH invalid number of parameters');
        return;
      case 'PUB':
        if (p.length < 1) throw fatal(ErrorCode.Invalid, 'PUB insufficient number of parameters');
        if (!isValidTopicName(p[0] as string)) {
          throw fatal(ErrorCode.BadTopic, `PUB topic name ${goQuote(p[0] as string)} is not valid`);
        }
        return;
      case 'MPUB':
        if (p.length < 1) throw fatal(ErrorCode.Invalid, 'MPUB insufficient number of parameters');
        if (!isValidTopicName(p[0] as string)) {
          // NSQ repeats the code inside the description here (nsq-spec §2.6).
          throw fatal(ErrorCode.BadTopic, `E_BAD_TOPIC MPUB topic name ${goQuote(p[0] as string)} is not valid`);
        }
        // nsqd gets (creates) the topic before reading the body, so even a refused MPUB creates it.
        this.host.getTopic(p[0] as string);
        return;
      case 'DPUB': {
        if (p.length < 2) throw fatal(ErrorCode.Invalid, 'DPUB insufficient number of parameters');
        if (!isValidTopicName(p[0] as string)) {
          throw fatal(ErrorCode.BadTopic, `DPUB topic name ${goQuote(p[0] as string)} is not valid`);
        }
        const ms = parseBase10(p[1] as string);
        if (ms === null) throw fatal(ErrorCode.Invalid, `DPUB could not parse timeout ${p[1]}`);
        if (ms < 0 || ms > this.options.maxReqTimeoutMs) {
          throw fatal(ErrorCode.Invalid, `DPUB timeout ${ms} out of range 0-${this.options.maxReqTimeoutMs}`);
        }
        return;
      }
    }
  }

  private exec(cmd: Command): void {
    switch (cmd.name) {
      case 'FIN':
        this.fin(cmd.params);
        return;
      case 'RDY':
        this.rdyCommand(cmd.params);
        return;
      case 'REQ':
        this.req(cmd.params);
        return;
      case 'PUB':
        this.pub(cmd);
        return;
      case 'MPUB':
        this.mpub(cmd);
        return;
      case 'DPUB':
        this.dpub(cmd);
        return;
      case 'NOP':
        return;
      case 'TOUCH':
        this.touch(cmd.params);
        return;
      case 'SUB':
        this.sub(cmd.params);
        return;
      case 'CLS':
        this.cls();
        return;
      case 'IDENTIFY':
        this.identify(cmd);
        return;
      case 'AUTH':
        this.auth(cmd);
        return;
      default:
        throw fatal(ErrorCode.Invalid, `invalid command ${cmd.name}`);
    }
  }

  // ---- commands ----

  private identify(cmd: Command): void {
    const body = this.readBody(cmd, ErrorCode.BadBody, 'IDENTIFY', 'body', true);
    let request: IdentifyRequest;
    try {
      request = decodeIdentifyBody(body);
    } catch {
      throw fatal(ErrorCode.BadBody, 'IDENTIFY failed to decode JSON body');
    }
    const o = this.options;
    // Set even when absent: IDENTIFY overwrites the remote-address defaults (nsq-spec §2.7).
    this.clientId = request.client_id;
    this.hostname = request.hostname;
    this.userAgent = request.user_agent;

    // Same validations, same order, same texts as nsqd's clientV2.Identify.
    const hb = request.heartbeat_interval;
    let heartbeat = this.heartbeatIntervalMs;
    if (hb === -1) heartbeat = -1;
    else if (hb !== 0) {
      if (hb < 1000 || hb > o.maxHeartbeatIntervalMs) {
        throw fatal(ErrorCode.BadBody, `IDENTIFY heartbeat interval (${hb}) is invalid`);
      }
      heartbeat = hb;
    }
    const obt = request.output_buffer_timeout;
    let bufferTimeout = this.outputBufferTimeoutMs;
    if (obt === -1) bufferTimeout = 0;
    else if (obt !== 0) {
      if (obt < o.minOutputBufferTimeoutMs || obt > o.maxOutputBufferTimeoutMs) {
        throw fatal(ErrorCode.BadBody, `IDENTIFY output buffer timeout (${obt}) is invalid`);
      }
      bufferTimeout = obt;
    }
    const obs = request.output_buffer_size;
    let bufferSize = this.outputBufferSize;
    if (obs === -1) {
      bufferSize = 1;
      bufferTimeout = 0;
    } else if (obs !== 0) {
      if (obs < 64 || obs > o.maxOutputBufferSize) {
        throw fatal(ErrorCode.BadBody, `IDENTIFY output buffer size (${obs}) is invalid`);
      }
      bufferSize = obs;
    }
    if (request.sample_rate < 0 || request.sample_rate > 99) {
      throw fatal(ErrorCode.BadBody, `IDENTIFY sample rate (${request.sample_rate}) is invalid`);
    }
    const mt = request.msg_timeout;
    let msgTimeout = this.msgTimeoutMs;
    if (mt !== 0) {
      if (mt < 1000 || mt > o.maxMsgTimeoutMs)
        throw fatal(ErrorCode.BadBody, `IDENTIFY msg timeout (${mt}) is invalid`);
      msgTimeout = mt;
    }
    this.heartbeatIntervalMs = heartbeat;
    this.outputBufferTimeoutMs = bufferTimeout;
    this.outputBufferSize = bufferSize;
    this.sampleRate = request.sample_rate;
    this.msgTimeoutMs = msgTimeout;
    this.startTimers();

    if (!request.feature_negotiation) {
      this.writeFrame(OK_FRAME);
      return;
    }
    const tls = request.tls_v1 && this.host.tls !== null && this.tlsSocket === null;
    const deflate = request.deflate && o.deflate && !this.deflate && !this.snappy;
    const snappy = request.snappy && o.snappy && !this.deflate && !this.snappy;
    // The client's level counts only when deflate is negotiated; 6 is reported otherwise.
    let deflateLevel = 6;
    if (deflate && request.deflate_level > 0) deflateLevel = request.deflate_level;
    deflateLevel = Math.min(deflateLevel, o.maxDeflateLevel);
    if (deflate && snappy) {
      throw fatal(ErrorCode.IdentifyFailed, 'cannot enable both deflate and snappy compression');
    }
    const reply: IdentifyResponse = {
      max_rdy_count: o.maxRdyCount,
      version: VERSION,
      max_msg_timeout: o.maxMsgTimeoutMs,
      msg_timeout: this.msgTimeoutMs,
      tls_v1: tls,
      deflate,
      deflate_level: deflateLevel,
      max_deflate_level: o.maxDeflateLevel,
      snappy,
      sample_rate: this.sampleRate,
      auth_required: o.authHttpAddresses.length > 0,
      output_buffer_size: this.outputBufferSize,
      output_buffer_timeout: this.outputBufferTimeoutMs,
      max_msg_size: o.maxMsgSize,
      max_body_size: o.maxBodySize,
    };
    this.writeFrame(encodeResponse(Buffer.from(JSON.stringify(reply))));
    if (tls || deflate || snappy) {
      // Decoding stops after this command; onPlain() switches layers at this exact byte.
      this.upgrade = { tls, compression: snappy ? 'snappy' : deflate ? 'deflate' : null, deflateLevel };
    }
  }

  private auth(cmd: Command): void {
    const body = this.readBody(cmd, ErrorCode.BadBody, 'AUTH', 'body', true);
    if (this.authState !== null && this.authState.authorizations.length > 0) {
      throw fatal(ErrorCode.Invalid, 'AUTH already set');
    }
    if (this.options.authHttpAddresses.length === 0) throw fatal(ErrorCode.AuthDisabled, 'AUTH disabled');
    this.authSecret = body.toString('utf8');
    this.queryAuth(this.authSecret, (state) => {
      this.authState = state;
      if (state.authorizations.length === 0) {
        throw fatal(ErrorCode.Unauthorized, 'AUTH no authorizations found');
      }
      const reply = {
        identity: state.identity,
        identity_url: state.identityUrl,
        permission_count: state.authorizations.length,
      };
      this.writeFrame(encodeResponse(Buffer.from(JSON.stringify(reply))));
    });
    // Nothing to retry: the reply is written when the auth server answers.
    this.retry = () => true;
  }

  private sub(p: string[]): void {
    if (this.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot SUB in current state');
    if (this.heartbeatIntervalMs <= 0) throw fatal(ErrorCode.Invalid, 'cannot SUB with heartbeats disabled');
    if (p.length < 2) throw fatal(ErrorCode.Invalid, 'SUB insufficient number of parameters');
    const topicName = p[0] as string;
    const channelName = p[1] as string;
    if (!isValidTopicName(topicName)) {
      throw fatal(ErrorCode.BadTopic, `SUB topic name ${goQuote(topicName)} is not valid`);
    }
    if (!isValidChannelName(channelName)) {
      throw fatal(ErrorCode.BadChannel, `SUB channel name ${goQuote(channelName)} is not valid`);
    }
    const cmd: Command = { name: 'SUB', params: p, body: null, bodySize: -1, messages: null, error: null };
    if (!this.authorize(cmd, 'subscribe', topicName, channelName)) {
      return;
    }
    const channel = this.host.getTopic(topicName).getChannel(channelName);
    const max = this.options.maxChannelConsumers;
    if (max !== 0 && channel.consumers.length >= max) {
      throw fatal(ErrorCode.SubFailed, `SUB failed consumers for ${topicName}:${channelName} exceeds limit of ${max}`);
    }
    this.channel = channel;
    this.state = ClientState.Subscribed;
    channel.addConsumer(this);
    this.writeFrame(OK_FRAME);
  }

  private rdyCommand(p: string[]): void {
    if (this.state === ClientState.Closing) return; // ignored after CLS
    if (this.state !== ClientState.Subscribed) throw fatal(ErrorCode.Invalid, 'cannot RDY in current state');
    let count = 1;
    if (p.length > 0) {
      const parsed = parseBase10(p[0] as string);
      if (parsed === null) throw fatal(ErrorCode.Invalid, `RDY could not parse count ${p[0]}`);
      count = parsed;
    }
    if (count < 0 || count > this.options.maxRdyCount) {
      throw fatal(ErrorCode.Invalid, `RDY count ${count} out of range 0-${this.options.maxRdyCount}`);
    }
    this.rdy = count;
    this.channel?.schedule();
  }

  /** Shared checks of FIN, REQ and TOUCH; returns the message ID. */
  private checkMessageCommand(name: string, p: string[], params: number): string {
    if (this.state !== ClientState.Subscribed && this.state !== ClientState.Closing) {
      throw fatal(ErrorCode.Invalid, `cannot ${name} in current state`);
    }
    if (p.length < params) throw fatal(ErrorCode.Invalid, `${name} insufficient number of params`);
    const id = p[0] as string;
    if (id.length !== MESSAGE_ID_LENGTH) throw fatal(ErrorCode.Invalid, 'invalid message ID');
    return id;
  }

  private fin(p: string[]): void {
    const id = this.checkMessageCommand('FIN', p, 1);
    const err = (this.channel as Channel).finish(id, this);
    if (err !== null) throw new ProtocolError(ErrorCode.FinFailed, `FIN ${id} failed ${err}`, false);
    this.inFlight--;
    this.finishCount++;
  }

  private req(p: string[]): void {
    const id = this.checkMessageCommand('REQ', p, 2);
    const parsed = parseBase10(p[1] as string);
    if (parsed === null) throw fatal(ErrorCode.Invalid, `REQ could not parse timeout ${p[1]}`);
    // Clamped, not refused (nsq-spec §2.6).
    const delayMs = Math.max(0, Math.min(parsed, this.options.maxReqTimeoutMs));
    const err = (this.channel as Channel).requeue(id, this, delayMs);
    if (err !== null) throw new ProtocolError(ErrorCode.ReqFailed, `REQ ${id} failed ${err}`, false);
    this.inFlight--;
    this.requeueCount++;
  }

  private touch(p: string[]): void {
    const id = this.checkMessageCommand('TOUCH', p, 1);
    const err = (this.channel as Channel).touch(id, this);
    if (err !== null) throw new ProtocolError(ErrorCode.TouchFailed, `TOUCH ${id} failed ${err}`, false);
  }

  private cls(): void {
    if (this.state !== ClientState.Subscribed) throw fatal(ErrorCode.Invalid, 'cannot CLS in current state');
    this.state = ClientState.Closing;
    this.rdy = 0;
    this.writeFrame(CLOSE_WAIT_FRAME);
  }

  private pub(cmd: Command): void {
    const body = this.readBody(cmd, ErrorCode.BadMessage, 'PUB', 'message body', false);
    const topicName = cmd.params[0] as string;
    if (!this.authorize(cmd, 'publish', topicName, '')) return;
    const topic = this.host.getTopic(topicName);
    this.acknowledge(() => topic.publish(body), ErrorCode.PubFailed, 'PUB');
    this.countPublished(topicName, 1);
  }

  private dpub(cmd: Command): void {
    const body = this.readBody(cmd, ErrorCode.BadMessage, 'DPUB', 'message body', false);
    const topicName = cmd.params[0] as string;
    if (!this.authorize(cmd, 'publish', topicName, '')) return;
    const topic = this.host.getTopic(topicName);
    const deferMs = parseBase10(cmd.params[1] as string) as number;
    this.acknowledge(() => topic.publishDeferred(body, deferMs), ErrorCode.DpubFailed, 'DPUB');
    this.countPublished(topicName, 1);
  }

  private mpub(cmd: Command): void {
    // A bad count or message size, reported by the decoder at the byte nsqd reports it.
    if (cmd.error !== null) throw cmd.error;
    const body = this.readBody(cmd, ErrorCode.BadBody, 'MPUB', 'body', false);
    const { starts, lengths, count } = cmd.messages as MpubMessages;
    const topicName = cmd.params[0] as string;
    const topic = this.host.getTopic(topicName);
    this.acknowledge(() => topic.publishBatch(body, starts, lengths, count), ErrorCode.MpubFailed, 'MPUB');
    this.countPublished(topicName, count);
  }

  /**
   * Runs a publish and answers it: `OK` at once when the messages are safe in memory. When
   * they had to go to disk (--mem-queue-size reached, or 0), decoding pauses until the group
   * commit that stores them, so answers keep command order — NSQ answers a PUB only once its
   * message is queued. A failing disk is NSQ's fatal E_PUB_FAILED (nsq-spec §2.8).
   */
  private acknowledge(publish: () => Promise<void> | null, code: ErrorCode, name: string): void {
    let stored: Promise<void> | null;
    try {
      stored = publish();
    } catch (err) {
      throw fatal(code, `${name} failed ${(err as Error).message}`);
    }
    if (stored === null) {
      this.writeFrame(OK_FRAME);
      return;
    }
    this.waiting = true;
    this.pendingStore = true;
    // Nothing to re-run when decoding resumes: the command is done.
    this.retry = () => true;
    stored.then(
      () => {
        this.pendingStore = false;
        if (this.closed) return;
        this.readTimer?.refresh();
        this.writeFrame(OK_FRAME);
        this.resume();
      },
      (err: Error) => {
        if (!this.closed) this.sendFatal(fatal(code, `${name} failed ${err.message}`));
      },
    );
  }

  /**
   * The decoder already refused sizes <= 0 or over the limit (body null): produce NSQ's error
   * for them, in NSQ's order (IDENTIFY and AUTH test "too big" first).
   */
  private readBody(cmd: Command, code: ErrorCode, name: string, what: string, bigFirst: boolean): Buffer {
    if (cmd.body !== null) return cmd.body;
    const size = cmd.bodySize;
    const limit = this.decoder.bodyLimit(cmd.name);
    const tooBig = `${name} ${what === 'body' ? 'body' : 'message'} too big ${size} > ${limit}`;
    const invalid = `${name} invalid ${what} size ${size}`;
    if (bigFirst && size > limit) throw fatal(code, tooBig);
    if (size <= 0) throw fatal(code, invalid);
    throw fatal(code, tooBig);
  }

  private countPublished(topic: string, n: number): void {
    this.pubCounts.set(topic, (this.pubCounts.get(topic) ?? 0) + n);
  }

  // ---- timers and lifecycle ----

  /** Heartbeat ticker and read deadline (2 × interval), both off when heartbeats are disabled. */
  private startTimers(): void {
    this.stopTimers();
    const interval = this.heartbeatIntervalMs;
    if (interval <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      this.writeFrame(HEARTBEAT_FRAME);
      this.flush();
    }, interval);
    this.readTimer = setTimeout(() => {
      if (this.pendingStore) {
        // Its commands wait for the broker's disk, not for the client: not a silent client.
        this.readTimer?.refresh();
        return;
      }
      this.host.logger.info(`client(${this.remoteAddress}) read deadline exceeded, closing`);
      this.close();
    }, 2 * interval);
  }

  private stopTimers(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.readTimer !== null) clearTimeout(this.readTimer);
    if (this.writeTimer !== null) clearTimeout(this.writeTimer);
    this.heartbeatTimer = null;
    this.readTimer = null;
    this.writeTimer = null;
  }

  /** Drops the connection now (broker shutdown). */
  destroy(): void {
    this.tlsSocket?.destroy();
    this.socket.destroy();
  }

  /** Closes the connection after what was written is sent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.decoder.halt();
    this.stopTimers();
    this.input?.close();
    this.out.end();
    // A peer that does not read must not hold the socket open forever.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
    this.detach();
  }

  private onSocketClose(): void {
    if (this.detached) return;
    this.closed = true;
    this.decoder.halt();
    this.stopTimers();
    this.detach();
  }

  private detached = false;

  private detach(): void {
    this.detached = true;
    if (this.channel !== null) {
      const channel = this.channel;
      this.channel = null;
      channel.removeConsumer(this);
    }
    this.host.onClientClosed(this);
  }
}

/** A duplex that yields `prefix` first, then `socket`'s data; writes go to `socket`. */
function prefixedStream(socket: Socket, prefix: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  stream.push(prefix);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  return stream;
}
