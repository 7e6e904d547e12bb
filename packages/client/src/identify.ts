import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { type IdentifyResponse, OK } from '@nsq-ts/protocol';
import { HOSTNAME, IDENTIFY_DEFAULTS, NSQD_DEFAULTS, USER_AGENT, withDefaults } from './defaults.js';
import { ClientError, ClientErrorCode } from './errors.js';

/** IDENTIFY's feature options (nsq-spec §2.7); left out, nsqd's default. Upgrades in NSQ's order: TLS, compression, AUTH. */
export interface IdentifyOptions {
  /** Shown as `client_id` in nsqd's stats; defaults to the host name. */
  clientId?: string;
  /** Shown as `hostname` in nsqd's stats; defaults to `os.hostname()`. */
  hostname?: string;
  /** Shown as `user_agent` in nsqd's stats. */
  userAgent?: string;
  /** How often nsqd sends heartbeats (at least 1000 ms, at most nsqd's --max-heartbeat-interval; default 30000). */
  heartbeatIntervalMs?: number;
  /** nsqd's per-connection output buffer (64..65536 bytes, -1 for none). */
  outputBufferSize?: number;
  /** How long nsqd may hold buffered messages (ms, -1 for no timed flush). */
  outputBufferTimeoutMs?: number;
  /** How long a delivered message may stay unanswered before nsqd requeues it (ms). */
  msgTimeoutMs?: number;
  /** Deliver only about this percentage (1..99) of the channel's messages; 0 = all. */
  sampleRate?: number;
  /** `true` verifies against the system CAs; an object is passed to `tls.connect`. */
  tls?: boolean | TlsConnectionOptions;
  /** Compress both directions with snappy (framing format). Not together with `deflate`. */
  snappy?: boolean;
  /** Compress both directions with raw deflate. Not together with `snappy`. */
  deflate?: boolean;
  /** Deflate level to ask for (1..9, nsqd caps it at its --max-deflate-level; default 6). */
  deflateLevel?: number;
  /** Sent with AUTH after IDENTIFY (and the upgrades); required when nsqd has auth enabled. */
  authSecret?: string;
}

export interface Negotiated {
  maxRdyCount: number;
  msgTimeoutMs: number;
  maxMsgTimeoutMs: number;
  heartbeatIntervalMs: number;
  version: string;
  /** nsqd's --max-msg-size and --max-body-size (nsq-ts nsqd reports them at IDENTIFY; 0: unknown). */
  maxMsgSize: number;
  maxBodySize: number;
  tls: boolean;
  snappy: boolean;
  deflate: boolean;
  /** What AUTH returned (`identity`, `identity_url`, `permission_count`), null without AUTH. */
  auth: { identity: string; identityUrl: string; permissionCount: number } | null;
}

export interface Features {
  tls: boolean;
  snappy: boolean;
  deflate: boolean;
  deflateLevel: number;
  authRequired: boolean;
}

export function identifyBody(o: IdentifyOptions): Record<string, string | number | boolean> {
  const n = withDefaults(o, IDENTIFY_DEFAULTS);
  return {
    client_id: o.clientId ?? HOSTNAME,
    hostname: o.hostname ?? HOSTNAME,
    user_agent: o.userAgent ?? USER_AGENT,
    feature_negotiation: true,
    heartbeat_interval: n.heartbeatIntervalMs,
    output_buffer_size: n.outputBufferSize,
    output_buffer_timeout: n.outputBufferTimeoutMs,
    tls_v1: o.tls !== undefined && o.tls !== false,
    snappy: o.snappy === true,
    deflate: o.deflate === true,
    deflate_level: n.deflateLevel,
    sample_rate: n.sampleRate,
    msg_timeout: n.msgTimeoutMs,
  };
}

/** Throws when the reply is not an nsqd's, or withholds an upgrade `o` asked for. */
export function applyIdentifyReply(
  reply: string,
  o: IdentifyOptions,
  negotiated: Negotiated,
  address: string,
): Features {
  const heartbeat = o.heartbeatIntervalMs;
  negotiated.heartbeatIntervalMs =
    heartbeat !== undefined && heartbeat > 0 ? heartbeat : NSQD_DEFAULTS.heartbeatIntervalMs;
  if (reply === OK) {
    // No feature negotiation: NSQ's defaults apply, and nothing asked for can be had.
    if ((o.tls !== undefined && o.tls !== false) || o.snappy === true || o.deflate === true) {
      throw new ClientError(
        ClientErrorCode.Unsupported,
        `nsqd ${address} does not negotiate features: tls, snappy and deflate are unavailable`,
      );
    }
    return { tls: false, snappy: false, deflate: false, deflateLevel: NSQD_DEFAULTS.deflateLevel, authRequired: false };
  }
  let r: Partial<IdentifyResponse>;
  try {
    r = JSON.parse(reply) as Partial<IdentifyResponse>;
  } catch {
    throw notNsqd(address, 'IDENTIFY', reply);
  }
  if (typeof r !== 'object' || r === null) throw notNsqd(address, 'IDENTIFY', reply);
  const features: Features = {
    tls: r.tls_v1 === true,
    snappy: r.snappy === true,
    deflate: r.deflate === true,
    deflateLevel:
      typeof r.deflate_level === 'number' && r.deflate_level > 0 ? r.deflate_level : NSQD_DEFAULTS.deflateLevel,
    authRequired: r.auth_required === true,
  };
  // An upgrade not granted would leave the connection weaker than configured: refuse it.
  const refused = (what: string, why: string): ClientError =>
    new ClientError(ClientErrorCode.Unsupported, `nsqd ${address} refused ${what} (${why})`);
  if (o.tls !== undefined && o.tls !== false && !features.tls) {
    throw refused('TLS', 'it has no --tls-cert/--tls-key; connect without the tls option or configure nsqd');
  }
  if (o.snappy === true && !features.snappy) throw refused('snappy', 'it runs with --snappy=false');
  if (o.deflate === true && !features.deflate) throw refused('deflate', 'it runs with --deflate=false');
  if (typeof r.max_rdy_count === 'number' && r.max_rdy_count > 0) negotiated.maxRdyCount = r.max_rdy_count;
  if (typeof r.msg_timeout === 'number' && r.msg_timeout > 0) negotiated.msgTimeoutMs = r.msg_timeout;
  if (typeof r.max_msg_timeout === 'number') negotiated.maxMsgTimeoutMs = r.max_msg_timeout;
  if (typeof r.version === 'string') negotiated.version = r.version;
  if (typeof r.max_msg_size === 'number' && r.max_msg_size > 0) negotiated.maxMsgSize = r.max_msg_size;
  if (typeof r.max_body_size === 'number' && r.max_body_size > 0) negotiated.maxBodySize = r.max_body_size;
  return features;
}

/** nsqd's AUTH reply (nsq-spec §2.8), as `Negotiated.auth`. */
export function parseAuthReply(reply: string, address: string): Negotiated['auth'] {
  if (!reply.startsWith('{')) throw notNsqd(address, 'AUTH', reply);
  const r = JSON.parse(reply) as { identity?: unknown; identity_url?: unknown; permission_count?: unknown };
  return {
    identity: typeof r.identity === 'string' ? r.identity : '',
    identityUrl: typeof r.identity_url === 'string' ? r.identity_url : '',
    permissionCount: typeof r.permission_count === 'number' ? r.permission_count : 0,
  };
}

/** A handshake reply no nsqd sends: whatever answered is not an nsqd (or not one we can use). */
export function notNsqd(address: string, command: string, reply: string): ClientError {
  return new ClientError(
    ClientErrorCode.NotNsqd,
    `${address} answered ${command} with ${JSON.stringify(reply.slice(0, 100))}: is it an nsqd TCP address?`,
  );
}
