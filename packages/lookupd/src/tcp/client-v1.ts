import type { Socket } from 'node:net';
import { formatHostPort, type Logger } from '@nsq-ts/go-compat';
import {
  decodeGoJsonFields,
  encodeLookupResponse,
  IdentifyDecodeError,
  isEphemeralName,
  isValidChannelName,
  isValidTopicName,
  type JsonFieldKind,
  MAGIC_V1,
  MAX_LINE_BYTES,
} from '@nsq-ts/protocol';
import type { Clock, TimerHandle } from '@nsq-ts/server-kit';
import {
  Category,
  type PeerInfo,
  Producer,
  type Registration,
  type RegistrationDB,
  WILDCARD,
} from '../registration-db.js';

/**
 * One nsqd connection speaking nsqlookupd's TCP protocol V1 (nsq-spec §4.1, NSQ's
 * lookup_protocol_v1.go):
 *
 *   client → server   "  V1"                                     once, first
 *                     "IDENTIFY\n" [int32 BE size][JSON body]
 *                     "REGISTER <topic> [<channel>]\n"  "UNREGISTER <topic> [<channel>]\n"  "PING\n"
 *   server → client   [uint32 BE size][data]                     no frame type, unlike nsqd
 *
 * Replies are `OK` or IDENTIFY's JSON; an error is `<CODE> <text>` in the same framing, and every
 * error is fatal: the server sends it, then closes. Commands are handled strictly in order, one
 * reply each, so a pipelining nsqd matches replies FIFO.
 */

export interface LookupHost {
  readonly db: RegistrationDB;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The IDENTIFY reply (JSON text): this lookupd's address, ports and version. */
  identifyReply(): string;
  readonly maxIdentifyBodyBytes: number;
  readonly tcpReadTimeoutMs: number;
  onClientClosed(client: ClientV1): void;
}

const MAGIC = MAGIC_V1.toString('latin1');

const State = {
  Magic: 0,
  Line: 1,
  IdentifySize: 2,
  IdentifyBody: 3,
  Closed: 4,
} as const;
type State = (typeof State)[keyof typeof State];

/** PeerInfo's JSON fields (Go's json tags); remote_address is decoded, then overwritten. */
const PEER_FIELDS: Readonly<Record<string, JsonFieldKind>> = {
  remote_address: 'string',
  hostname: 'string',
  broadcast_address: 'string',
  tcp_port: 'int',
  http_port: 'int',
  version: 'string',
};

/** Go's strings.TrimSpace over a byte string: ASCII spaces and the UTF-8 forms of Unicode spaces. */
const SPACE =
  '(?:[\\t\\n\\v\\f\\r ]|\\xC2[\\x85\\xA0]|\\xE1\\x9A\\x80|\\xE2\\x80[\\x80-\\x8A\\xA8\\xA9\\xAF]|\\xE2\\x81\\x9F|\\xE3\\x80\\x80)';
const TRIM = new RegExp(`^${SPACE}+|${SPACE}+$`, 'g');

class FatalError extends Error {
  constructor(
    readonly code: string,
    readonly text: string,
  ) {
    super(`${code} ${text}`);
  }
}

export class ClientV1 {
  /** `ip:port` of the peer, as Go's RemoteAddr().String(). */
  readonly remoteAddress: string;
  peerInfo: PeerInfo | null = null;
  private state: State = State.Magic;
  private pending: Buffer = Buffer.alloc(0);
  private identifySize = 0;
  /** Refreshed per whole command, never per chunk, so a peer dribbling bytes is cut as an idle one. */
  private readonly readTimer: TimerHandle | null;

  constructor(
    readonly socket: Socket,
    private readonly host: LookupHost,
  ) {
    this.remoteAddress = peerAddress(socket);
    const timeout = host.tcpReadTimeoutMs;
    this.readTimer = timeout > 0 ? host.clock.setTimer(() => this.onReadTimeout(timeout), timeout) : null;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // The server allows half-open sockets so that an IDENTIFY cut short by the peer's FIN can
    // still be answered, as Go's reader answers io.EOF with E_BAD_BODY.
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => this.host.logger.debug(`CLIENT(${this.remoteAddress}): ${err.message}`));
    socket.on('close', () => this.onClose());
    host.logger.info(`TCP: new client(${this.remoteAddress})`);
  }

  private onData(chunk: Buffer): void {
    if (this.state === State.Closed) return;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    try {
      for (;;) {
        const used = this.step(this.pending, at);
        if (used < 0 || (this.state as State) === State.Closed) break;
        at += used;
      }
    } catch (err) {
      if (err instanceof FatalError) {
        this.fail(err);
      } else {
        // A bug, not the client's fault: drop this connection rather than the daemon.
        this.host.logger.error(`CLIENT(${this.remoteAddress}): ${err instanceof Error ? err.stack : String(err)}`);
        this.state = State.Closed;
        this.socket.destroy();
      }
      return;
    }
    this.pending = at === this.pending.length ? Buffer.alloc(0) : this.pending.subarray(at);
  }

  /** Returns the bytes used, -1 when more are needed. */
  private step(buf: Buffer, at: number): number {
    const available = buf.length - at;
    switch (this.state) {
      case State.Magic: {
        if (available < 4) return -1;
        const magic = buf.toString('latin1', at, at + 4);
        this.host.logger.info(`CLIENT(${this.remoteAddress}): desired protocol magic '${magic}'`);
        if (magic !== MAGIC) {
          this.host.logger.error(`client(${this.remoteAddress}) bad protocol magic '${magic}'`);
          this.close('E_BAD_PROTOCOL');
          return 4;
        }
        this.state = State.Line;
        return 4;
      }
      case State.Line: {
        const nl = buf.indexOf(0x0a, at);
        if (nl < 0) {
          // NSQ reads lines of any length; a bound keeps one connection from buffering without end.
          if (available > MAX_LINE_BYTES) {
            throw new FatalError('E_INVALID', `command line too long (max ${MAX_LINE_BYTES} bytes)`);
          }
          return -1;
        }
        const line = buf.toString('latin1', at, nl).replace(TRIM, '');
        this.exec(line.split(' '));
        // IDENTIFY's line alone is not a whole command: its body must follow within the deadline.
        if (this.state === State.Line) this.readTimer?.refresh();
        return nl + 1 - at;
      }
      case State.IdentifySize: {
        if (available < 4) return -1;
        const size = buf.readInt32BE(at);
        if (size < 0) throw new FatalError('E_BAD_BODY', `IDENTIFY invalid body size ${size}`);
        if (size > this.host.maxIdentifyBodyBytes) {
          throw new FatalError('E_BAD_BODY', `IDENTIFY body too big ${size} > ${this.host.maxIdentifyBodyBytes}`);
        }
        this.identifySize = size;
        this.state = State.IdentifyBody;
        return 4;
      }
      case State.IdentifyBody: {
        if (available < this.identifySize) return -1;
        this.state = State.Line;
        this.identify(buf.subarray(at, at + this.identifySize));
        this.readTimer?.refresh();
        return this.identifySize;
      }
      default:
        return -1;
    }
  }

  private exec(params: string[]): void {
    const command = params[0] as string;
    switch (command) {
      case 'PING':
        if (this.peerInfo !== null) {
          const now = this.host.clock.wallMs();
          this.host.logger.info(
            `CLIENT(${this.peerInfo.id}): pinged (last ping ${formatMs(now - this.peerInfo.lastUpdateMs)})`,
          );
          this.peerInfo.lastUpdateMs = now;
        }
        this.send('OK');
        return;
      case 'IDENTIFY':
        if (this.peerInfo !== null) throw new FatalError('E_INVALID', 'cannot IDENTIFY again');
        this.state = State.IdentifySize;
        return;
      case 'REGISTER':
        this.register(params.slice(1));
        return;
      case 'UNREGISTER':
        this.unregister(params.slice(1));
        return;
      default:
        throw new FatalError('E_INVALID', `invalid command ${command}`);
    }
  }

  private identify(body: Buffer): void {
    const fields: Record<string, unknown> = {
      remote_address: '',
      hostname: '',
      broadcast_address: '',
      tcp_port: 0,
      http_port: 0,
      version: '',
    };
    try {
      decodeGoJsonFields(body, PEER_FIELDS, fields);
    } catch (err) {
      if (!(err instanceof IdentifyDecodeError)) throw err;
      throw new FatalError('E_BAD_BODY', 'IDENTIFY failed to decode JSON body');
    }
    const peer: PeerInfo = {
      id: this.remoteAddress,
      remoteAddress: this.remoteAddress,
      hostname: fields.hostname as string,
      broadcastAddress: fields.broadcast_address as string,
      tcpPort: fields.tcp_port as number,
      httpPort: fields.http_port as number,
      version: fields.version as string,
      lastUpdateMs: this.host.clock.wallMs(),
    };
    if (peer.broadcastAddress === '' || peer.tcpPort === 0 || peer.httpPort === 0 || peer.version === '') {
      throw new FatalError('E_BAD_BODY', 'IDENTIFY missing fields');
    }
    this.host.logger.info(
      `CLIENT(${this.remoteAddress}): IDENTIFY Address:${peer.broadcastAddress} TCP:${peer.tcpPort} HTTP:${peer.httpPort} Version:${peer.version}`,
    );
    this.peerInfo = peer;
    this.add({ category: Category.Client, key: '', subKey: '' }, peer);
    this.send(this.host.identifyReply());
  }

  private topicChannel(command: string, params: readonly string[]): { topic: string; channel: string } {
    if (this.peerInfo === null) throw new FatalError('E_INVALID', 'client must IDENTIFY');
    if (params.length === 0) throw new FatalError('E_INVALID', `${command} insufficient number of params`);
    const topic = params[0] as string;
    const channel = params.length >= 2 ? (params[1] as string) : '';
    if (!isValidTopicName(topic)) throw new FatalError('E_BAD_TOPIC', `${command} topic name '${topic}' is not valid`);
    if (channel !== '' && !isValidChannelName(channel)) {
      throw new FatalError('E_BAD_CHANNEL', `${command} channel name '${channel}' is not valid`);
    }
    return { topic, channel };
  }

  private register(params: readonly string[]): void {
    const { topic, channel } = this.topicChannel('REGISTER', params);
    const peer = this.peerInfo as PeerInfo;
    if (channel !== '') this.add({ category: Category.Channel, key: topic, subKey: channel }, peer);
    this.add({ category: Category.Topic, key: topic, subKey: '' }, peer);
    this.send('OK');
  }

  private unregister(params: readonly string[]): void {
    const { topic, channel } = this.topicChannel('UNREGISTER', params);
    const { db } = this.host;
    const id = (this.peerInfo as PeerInfo).id;
    if (channel !== '') {
      const registration: Registration = { category: Category.Channel, key: topic, subKey: channel };
      const { removed, left } = db.removeProducer(registration, id);
      if (removed) this.logDb('UNREGISTER', registration);
      // An ephemeral channel's registration goes with its last producer.
      if (left === 0 && isEphemeralName(channel)) db.removeRegistration(registration);
    } else {
      // A topic unregistration takes the producer off all the topic's channels too (nsqd normally
      // unregisters those first, hence NSQ's warning when something is removed here).
      for (const r of db.findRegistrations(Category.Channel, topic, WILDCARD)) {
        if (db.removeProducer(r, id).removed) {
          this.host.logger.warn(
            `client(${this.remoteAddress}) unexpected UNREGISTER category:${r.category} key:${r.key} subkey:${r.subKey}`,
          );
        }
      }
      const registration: Registration = { category: Category.Topic, key: topic, subKey: '' };
      const { removed, left } = db.removeProducer(registration, id);
      if (removed) this.logDb('UNREGISTER', registration);
      // nsq-spec §4.1: an ephemeral topic's registration goes with its last producer.
      if (left === 0 && isEphemeralName(topic)) db.removeRegistration(registration);
    }
    this.send('OK');
  }

  private add(registration: Registration, peer: PeerInfo): void {
    if (this.host.db.addProducer(registration, new Producer(peer))) this.logDb('REGISTER', registration);
  }

  private logDb(action: string, r: Registration): void {
    this.host.logger.info(
      `DB: client(${this.remoteAddress}) ${action} category:${r.category} key:${r.key} subkey:${r.subKey}`,
    );
  }

  /** Writes `[size][data]`; `data` is a byte string (latin1) or JSON text (utf8). */
  private send(data: string, encoding: 'latin1' | 'utf8' = 'utf8'): void {
    this.socket.write(encodeLookupResponse(Buffer.from(data, encoding)));
  }

  private fail(err: FatalError): void {
    this.host.logger.error(`[${this.remoteAddress}] - ${err.message}`);
    // Error texts quote the client's bytes back as they came (the line was decoded as latin1).
    this.close(err.message);
  }

  /** Sends `message` (if any) and closes after it is flushed; later input is ignored. */
  private close(message: string | null): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    if (message !== null && this.socket.writable) this.send(message, 'latin1');
    this.socket.end();
  }

  /**
   * No reply (the peer may not be reading). Also ends a connection closed here after a fatal error
   * whose peer never sends its FIN, which the half-open server would otherwise keep.
   */
  private onReadTimeout(timeoutMs: number): void {
    if (this.state !== State.Closed) {
      this.host.logger.warn(`CLIENT(${this.remoteAddress}): no whole command within ${formatMs(timeoutMs)}, closing`);
      this.state = State.Closed;
    }
    this.socket.destroy();
  }

  private onEnd(): void {
    if (this.state === State.IdentifySize) this.fail(new FatalError('E_BAD_BODY', 'IDENTIFY failed to read body size'));
    else if (this.state === State.IdentifyBody) this.fail(new FatalError('E_BAD_BODY', 'IDENTIFY failed to read body'));
    else this.close(null);
  }

  private onClose(): void {
    this.state = State.Closed;
    if (this.readTimer !== null) this.host.clock.clearTimer(this.readTimer);
    this.host.logger.info(`CLIENT(${this.remoteAddress}): closing`);
    const peer = this.peerInfo;
    if (peer !== null) {
      for (const r of this.host.db.lookupRegistrations(peer.id)) {
        if (this.host.db.removeProducer(r, peer.id).removed) this.logDb('UNREGISTER', r);
      }
    }
    this.host.onClientClosed(this);
  }
}

/** The peer as `ip:port`, with IPv4-mapped IPv6 addresses shown as IPv4 (Go's String()). */
function peerAddress(socket: Socket): string {
  let ip = socket.remoteAddress ?? '';
  if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
  return formatHostPort(ip, socket.remotePort ?? 0);
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
}
