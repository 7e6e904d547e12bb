import type { Socket } from 'node:net';
import {
  type CommandDecoder,
  type CommandHandler,
  ErrorCode,
  encodeErrorFrame,
  encodeFrame,
  FrameType,
  HEARTBEAT_FRAME,
  type IdentifyRequest,
  OK_FRAME,
  type OutputSink,
  ProtocolError,
} from '@nsq-ts/protocol';
import type { AuthState } from '../auth/auth-client.js';
import { AuthSession } from '../auth/auth-session.js';
import type { Channel, Consumer } from '../channel.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ChannelMessage } from '../message.js';
import type { NsqdOptions } from '../options.js';
import type { Topic } from '../topic.js';
import type { TlsSettings } from '../transport/tls-options.js';
import { FrameWriter, type FrameWriterEvents } from './frame-writer.js';
import type { TransportPool } from './offload/transport-pool.js';
import { type AnswerOwner, StoreAnswers } from './store-answers.js';
import { type TlsState, Transport, type TransportEvents } from './transport.js';

/** Client states as numbered in /stats (nsq-spec §2.5). */
export const ClientState = { Init: 0, Subscribed: 3, Closing: 4 } as const;
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

export interface ClientHost {
  readonly options: NsqdOptions;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Certificate and policy for `tls_v1` upgrades; null without --tls-cert/--tls-key. */
  readonly tls: TlsSettings | null;
  /** Threads for TLS and compression layers (--transport-workers); null: they run inline. */
  readonly transportPool: TransportPool | null;
  getTopic(name: string): Topic;
  /** Flush this writer's buffered frames at the end of the current delivery pass. */
  markDirty(writer: FrameWriter): void;
  onClientClosed(client: ClientV2): void;
}

export type ProtocolFactory = (client: ClientV2) => CommandHandler;

/** Input held while decoding waits (auth query, disk) before the socket stops being read. */
const MAX_PARKED_BYTES = 1024 * 1024;
const MAGIC = '  V2';
const EMPTY = Buffer.alloc(0);

/** One protocol V2 connection; its own writer and transport event sink, so no closures per connection. */
export class ClientV2 implements Consumer, FrameWriterEvents, TransportEvents, AnswerOwner {
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
  /** `--tls-required`: every command but IDENTIFY is refused until TLS is up. */
  tlsGate: boolean;

  channel: Channel | null = null;
  rdy = 0;
  inFlight = 0;
  messageCount = 0;
  finishCount = 0;
  requeueCount = 0;
  private messagesAtHeartbeat = 0;
  readonly pubCounts = new Map<string, number>();

  readonly host: ClientHost;
  readonly decoder: CommandDecoder;
  readonly writer: FrameWriter;
  readonly transport: Transport;
  readonly auth: AuthSession;
  /** Publishes waiting for the disk or the replicas: their answers, in command order. */
  readonly answers: StoreAnswers = new StoreAnswers(this);
  private readonly handler: CommandHandler;

  /** A command was decoded since the read deadline was last renewed. */
  commandSeen = false;
  private magic = '';
  private isClosed = false;
  private detached = false;
  private heartbeatTimer: TimerHandle | null = null;
  private readTimer: TimerHandle | null = null;
  /** Destroys a closed socket whose peer does not read; cleared once it is gone, so it keeps nothing alive. */
  private destroyTimer: TimerHandle | null = null;
  private inputPaused = false;
  /** Decoding paused for an auth server query or the disk; input is parked meanwhile. */
  private waiting = false;
  private parkedPlain: Buffer[] = [];
  private parked = 0;
  private parkFull = false;
  /** Decoding waits for answers: until none is left ('empty') or there is room for another publish. */
  private answerWait: 'empty' | 'room' | null = null;
  private retry: (() => boolean) | null = null;
  /** Set when the peer's end of stream arrived while a command waited (auth server, disk). */
  private inputEnded = false;

  constructor(id: number, socket: Socket, host: ClientHost, decoder: CommandDecoder, protocol: ProtocolFactory) {
    const o = host.options;
    this.id = id;
    this.socket = socket;
    this.host = host;
    this.decoder = decoder;
    this.tlsGate = o.tlsRequired !== 'false';
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.clientId = socket.remoteAddress ?? '';
    this.hostname = this.clientId;
    this.connectTs = Math.floor(host.clock.wallMs() / 1000);
    this.msgTimeoutMs = o.msgTimeoutMs;
    this.outputBufferTimeoutMs = o.outputBufferTimeoutMs;
    // Default heartbeat = client timeout (60 s) / 2, capped by --max-heartbeat-interval.
    this.heartbeatIntervalMs = 30_000;
    this.auth = new AuthSession(o, host.clock);
    this.writer = new FrameWriter(socket, host.clock, this, this.heartbeatIntervalMs);
    this.transport = new Transport(socket, host.tls, host.clock, this, host.transportPool);
    this.handler = protocol(this);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get authState(): AuthState | null {
    return this.auth.state;
  }

  get tlsSocket(): TlsState | null {
    return this.transport.tlsSocket;
  }

  get snappy(): boolean {
    return this.transport.snappy;
  }

  get deflate(): boolean {
    return this.transport.deflate;
  }

  get parkedBytes(): number {
    return this.parked;
  }

  canReceive(): boolean {
    return (
      this.state === ClientState.Subscribed && this.inFlight < this.rdy && !this.writer.congested && !this.isClosed
    );
  }

  deliver(msg: ChannelMessage): void {
    this.inFlight++;
    this.messageCount++;
    this.writer.writeMessage(msg.record, msg.attempts, this.outputBufferSize);
  }

  releaseInFlight(): void {
    if (this.inFlight > 0) this.inFlight--;
  }

  closeForChannelDelete(): void {
    this.channel = null;
    this.close();
  }

  /** A FIN succeeded: the one place it is counted, for the fast path and the general one. */
  finished(): void {
    this.inFlight--;
    this.finishCount++;
  }

  requeued(): void {
    this.inFlight--;
    this.requeueCount++;
  }

  published(topic: string, count: number): void {
    this.pubCounts.set(topic, (this.pubCounts.get(topic) ?? 0) + count);
  }

  /** nsqd's clientV2.Identify, in its order; returns the first invalid setting's error text. */
  identify(request: IdentifyRequest): string | null {
    const o = this.host.options;
    // Set even when absent: IDENTIFY overwrites the remote-address defaults (nsq-spec §2.7).
    this.clientId = request.client_id;
    this.hostname = request.hostname;
    this.userAgent = request.user_agent;

    const hb = request.heartbeat_interval;
    let heartbeat = this.heartbeatIntervalMs;
    if (hb === -1) heartbeat = -1;
    else if (hb !== 0) {
      if (hb < 1000 || hb > o.maxHeartbeatIntervalMs) return `heartbeat interval (${hb}) is invalid`;
      heartbeat = hb;
    }
    const obt = request.output_buffer_timeout;
    let bufferTimeout = this.outputBufferTimeoutMs;
    if (obt === -1) bufferTimeout = 0;
    else if (obt !== 0) {
      if (obt < o.minOutputBufferTimeoutMs || obt > o.maxOutputBufferTimeoutMs) {
        return `output buffer timeout (${obt}) is invalid`;
      }
      bufferTimeout = obt;
    }
    const obs = request.output_buffer_size;
    let bufferSize = this.outputBufferSize;
    if (obs === -1) {
      bufferSize = 1;
      bufferTimeout = 0;
    } else if (obs !== 0) {
      if (obs < 64 || obs > o.maxOutputBufferSize) return `output buffer size (${obs}) is invalid`;
      bufferSize = obs;
    }
    if (request.sample_rate < 0 || request.sample_rate > 99) {
      return `sample rate (${request.sample_rate}) is invalid`;
    }
    const mt = request.msg_timeout;
    let msgTimeout = this.msgTimeoutMs;
    if (mt !== 0) {
      if (mt < 1000 || mt > o.maxMsgTimeoutMs) return `msg timeout (${mt}) is invalid`;
      msgTimeout = mt;
    }
    this.heartbeatIntervalMs = heartbeat;
    this.outputBufferTimeoutMs = bufferTimeout;
    this.outputBufferSize = bufferSize;
    this.sampleRate = request.sample_rate;
    this.msgTimeoutMs = msgTimeout;
    this.startTimers();
    return null;
  }

  writeFrame(frame: Buffer): void {
    this.writer.writeFrame(frame);
  }

  flush(): void {
    this.writer.flush();
  }

  onDirty(writer: FrameWriter): void {
    this.host.markDirty(writer);
  }

  onCongested(): void {
    if (!this.inputPaused) {
      this.inputPaused = true;
      this.transport.pauseInput();
    }
  }

  onDrained(): void {
    if (this.inputPaused) {
      this.inputPaused = false;
      if (!this.parkFull) this.transport.resumeInput();
    }
    this.channel?.schedule();
  }

  onWriteDeadline(unsentBytes: number, deadlineMs: number): void {
    this.host.logger.warn(
      `client(${this.remoteAddress}) write deadline exceeded: ${unsentBytes} bytes unsent for ${deadlineMs} ms, closing`,
    );
    this.close();
    // It does not read, so nothing written can be flushed: drop it now.
    this.socket.destroy();
  }

  /** A TLS or compression layer is in place: its OK is the first frame through it. */
  onLayer(out: OutputSink): void {
    this.writer.setSink(out);
    if (this.transport.tlsSocket !== null) this.tlsGate = false;
    this.writer.writeFrame(OK_FRAME);
    this.writer.flush();
  }

  onUpgradeFailed(err: Error): void {
    if (this.isClosed) return;
    this.host.logger.warn(`PROTOCOL(V2): [${this.remoteAddress}] IDENTIFY failed ${err.message}`);
    this.close();
    this.socket.destroy();
  }

  sendFatal(err: ProtocolError): void {
    this.host.logger.debug(`client(${this.remoteAddress}): fatal ${err.message}`);
    // E_BAD_PROTOCOL is sent bare, without a description (nsq-spec §2.1).
    this.writer.writeFrame(
      err.description === '' ? encodeFrame(FrameType.Error, err.code) : encodeErrorFrame(err.code, err.description),
    );
    this.writer.flush();
    this.close();
  }

  onDrain(): void {
    this.writer.drained();
  }

  onSocketError(err: Error): void {
    this.host.logger.debug(`CLIENT(${this.remoteAddress}): ${err.message}`);
  }

  /** Plaintext command bytes: from the socket, or out of the TLS and compression layers. */
  onPlain(chunk: Buffer): void {
    if (this.isClosed) return;
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
    this.decode(chunk);
  }

  private decode(chunk: Buffer): void {
    if (this.isClosed) return;
    if (this.waiting) {
      this.parkedPlain.push(chunk);
      this.parked += chunk.length;
      // Input waiting for the auth server or the disk is bounded: stop reading the socket.
      if (this.parked > MAX_PARKED_BYTES && !this.parkFull) {
        this.parkFull = true;
        this.transport.pauseInput();
      }
      return;
    }
    this.decoder.push(chunk, this.handler);
    this.renewReadDeadline();
    if (this.transport.pending !== null) this.startUpgrade();
    this.writer.flush();
  }

  get decoding(): boolean {
    return !this.isClosed && !this.waiting && this.transport.pending === null;
  }

  /** Stops decoding until resume(). `retry` re-runs what waited (false: stop again); the first counts. */
  suspend(retry: (() => boolean) | null): void {
    this.waiting = true;
    this.retry ??= retry;
  }

  /** Stops decoding until every answer is written (`untilEmpty`) or another publish may wait; see suspend(). */
  waitForAnswers(untilEmpty: boolean, retry: (() => boolean) | null): void {
    this.suspend(retry);
    this.answerWait = untilEmpty ? 'empty' : 'room';
  }

  /** Answers at the head of `answers` were written: out they go, and decoding goes on if it waited for them. */
  answersWritten(): void {
    if (this.isClosed) return;
    this.readTimer?.refresh();
    const wait = this.answerWait;
    if (wait !== null && (!this.answers.pending || (wait === 'room' && !this.answers.full))) {
      this.answerWait = null;
      this.resume();
      return;
    }
    this.writer.flush();
    if (this.inputEnded && !this.waiting && !this.answers.pending && this.parkedPlain.length === 0) this.onEnd();
  }

  get suspended(): boolean {
    return this.waiting;
  }

  /** Continues decoding after a wait: the waiting command first, then parked input. */
  resume(): void {
    this.waiting = false;
    const retry = this.retry;
    this.retry = null;
    if (retry !== null && !retry()) {
      this.writer.flush();
      if (this.isClosed || this.waiting) return;
    }
    this.decoder.push(EMPTY, this.handler);
    this.renewReadDeadline();
    this.writer.flush();
    while (!this.waiting && !this.isClosed && this.parkedPlain.length > 0) {
      const chunk = this.parkedPlain.shift() as Buffer;
      this.parked -= chunk.length;
      this.decode(chunk);
    }
    if (this.parkFull && this.parked <= MAX_PARKED_BYTES) {
      this.parkFull = false;
      if (!this.inputPaused) this.transport.resumeInput();
    }
    if (this.inputEnded && !this.waiting && this.parkedPlain.length === 0) this.onEnd();
  }

  /** The JSON reply of IDENTIFY leaves in plaintext, then the layers switch at this byte. */
  private startUpgrade(): void {
    this.writer.flush();
    this.transport.start(this.decoder.takeRemainder());
  }

  /** Peer done sending (half-open, as Go's connections): a cut-short command gets nsqd's read error, then close. */
  onEnd(): void {
    if (this.isClosed || this.transport.endsItself) return;
    if (this.waiting || this.transport.pending !== null || this.answers.pending) {
      this.inputEnded = true;
      return;
    }
    const err = this.decoder.eofError();
    if (err !== null) this.sendFatal(err);
    else this.close();
  }

  /**
   * nsqd's read deadline covers a whole command (no slowloris). Renewed once per input chunk that completed a
   * command, not per command: a refresh() per FIN was ~5 % of the broker's busy time at 500k FIN/s.
   */
  private renewReadDeadline(): void {
    if (!this.commandSeen) return;
    this.commandSeen = false;
    this.readTimer?.refresh();
  }

  /** Heartbeat ticker and read deadline (2 × interval), both off when heartbeats are disabled. */
  private startTimers(): void {
    this.stopTimers();
    const interval = this.heartbeatIntervalMs;
    this.writer.setWriteDeadline(interval);
    if (interval <= 0) return;
    const clock = this.host.clock;
    const heartbeat = clock.setTimer(() => {
      heartbeat.refresh();
      this.writer.writeFrame(HEARTBEAT_FRAME);
      this.writer.flush();
      // No message for a whole interval: an idle consumer gives its output slab back.
      if (this.messageCount === this.messagesAtHeartbeat) this.writer.releaseSlab();
      this.messagesAtHeartbeat = this.messageCount;
    }, interval);
    this.heartbeatTimer = heartbeat;
    this.readTimer = clock.setTimer(() => {
      if (this.answers.pending) {
        // Its publishes wait for the broker's disk, not for the client: not a silent client.
        this.readTimer?.refresh();
        return;
      }
      this.host.logger.info(`client(${this.remoteAddress}) read deadline exceeded, closing`);
      this.close();
    }, 2 * interval);
  }

  private stopTimers(): void {
    const clock = this.host.clock;
    if (this.heartbeatTimer !== null) clock.clearTimer(this.heartbeatTimer);
    if (this.readTimer !== null) clock.clearTimer(this.readTimer);
    this.heartbeatTimer = null;
    this.readTimer = null;
  }

  destroy(): void {
    this.transport.destroy();
  }

  close(): void {
    if (this.isClosed) return;
    this.stop();
    this.transport.end();
    // A peer that does not read must not hold the socket open forever.
    this.destroyTimer = this.host.clock.setTimer(() => this.socket.destroy(), 5_000);
    this.detach();
  }

  onClose(): void {
    if (this.destroyTimer !== null) {
      this.host.clock.clearTimer(this.destroyTimer);
      this.destroyTimer = null;
    }
    if (this.detached) return;
    this.stop();
    this.transport.halt();
    this.detach();
  }

  private stop(): void {
    this.isClosed = true;
    this.answers.stop();
    this.decoder.halt();
    this.stopTimers();
    this.writer.close();
  }

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
