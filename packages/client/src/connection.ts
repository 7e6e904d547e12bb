import { connect, type Socket } from 'node:net';
import {
  CLOSE_WAIT,
  encodeCommand,
  FrameDecoder,
  FrameType,
  HEARTBEAT,
  type IdentifyResponse,
  MAGIC_V2,
  OK,
  ProtocolError,
} from '@nsq-ts/protocol';
import { parseAddress } from './address.js';
import { ClientError, ClientErrorCode } from './errors.js';

/**
 * Feature negotiation options sent in IDENTIFY (nsq-spec §2.7), in the client's units. Anything
 * left out takes nsqd's default. TLS, snappy, deflate and AUTH are negotiated here once the
 * transport issue lands; until then the client never asks for them.
 */
export interface IdentifyOptions {
  /** Shown as `client_id` in nsqd's stats; defaults to the host name. */
  clientId?: string;
  /** Shown as `hostname` in nsqd's stats; defaults to `os.hostname()`. */
  hostname?: string;
  /** Shown as `user_agent` in nsqd's stats. */
  userAgent?: string;
  /** How often nsqd sends heartbeats (1000..60000 ms; nsqd default 30000). */
  heartbeatIntervalMs?: number;
  /** nsqd's per-connection output buffer (64..65536 bytes, -1 for none). */
  outputBufferSize?: number;
  /** How long nsqd may hold buffered messages (ms, -1 for no timed flush). */
  outputBufferTimeoutMs?: number;
  /** How long a delivered message may stay unanswered before nsqd requeues it (ms). */
  msgTimeoutMs?: number;
  /** Deliver only about this percentage (1..99) of the channel's messages; 0 = all. */
  sampleRate?: number;
}

/** What the connection learned from IDENTIFY (with NSQ's defaults for a plain `OK` reply). */
export interface Negotiated {
  maxRdyCount: number;
  msgTimeoutMs: number;
  maxMsgTimeoutMs: number;
  heartbeatIntervalMs: number;
  version: string;
}

/** Receives a connection's frames once its handshake is complete. */
export interface ConnectionHandlers {
  onMessage(data: Buffer): void;
  /** A response frame other than a heartbeat (OK, CLOSE_WAIT). */
  onResponse(text: string): void;
  onError(error: ProtocolError): void;
  /** Called exactly once, when the socket is gone (after `open()` resolved). */
  onClose(error: Error | null): void;
}

export interface ConnectionOptions {
  identify: IdentifyOptions;
  dialTimeoutMs: number;
  userAgentDefault: string;
  hostnameDefault: string;
}

const DEFAULT_HEARTBEAT_MS = 30_000;

/**
 * One TCP V2 connection: magic, IDENTIFY (with feature negotiation), optional SUB, then frames
 * routed to the owner. Heartbeats are answered with NOP here. Writes made in one tick are
 * corked into a single `writev`; a read deadline of two heartbeat intervals drops a dead peer.
 */
export class Connection {
  readonly address: string;
  private readonly options: ConnectionOptions;
  private socket: Socket | null = null;
  private readonly decoder = new FrameDecoder();
  private handlers: ConnectionHandlers | null = null;
  /** Handshake reply waiter (IDENTIFY, SUB), used before `handlers` is set. */
  private waiter: { resolve: (text: string) => void; reject: (err: Error) => void } | null = null;
  private corked = false;
  private closed = false;
  private closeError: Error | null = null;
  /** Set while `write()` returns false; the owner may stop writing until `onDrain`. */
  congested = false;
  onDrain: (() => void) | null = null;
  negotiated: Negotiated = {
    maxRdyCount: 2500,
    msgTimeoutMs: 60_000,
    maxMsgTimeoutMs: 900_000,
    heartbeatIntervalMs: DEFAULT_HEARTBEAT_MS,
    version: '',
  };

  constructor(address: string, options: ConnectionOptions) {
    this.address = address;
    this.options = options;
  }

  /**
   * Connects, identifies and (with `subscribe`) subscribes; resolves when the connection is ready
   * for the owner's `handlers`. Rejects with a ProtocolError for an nsqd error frame, or a
   * ClientError for a dial failure, timeout or unexpected close.
   */
  async open(handlers: ConnectionHandlers, subscribe?: { topic: string; channel: string }): Promise<Negotiated> {
    const { host, port } = parseAddress(this.address);
    const socket = connect({ host, port, noDelay: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.closeError ??= err;
    });
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => {
      this.congested = false;
      this.onDrain?.();
    });
    const timer = setTimeout(() => {
      this.destroy(new ClientError(ClientErrorCode.Timeout, `connecting to ${this.address} timed out`));
    }, this.options.dialTimeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve: () => resolve(), reject };
        socket.once('connect', () => {
          this.waiter = null;
          resolve();
        });
      });
      this.write(MAGIC_V2);
      const reply = await this.request(encodeCommand('IDENTIFY', [], JSON.stringify(this.identifyBody())));
      this.applyIdentifyReply(reply);
      if (subscribe !== undefined) {
        const subReply = await this.request(encodeCommand('SUB', [subscribe.topic, subscribe.channel]));
        if (subReply !== OK) throw this.unexpected('SUB', subReply);
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      clearTimeout(timer);
    }
    // Two missed heartbeats mean the peer is gone (nsq-spec §2.9); Node refreshes this timer on
    // socket activity, so it costs nothing per frame.
    socket.setTimeout(this.negotiated.heartbeatIntervalMs * 2 + 1_000, () => {
      this.destroy(new ClientError(ClientErrorCode.Timeout, `no data from ${this.address} for two heartbeats`));
    });
    this.handlers = handlers;
    return this.negotiated;
  }

  private identifyBody(): Record<string, string | number | boolean> {
    const o = this.options.identify;
    return {
      client_id: o.clientId ?? this.options.hostnameDefault,
      hostname: o.hostname ?? this.options.hostnameDefault,
      user_agent: o.userAgent ?? this.options.userAgentDefault,
      feature_negotiation: true,
      heartbeat_interval: o.heartbeatIntervalMs ?? 0,
      output_buffer_size: o.outputBufferSize ?? 0,
      output_buffer_timeout: o.outputBufferTimeoutMs ?? 0,
      // Transport features: requested by the transport issue's options, never yet.
      tls_v1: false,
      snappy: false,
      deflate: false,
      sample_rate: o.sampleRate ?? 0,
      msg_timeout: o.msgTimeoutMs ?? 0,
    };
  }

  private applyIdentifyReply(reply: string): void {
    const heartbeat = this.options.identify.heartbeatIntervalMs;
    this.negotiated.heartbeatIntervalMs = heartbeat !== undefined && heartbeat > 0 ? heartbeat : DEFAULT_HEARTBEAT_MS;
    if (reply === OK) return; // feature negotiation not supported: NSQ's defaults apply
    if (!reply.startsWith('{')) throw this.unexpected('IDENTIFY', reply);
    const r = JSON.parse(reply) as Partial<IdentifyResponse>;
    // The extension point for TLS, compression and AUTH: each would upgrade the socket here, in
    // the order TLS → snappy|deflate (nsq-spec §2.7), then AUTH. We never request them, so a
    // server that enables one anyway (or requires AUTH) cannot be spoken to.
    if (r.tls_v1 === true || r.snappy === true || r.deflate === true) {
      throw new ClientError(ClientErrorCode.Unsupported, `${this.address} negotiated TLS or compression`);
    }
    if (r.auth_required === true) {
      throw new ClientError(ClientErrorCode.Unsupported, `${this.address} requires AUTH, not supported yet`);
    }
    if (typeof r.max_rdy_count === 'number' && r.max_rdy_count > 0) this.negotiated.maxRdyCount = r.max_rdy_count;
    if (typeof r.msg_timeout === 'number' && r.msg_timeout > 0) this.negotiated.msgTimeoutMs = r.msg_timeout;
    if (typeof r.max_msg_timeout === 'number') this.negotiated.maxMsgTimeoutMs = r.max_msg_timeout;
    if (typeof r.version === 'string') this.negotiated.version = r.version;
  }

  private unexpected(command: string, reply: string): ClientError {
    return new ClientError(ClientErrorCode.UnexpectedResponse, `${command} got ${JSON.stringify(reply.slice(0, 100))}`);
  }

  /** Sends a handshake command and waits for its single reply. */
  private request(command: Buffer): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.write(command);
    });
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (type, data) => this.onFrame(type, data));
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onFrame(type: FrameType, data: Buffer): void {
    if (type === FrameType.Message) {
      if (this.handlers !== null) this.handlers.onMessage(data);
      return;
    }
    if (type === FrameType.Error) {
      const err = ProtocolError.fromFrame(data);
      if (this.handlers !== null) this.handlers.onError(err);
      else this.takeWaiter()?.reject(err);
      return;
    }
    // Response: heartbeats are answered here and never reach the owner.
    if (data.length === HEARTBEAT.length && data.toString('latin1') === HEARTBEAT) {
      this.write(NOP);
      return;
    }
    const text = data.toString('utf8');
    if (this.handlers !== null) this.handlers.onResponse(text);
    else this.takeWaiter()?.resolve(text);
  }

  private takeWaiter(): { resolve: (text: string) => void; reject: (err: Error) => void } | null {
    const w = this.waiter;
    this.waiter = null;
    return w;
  }

  /** True once the socket is gone. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues bytes; all writes of one tick leave in one syscall. Returns false when congested. */
  write(data: Buffer): boolean {
    const socket = this.socket;
    if (socket === null || this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(uncork, this);
    }
    if (!socket.write(data)) this.congested = true;
    return !this.congested;
  }

  /** @internal */
  flush(): void {
    this.corked = false;
    this.socket?.uncork();
  }

  /** Flushes pending writes, then half-closes; the server's close finishes it. */
  end(): void {
    if (this.socket === null || this.closed) return;
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not keep us alive.
    this.socket.setTimeout(1_000, () => this.destroy(null));
  }

  /** Drops the connection now. */
  destroy(error: Error | null): void {
    if (error !== null) this.closeError ??= error;
    if (this.socket === null) {
      this.onSocketClose();
      return;
    }
    this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.setTimeout(0);
    const err =
      this.closeError ?? new ClientError(ClientErrorCode.ConnectionClosed, `connection to ${this.address} closed`);
    const waiter = this.takeWaiter();
    if (waiter !== null) {
      waiter.reject(err);
      return;
    }
    this.handlers?.onClose(this.closeError);
  }
}

const NOP = encodeCommand('NOP');

function uncork(conn: Connection): void {
  conn.flush();
}

export { CLOSE_WAIT, OK };
