import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { type Logger, parseHostPort } from '@nsq-ts/go-compat';
import {
  encodeCommand,
  isLookupError,
  type LookupIdentifyBody,
  LookupResponseDecoder,
  MAGIC_V1,
} from '@nsq-ts/protocol';

/** What nsqd tells a lookupd about itself (IDENTIFY body, nsq-spec §4.4). */
export type PeerIdentity = LookupIdentifyBody;

/** TLS for the link (`--lookupd-tls`, an nsq-ts extension): the CA to verify the lookupd with. */
export interface LookupTls {
  /** PEM CA certificates; undefined: node's default (system) CAs. */
  readonly ca?: Buffer;
}

/** What the lookupd answers to IDENTIFY: where its HTTP API is. */
export interface LookupdInfo {
  broadcastAddress: string;
  httpPort: number;
}

const DIAL_TIMEOUT_MS = 1_000;
const REPLY_TIMEOUT_MS = 1_000;

interface Pending {
  bytes: Buffer;
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
}

/**
 * One nsqd → nsqlookupd link (TCP protocol V1). Commands run one at a time, each waiting for
 * its size-prefixed reply. The connection is made lazily by the next command after a failure,
 * and every (re)connection starts with IDENTIFY and the full set of registrations, as nsqd's
 * lookupPeer does, so a restarted lookupd learns everything again within one PING interval.
 */
export class LookupPeer {
  readonly address: string;
  info: LookupdInfo | null = null;
  private socket: Socket | null = null;
  private connecting: Promise<void> | null = null;
  private readonly queue: Pending[] = [];
  private busy = false;
  private closed = false;
  private decoder = new LookupResponseDecoder();
  private onReply: ((reply: Buffer) => void) | null = null;
  private onFailure: ((err: Error) => void) | null = null;

  constructor(
    address: string,
    private readonly identity: () => PeerIdentity,
    private readonly registrations: () => Buffer[],
    private readonly logger: Logger,
    private readonly tls: LookupTls | null = null,
  ) {
    this.address = address;
  }

  /** Sends a command (encoded), resolving with the reply. Rejects on failure; never retries. */
  command(bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes, resolve, reject });
      void this.drain();
    });
  }

  close(): void {
    this.closed = true;
    this.socket?.destroy();
    for (const p of this.queue.splice(0)) p.reject(new Error('lookupd peer closed'));
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const next = this.queue.shift() as Pending;
        try {
          await this.ensureConnected();
          next.resolve(await this.roundTrip(next.bytes));
        } catch (err) {
          this.drop(err as Error);
          next.reject(err as Error);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private async ensureConnected(): Promise<void> {
    if (this.socket !== null) return;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    await this.connecting;
  }

  private async connect(): Promise<void> {
    const { host, port } = parseHostPort(this.address);
    const tls = this.tls;
    this.logger.info(`LOOKUP connecting to ${this.address}${tls === null ? '' : ' (TLS)'}`);
    // With TLS the certificate is verified (CA chain and host name) before anything is sent.
    const socket =
      tls === null
        ? netConnect({ host, port, timeout: DIAL_TIMEOUT_MS })
        : tlsConnect({
            host,
            port,
            timeout: DIAL_TIMEOUT_MS,
            ...(isIP(host) === 0 ? { servername: host } : {}),
            ...(tls.ca === undefined ? {} : { ca: tls.ca }),
            minVersion: 'TLSv1.2',
          });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once(tls === null ? 'connect' : 'secureConnect', resolve);
        socket.once('error', reject);
        socket.once('timeout', () => reject(new Error(`dial ${this.address} timed out`)));
      });
    } catch (err) {
      // A timed-out dial is still in SYN-SENT: abandoned without destroy(), the kernel keeps
      // retransmitting its SYN and completes it when the network heals, leaving an idle
      // connection at the lookupd for every dial made across a partition.
      socket.destroy();
      throw err;
    }
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
    this.socket = socket;
    socket.write(MAGIC_V1);
    const reply = await this.roundTrip(encodeCommand('IDENTIFY', [], JSON.stringify(this.identity())));
    const parsed = JSON.parse(reply.toString('utf8')) as { broadcast_address?: string; http_port?: number };
    this.info = { broadcastAddress: parsed.broadcast_address ?? '', httpPort: parsed.http_port ?? 0 };
    this.logger.info(`LOOKUPD(${this.address}): peer info ${reply.toString('utf8')}`);
    for (const registration of this.registrations()) await this.roundTrip(registration);
  }

  /** Writes one command and waits for its `[size][data]` reply; an `E_*` reply is an error. */
  private roundTrip(bytes: Buffer): Promise<Buffer> {
    const socket = this.socket;
    if (socket === null) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error('reply timed out')), REPLY_TIMEOUT_MS);
      this.onReply = (reply) => {
        clearTimeout(timer);
        if (isLookupError(reply)) reject(new Error(reply.toString('latin1')));
        else resolve(Buffer.from(reply));
      };
      this.onFailure = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.write(bytes);
    });
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (reply) => {
        const onReply = this.onReply;
        this.onReply = null;
        this.onFailure = null;
        onReply?.(reply);
      });
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private fail(err: Error): void {
    const onFailure = this.onFailure;
    this.onReply = null;
    this.onFailure = null;
    this.drop(err);
    onFailure?.(err);
  }

  private drop(err: Error): void {
    if (this.socket === null) return;
    if (!this.closed) this.logger.warn(`LOOKUPD(${this.address}): ${err.message}; reconnecting on the next command`);
    const socket = this.socket;
    this.socket = null;
    this.decoder = new LookupResponseDecoder();
    socket.destroy();
  }
}
