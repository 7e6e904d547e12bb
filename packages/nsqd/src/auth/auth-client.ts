/**
 * The auth server protocol (nsq-spec §5.10): nsqd asks `GET <auth>?common_name=&remote_ip=&
 * secret=&tls=` and caches the answer until its TTL runs out.
 */

import type { Clock } from '../clock.js';

export interface Authorization {
  topic: RegExp;
  channels: RegExp[];
  permissions: ReadonlySet<string>;
}

export interface AuthState {
  identity: string;
  identityUrl: string;
  /** Monotonic ms after which the authorizations must be re-queried (Go compares monotonic times). */
  expiresAtMs: number;
  authorizations: Authorization[];
}

export interface AuthRequest {
  commonName: string;
  remoteIp: string;
  secret: string;
  tls: boolean;
}

export interface AuthClientOptions {
  addresses: readonly string[];
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

const PERMISSIONS: ReadonlySet<string> = new Set(['subscribe', 'publish']);

/** `host:port` → `http://host:port/auth`; a value containing `://` is used as is. */
export function authUrl(address: string): string {
  return address.includes('://') ? address : `http://${address}/auth`;
}

/** True when `state` allows `permission` on the topic and channel (regexes are unanchored). */
export function isAllowed(
  state: AuthState,
  permission: 'subscribe' | 'publish',
  topic: string,
  channel: string,
): boolean {
  for (const a of state.authorizations) {
    if (!a.permissions.has(permission) || !a.topic.test(topic)) continue;
    for (const c of a.channels) if (c.test(channel)) return true;
  }
  return false;
}

/** Validates an auth server reply; throws on anything nsqd would refuse. */
export function parseAuthReply(body: unknown, nowMs: number): AuthState {
  if (typeof body !== 'object' || body === null) throw new Error('auth reply is not an object');
  const r = body as Record<string, unknown>;
  const ttl = r.ttl;
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new Error(`invalid ttl ${String(ttl)}`);
  const raw = Array.isArray(r.authorizations) ? r.authorizations : [];
  const authorizations: Authorization[] = raw.map((entry: unknown) => {
    const e = (entry ?? {}) as Record<string, unknown>;
    const permissions = Array.isArray(e.permissions) ? e.permissions.map(String) : [];
    for (const p of permissions) if (!PERMISSIONS.has(p)) throw new Error(`unknown permission ${p}`);
    const channels = Array.isArray(e.channels) ? e.channels.map((c) => new RegExp(String(c))) : [];
    return { topic: new RegExp(String(e.topic ?? '')), channels, permissions: new Set(permissions) };
  });
  return {
    identity: typeof r.identity === 'string' ? r.identity : '',
    identityUrl: typeof r.identity_url === 'string' ? r.identity_url : '',
    expiresAtMs: nowMs + ttl * 1000,
    authorizations,
  };
}

async function queryOne(url: string, req: AuthRequest, o: AuthClientOptions, clock: Clock): Promise<AuthState> {
  const query = new URLSearchParams({
    common_name: req.commonName,
    remote_ip: req.remoteIp,
    secret: req.secret,
    tls: req.tls ? 'true' : 'false',
  });
  const res = await fetch(`${url}?${query.toString()}`, {
    headers: { Accept: 'application/vnd.nsq; version=1.0' },
    signal: AbortSignal.timeout(o.connectTimeoutMs + o.requestTimeoutMs),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`got response ${res.status} ${text.slice(0, 200)}`);
  return parseAuthReply(JSON.parse(text), clock.monotonicMs());
}

/** Tries the auth servers from a random start until one answers (as nsqd's QueryAnyAuthd). */
export async function queryAnyAuthd(req: AuthRequest, o: AuthClientOptions, clock: Clock): Promise<AuthState> {
  const n = o.addresses.length;
  const start = Math.floor(Math.random() * n);
  let last: unknown = new Error('no auth servers');
  for (let i = 0; i < n; i++) {
    try {
      return await queryOne(authUrl(o.addresses[(start + i) % n] as string), req, o, clock);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}
