import { goQuote } from '@nsq-ts/go-compat';
import { ErrorCode, ProtocolError } from '@nsq-ts/protocol';
import type { Clock } from '../clock.js';
import type { NsqdOptions } from '../options.js';
import { type AuthRequest, type AuthState, isAllowed, queryAnyAuthd } from './auth-client.js';

export type AuthPeer = Omit<AuthRequest, 'secret'>;

/** One connection's AUTH secret, the auth server's last answer (cached for its TTL) and CheckAuth. */
export class AuthSession {
  state: AuthState | null = null;
  private secret = '';

  constructor(
    private readonly options: Pick<
      NsqdOptions,
      'authHttpAddresses' | 'httpClientConnectTimeoutMs' | 'httpClientRequestTimeoutMs'
    >,
    private readonly clock: Clock,
  ) {}

  get enabled(): boolean {
    return this.options.authHttpAddresses.length > 0;
  }

  /** nsqd's CheckAuth; false when the cached answer expired and must be asked for again. */
  check(command: string, permission: 'subscribe' | 'publish', topic: string, channel: string): boolean {
    if (!this.enabled) return true;
    const state = this.state;
    if (state === null) throw new ProtocolError(ErrorCode.AuthFirst, `AUTH required before ${command}`, true);
    if (this.clock.monotonicMs() >= state.expiresAtMs) return false;
    if (!isAllowed(state, permission, topic, channel)) {
      throw new ProtocolError(
        ErrorCode.Unauthorized,
        `AUTH failed for ${command} on ${goQuote(topic)} ${goQuote(channel)}`,
        true,
      );
    }
    return true;
  }

  /** With `secret` (AUTH's body), or the last one when null. */
  query(peer: AuthPeer, secret: string | null): Promise<AuthState> {
    if (secret !== null) this.secret = secret;
    const o = this.options;
    return queryAnyAuthd(
      { ...peer, secret: this.secret },
      {
        addresses: o.authHttpAddresses,
        connectTimeoutMs: o.httpClientConnectTimeoutMs,
        requestTimeoutMs: o.httpClientRequestTimeoutMs,
      },
      this.clock,
    );
  }
}
