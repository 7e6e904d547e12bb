import { formatHostPort, type Logger } from '@nsq-ts/go-compat';
import { NsqHttpClient, NsqHttpError, nsqQuery } from '@nsq-ts/http-client';
import { encodeCommand, isEphemeralName } from '@nsq-ts/protocol';
import { LookupPeer, type LookupTls, type PeerIdentity } from './lookup-peer.js';

/** nsqd's side of discovery: what the registrar reads from the broker. */
export interface RegistrarHost {
  readonly logger: Logger;
  identity(): PeerIdentity;
  /** Every topic with its channel names, for the REGISTERs after a (re)connect. */
  registrations(): Array<{ topic: string; channels: string[] }>;
  readonly httpClientConnectTimeoutMs: number;
  readonly httpClientRequestTimeoutMs: number;
  /** TLS for the TCP links (`--lookupd-tls`); null or absent: plain TCP, as NSQ. */
  readonly lookupdTls?: LookupTls | null;
  /** `--lookupd-http-auth-token`, sent as `Authorization: Bearer` with GET /channels; '' or absent: none. */
  readonly lookupdHttpAuthToken?: string;
}

const PING_INTERVAL_MS = 15_000;

/**
 * Keeps every configured nsqlookupd informed (nsq-spec §4.4): IDENTIFY and REGISTER of all
 * topics and channels on connect, REGISTER/UNREGISTER on every create and delete (ephemeral
 * ones included), PING every 15 s — which is also what reconnects a lost link.
 */
export class LookupdRegistrar {
  private peers = new Map<string, LookupPeer>();
  private readonly pingTimer: NodeJS.Timeout;

  constructor(private readonly host: RegistrarHost) {
    this.pingTimer = setInterval(() => this.broadcast(encodeCommand('PING')), PING_INTERVAL_MS);
    this.pingTimer.unref();
  }

  get addresses(): string[] {
    return [...this.peers.keys()];
  }

  /** Adds new lookupds (connecting at once) and drops removed ones. */
  setAddresses(addresses: readonly string[]): void {
    const wanted = new Set(addresses);
    for (const [address, peer] of this.peers) {
      if (!wanted.has(address)) {
        peer.close();
        this.peers.delete(address);
      }
    }
    for (const address of wanted) {
      if (this.peers.has(address)) continue;
      const peer = new LookupPeer(
        address,
        () => this.host.identity(),
        () => this.registrationCommands(),
        this.host.logger,
        this.host.lookupdTls ?? null,
      );
      this.peers.set(address, peer);
      this.send(peer, encodeCommand('PING'));
    }
  }

  topicCreated(topic: string): void {
    this.broadcast(encodeCommand('REGISTER', [topic]));
  }

  channelCreated(topic: string, channel: string): void {
    this.broadcast(encodeCommand('REGISTER', [topic, channel]));
  }

  topicDeleted(topic: string): void {
    this.broadcast(encodeCommand('UNREGISTER', [topic]));
  }

  channelDeleted(topic: string, channel: string): void {
    this.broadcast(encodeCommand('UNREGISTER', [topic, channel]));
  }

  /**
   * The non-ephemeral channels the lookupds know for `topic` (`GET /channels`), so a topic
   * created here can make them before it fans out. Lookupds not yet identified, or failing,
   * contribute nothing.
   */
  async channelsFor(topic: string): Promise<string[]> {
    const found = new Set<string>();
    const http = new NsqHttpClient({
      timeoutMs: this.host.httpClientConnectTimeoutMs + this.host.httpClientRequestTimeoutMs,
      authToken: this.host.lookupdHttpAuthToken ?? '',
    });
    await Promise.all(
      [...this.peers.values()].map(async (peer) => {
        if (peer.info === null) return;
        const address = formatHostPort(peer.info.broadcastAddress, peer.info.httpPort);
        try {
          const body = await http.get<{ channels?: unknown }>(address, `/channels${nsqQuery({ topic })}`);
          if (Array.isArray(body.channels)) {
            for (const c of body.channels) if (typeof c === 'string' && !isEphemeralName(c)) found.add(c);
          }
        } catch (err) {
          // The error says whether a token was sent, never the token.
          const hint = err instanceof NsqHttpError && err.status === 401 ? ' - check --lookupd-http-auth-token' : '';
          this.host.logger.warn(`LOOKUPD(${peer.address}): ${(err as Error).message}${hint}`);
        }
      }),
    );
    return [...found];
  }

  close(): void {
    clearInterval(this.pingTimer);
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
  }

  private registrationCommands(): Buffer[] {
    const out: Buffer[] = [];
    for (const { topic, channels } of this.host.registrations()) {
      if (channels.length === 0) out.push(encodeCommand('REGISTER', [topic]));
      for (const channel of channels) out.push(encodeCommand('REGISTER', [topic, channel]));
    }
    return out;
  }

  private broadcast(bytes: Buffer): void {
    for (const peer of this.peers.values()) this.send(peer, bytes);
  }

  private send(peer: LookupPeer, bytes: Buffer): void {
    peer.command(bytes).catch((err: Error) => {
      this.host.logger.warn(
        `LOOKUPD(${peer.address}): ${bytes.toString('latin1').split('\n')[0]} failed - ${err.message}`,
      );
    });
  }
}
