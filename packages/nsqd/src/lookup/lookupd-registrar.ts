import type { Logger } from '@nsq-ts/go-compat';
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
    const token = this.host.lookupdHttpAuthToken ?? '';
    const headers: Record<string, string> = { Accept: 'application/vnd.nsq; version=1.0' };
    if (token !== '') headers.Authorization = `Bearer ${token}`;
    await Promise.all(
      [...this.peers.values()].map(async (peer) => {
        if (peer.info === null) return;
        const url = `http://${peer.info.broadcastAddress}:${peer.info.httpPort}/channels?topic=${encodeURIComponent(topic)}`;
        try {
          const res = await fetch(url, {
            headers,
            signal: AbortSignal.timeout(this.host.httpClientConnectTimeoutMs + this.host.httpClientRequestTimeoutMs),
          });
          // The token itself is never logged, only whether one was sent.
          if (res.status === 401) {
            throw new Error(`status 401 (${token === '' ? 'no' : 'wrong'} --lookupd-http-auth-token)`);
          }
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          const body = (await res.json()) as { channels?: unknown; data?: { channels?: unknown } };
          const channels = body.channels ?? body.data?.channels;
          if (Array.isArray(channels)) {
            for (const c of channels) if (typeof c === 'string' && !isEphemeralName(c)) found.add(c);
          }
        } catch (err) {
          this.host.logger.warn(`LOOKUPD(${peer.address}): GET /channels failed - ${(err as Error).message}`);
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
