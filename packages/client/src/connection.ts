import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type TLSSocket, type ConnectionOptions as TlsConnectionOptions, connect as tlsConnect } from 'node:tls';
import {
  CLOSE_WAIT,
  DeflateOutput,
  deflateInput,
  encodeCommand,
  FrameDecoder,
  FrameType,
  HEARTBEAT,
  type InputFilter,
  MAGIC_V2,
  OK,
  type OutputSink,
  ProtocolError,
  SnappyOutput,
  snappyInput,
} from '@nsq-ts/protocol';
import { parseAddress } from './address.js';
import { NSQD_DEFAULTS } from './defaults.js';
import { ClientError, ClientErrorCode, explainRefusal } from './errors.js';
import {
  applyIdentifyReply,
  type Features,
  type IdentifyOptions,
  identifyBody,
  type Negotiated,
  notNsqd,
  parseAuthReply,
} from './identify.js';

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
}

/** One TCP V2 connection; writes of one tick are corked into one `writev`. */
export class Connection {
  readonly address: string;
  private readonly options: ConnectionOptions;
  private socket: Socket | null = null;
  private tlsSocket: TLSSocket | null = null;
  private out: OutputSink | null = null;
  private input: InputFilter | null = null;
  /** Held during the handshake and cut one frame per reply, so bytes of the next layer are never parsed. */
  private holding = true;
  private held: Buffer = Buffer.alloc(0);
  private readonly decoder = new FrameDecoder();
  private handlers: ConnectionHandlers | null = null;
  private waiter: { resolve: (text: string) => void; reject: (err: Error) => void } | null = null;
  private corked = false;
  private closed = false;
  /** The TCP connection was established (dial errors before it are E_CONNECT_FAILED). */
  private connected = false;
  /** Any byte came back: a peer that closes without one is likely not an nsqd TCP port. */
  private receivedAny = false;
  private readDeadline: NodeJS.Timeout | null = null;
  private closeError: Error | null = null;
  /** Set when this side ends or drops the connection: only then is a close without error clean. */
  private closedByUs = false;
  /** Set while `write()` returns false; the owner may stop writing until `onDrain`. */
  congested = false;
  onDrain: (() => void) | null = null;
  negotiated: Negotiated = {
    maxRdyCount: NSQD_DEFAULTS.maxRdyCount,
    msgTimeoutMs: NSQD_DEFAULTS.msgTimeoutMs,
    maxMsgTimeoutMs: NSQD_DEFAULTS.maxMsgTimeoutMs,
    heartbeatIntervalMs: NSQD_DEFAULTS.heartbeatIntervalMs,
    version: '',
    maxMsgSize: 0,
    maxBodySize: 0,
    tls: false,
    snappy: false,
    deflate: false,
    auth: null,
  };

  constructor(address: string, options: ConnectionOptions) {
    this.address = address;
    this.options = options;
  }

  /** Rejects with a ProtocolError for an nsqd error frame, or a ClientError naming this address. */
  async open(handlers: ConnectionHandlers, subscribe?: { topic: string; channel: string }): Promise<Negotiated> {
    const { host, port } = parseAddress(this.address);
    const socket = netConnect({ host, port, noDelay: true });
    this.socket = socket;
    this.out = socket;
    socket.on('data', this.onSocketData);
    socket.on('error', (err) => {
      this.closeError ??= this.connected
        ? new ClientError(
            ClientErrorCode.ConnectionClosed,
            `connection to nsqd ${this.address} failed: ${err.message}`,
            {
              cause: err,
            },
          )
        : new ClientError(ClientErrorCode.ConnectFailed, `cannot connect to nsqd ${this.address}: ${err.message}`, {
            cause: err,
          });
    });
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => {
      this.congested = false;
      this.onDrain?.();
    });
    const timer = setTimeout(() => {
      const stage = this.connected ? 'the handshake with' : 'connecting to';
      const ms = this.options.dialTimeoutMs;
      this.destroy(new ClientError(ClientErrorCode.Timeout, `${stage} nsqd ${this.address} took over ${ms} ms`));
    }, this.options.dialTimeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        this.waiter = { resolve: () => resolve(), reject };
        socket.once('connect', () => {
          this.waiter = null;
          this.connected = true;
          resolve();
        });
      });
      this.write(MAGIC_V2);
      const body = JSON.stringify(identifyBody(this.options.identify));
      const reply = await this.request(encodeCommand('IDENTIFY', [], body));
      const features = applyIdentifyReply(reply, this.options.identify, this.negotiated, this.address);
      if (features.tls) await this.startTls(host);
      if (features.snappy || features.deflate) await this.startCompression(features);
      const secret = this.options.identify.authSecret;
      if (secret !== undefined && secret !== '') {
        // Sent whenever a secret is configured (as nsqjs does), so a typo is not silently ignored.
        this.negotiated.auth = parseAuthReply(await this.request(encodeCommand('AUTH', [], secret)), this.address);
      } else if (features.authRequired) {
        throw new ClientError(
          ClientErrorCode.AuthRequired,
          `nsqd ${this.address} requires AUTH (--auth-http-address) and no authSecret is set`,
        );
      }
      if (subscribe !== undefined) {
        const subReply = await this.request(encodeCommand('SUB', [subscribe.topic, subscribe.channel]));
        if (subReply !== OK) throw notNsqd(this.address, 'SUB', subReply);
      }
      this.releaseHeld();
    } catch (caught) {
      const err = caught instanceof ProtocolError ? explainRefusal(caught, this.address) : (caught as Error);
      this.destroy(err);
      // The first error recorded is the cause (a socket error precedes the close it causes).
      throw this.closeError ?? err;
    } finally {
      clearTimeout(timer);
    }
    // Two missed heartbeats mean the peer is gone (nsq-spec §2.9). Refreshed by received data only:
    // socket.setTimeout also counts our writes, so autoTouch would hide a silently dead connection.
    this.readDeadline = setTimeout(
      () => {
        this.destroy(new ClientError(ClientErrorCode.Timeout, `no data from ${this.address} for two heartbeats`));
      },
      this.negotiated.heartbeatIntervalMs * 2 + 1_000,
    );
    this.readDeadline.unref();
    this.handlers = handlers;
    return this.negotiated;
  }

  /** TLS handshake over the socket, then nsqd's `OK` through it (nsq-spec §2.7 step 1). */
  private async startTls(host: string): Promise<void> {
    const socket = this.socket as Socket;
    if (this.held.length > 0) throw notNsqd(this.address, 'IDENTIFY', 'data before the TLS handshake');
    const given = this.options.identify.tls;
    const options: TlsConnectionOptions = typeof given === 'object' ? given : {};
    socket.off('data', this.onSocketData);
    const tlsSocket = tlsConnect({
      ...options,
      socket,
      host,
      ...(isIP(host) === 0 && options.servername === undefined ? { servername: host } : {}),
    });
    this.tlsSocket = tlsSocket;
    tlsSocket.on('data', this.onTransportData);
    tlsSocket.on('error', (cause) => {
      const err = this.negotiated.tls
        ? new ClientError(
            ClientErrorCode.ConnectionClosed,
            `TLS connection to nsqd ${this.address} failed: ${cause.message}`,
            {
              cause,
            },
          )
        : new ClientError(
            ClientErrorCode.TlsFailed,
            `TLS handshake with nsqd ${this.address} failed: ${cause.message}`,
            {
              cause,
            },
          );
      this.closeError ??= err;
      this.takeWaiter()?.reject(err);
      socket.destroy();
    });
    tlsSocket.on('close', () => this.onSocketClose());
    tlsSocket.on('drain', () => {
      this.congested = false;
      this.onDrain?.();
    });
    this.out = tlsSocket;
    const reply = await this.awaitReply();
    if (reply !== OK) throw notNsqd(this.address, 'TLS', reply);
    this.negotiated.tls = true;
  }

  /** Snappy or deflate over the current transport, then nsqd's `OK` through it (step 2). */
  private async startCompression(features: Features): Promise<void> {
    const transport = this.tlsSocket ?? (this.socket as Socket);
    const onError = (err: Error): void => this.destroy(err);
    const onPlain = (data: Buffer): void => this.onPlain(data);
    if (features.snappy) {
      this.out = new SnappyOutput(transport);
      this.input = snappyInput(onPlain, onError);
      this.negotiated.snappy = true;
    } else {
      // nsqjs also deflates its own side at the level nsqd reports.
      this.out = new DeflateOutput(transport, features.deflateLevel);
      this.input = deflateInput(onPlain, onError);
      this.negotiated.deflate = true;
    }
    if (this.tlsSocket === null) {
      (this.socket as Socket).off('data', this.onSocketData);
      (this.socket as Socket).on('data', this.onTransportData);
    }
    // What followed the last plaintext reply is already compressed.
    const rest = this.held;
    this.held = Buffer.alloc(0);
    const waiting = this.awaitReply();
    if (rest.length > 0) this.input.push(rest);
    const reply = await waiting;
    if (reply !== OK) throw notNsqd(this.address, 'compression', reply);
  }

  private awaitReply(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.cutHeld();
    });
  }

  private releaseHeld(): void {
    this.holding = false;
    const rest = this.held;
    this.held = Buffer.alloc(0);
    if (rest.length > 0) this.onPlain(rest);
  }

  private readonly onSocketData = (chunk: Buffer): void => {
    this.receivedAny = true;
    this.readDeadline?.refresh();
    this.onPlain(chunk);
  };

  private readonly onTransportData = (chunk: Buffer): void => {
    this.readDeadline?.refresh();
    if (this.input !== null) this.input.push(chunk);
    else this.onPlain(chunk);
  };

  private request(command: Buffer): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.write(command);
    });
  }

  private onPlain(chunk: Buffer): void {
    if (this.holding) {
      this.held = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
      if (this.held.length >= 5 && this.held.subarray(0, 5).toString('latin1') === 'HTTP/') {
        this.destroy(this.httpAnswer());
        return;
      }
      this.cutHeld();
      return;
    }
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

  /** Hands complete held frames to onFrame while a reply is awaited (heartbeats are answered). */
  private cutHeld(): void {
    while (this.waiter !== null && this.held.length >= 8) {
      const size = this.held.readInt32BE(0);
      if (size < 4) {
        this.destroy(new ClientError(ClientErrorCode.UnexpectedResponse, `invalid frame size ${size}`));
        return;
      }
      if (this.held.length < 4 + size) return;
      const type = this.held.readInt32BE(4) as FrameType;
      const data = Buffer.from(this.held.subarray(8, 4 + size));
      this.held = this.held.subarray(4 + size);
      this.onFrame(type, data);
    }
  }

  /** An HTTP server answered our magic and IDENTIFY (it replies `HTTP/1.1 400 Bad Request`). */
  private httpAnswer(): ClientError {
    const status = this.held.toString('latin1', 0, Math.min(this.held.length, 200)).split('\r\n')[0];
    return new ClientError(
      ClientErrorCode.NotNsqd,
      `${this.address} answered with HTTP ("${status}"): this looks like an HTTP port; give nsqd's TCP port (--tcp-address, 4150 by default)`,
    );
  }

  private takeWaiter(): { resolve: (text: string) => void; reject: (err: Error) => void } | null {
    const w = this.waiter;
    this.waiter = null;
    return w;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues bytes; all writes of one tick leave in one syscall. Returns false when congested. */
  write(data: Buffer): boolean {
    const socket = this.socket;
    if (socket === null || this.closed) return false;
    const out = this.out as OutputSink;
    if (!this.corked) {
      this.corked = true;
      out.cork();
      setImmediate(uncork, this);
    }
    if (!out.write(data)) this.congested = true;
    return !this.congested;
  }

  /** @internal */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.out?.uncork();
  }

  /** Flushes pending writes, then half-closes; the server's close finishes it. */
  end(): void {
    if (this.socket === null || this.closed) return;
    this.closedByUs = true;
    this.flush();
    this.input?.close();
    (this.out as OutputSink).end();
    // A peer that never closes its side must not keep us alive.
    (this.tlsSocket ?? this.socket).setTimeout(1_000, () => this.destroy(null));
  }

  destroy(error: Error | null): void {
    if (error !== null) this.closeError ??= error;
    else this.closedByUs = true;
    if (this.socket === null) {
      this.onSocketClose();
      return;
    }
    this.tlsSocket?.destroy();
    this.socket.destroy();
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.readDeadline !== null) clearTimeout(this.readDeadline);
    this.socket?.setTimeout(0);
    this.tlsSocket?.setTimeout(0);
    this.input?.close();
    // nsqd went away without being asked to (killed, restarted, a fatal error): not a clean close.
    if (this.closeError === null && !this.closedByUs) {
      // Silence, then a close, in the handshake: what TLS ports (nsqd's --https-address) do.
      const why = this.connected && !this.receivedAny ? " without answering IDENTIFY (is it nsqd's TCP port?)" : '';
      this.closeError = new ClientError(
        ClientErrorCode.ConnectionClosed,
        `nsqd ${this.address} closed the connection${why}`,
      );
    }
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
