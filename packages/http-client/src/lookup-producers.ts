import { formatHostPort } from '@nsq-ts/go-compat';
import { type NsqHttpClient, NsqHttpError, nsqBaseUrl, nsqQuery } from './nsq-http-client.js';

/** An nsqd a lookupd lists for a topic (`/lookup`'s `producers`, nsq-spec §4.2). */
export interface LookupProducer {
  /** The host clients connect to: broadcast_address (very old lookupds: address, or hostname). */
  readonly broadcastAddress: string;
  readonly hostname: string;
  /** '' if not given. */
  readonly remoteAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly version: string;
  /** `broadcastAddress:tcpPort`, bracketed for IPv6: what consumers and publishers connect to. */
  readonly tcpAddress: string;
  readonly httpAddress: string;
}

export interface LookupResult {
  /** Every lookupd's producers, merged: one entry per broadcast address and TCP port, first seen first. */
  readonly producers: LookupProducer[];
  /** One per lookupd that could not be asked or did not reply with a producer list. */
  readonly errors: NsqHttpError[];
}

interface Peer {
  broadcast_address?: unknown;
  address?: unknown;
  hostname?: unknown;
  remote_address?: unknown;
  tcp_port?: unknown;
  http_port?: unknown;
  version?: unknown;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

function toProducer(p: Peer): LookupProducer | null {
  const host = [p.broadcast_address, p.address, p.hostname].find((h) => typeof h === 'string' && h !== '');
  if (typeof host !== 'string' || typeof p.tcp_port !== 'number') return null;
  const httpPort = typeof p.http_port === 'number' ? p.http_port : 0;
  return {
    broadcastAddress: host,
    hostname: text(p.hostname),
    remoteAddress: text(p.remote_address),
    tcpPort: p.tcp_port,
    httpPort,
    version: text(p.version),
    tcpAddress: formatHostPort(host, p.tcp_port),
    httpAddress: formatHostPort(host, httpPort),
  };
}

/** One lookupd's producers of `topic`; a topic it does not know (TOPIC_NOT_FOUND) has none. */
async function askOne(http: NsqHttpClient, lookupd: string, topic: string): Promise<LookupProducer[]> {
  const path = `/lookup${nsqQuery({ topic })}`;
  let body: { producers?: unknown };
  try {
    body = await http.get<{ producers?: unknown }>(lookupd, path);
  } catch (err) {
    if (err instanceof NsqHttpError && err.nsqMessage === 'TOPIC_NOT_FOUND') return [];
    throw err;
  }
  if (body.producers === null) return [];
  if (!Array.isArray(body.producers)) {
    throw new NsqHttpError('GET', lookupd, `${nsqBaseUrl(lookupd)}${path}`, 200, '', 'no producers list in the reply');
  }
  return (body.producers as Peer[]).map(toProducer).filter((p): p is LookupProducer => p !== null);
}

/** Every lookupd's producers of `topic`, merged as nsq's internal/clusterinfo does; a failing lookupd adds an error. */
export async function lookupProducers(
  http: NsqHttpClient,
  lookupds: readonly string[],
  topic: string,
): Promise<LookupResult> {
  const settled = await Promise.allSettled(lookupds.map((l) => askOne(http, l, topic)));
  const merged = new Map<string, LookupProducer>();
  const errors: NsqHttpError[] = [];
  for (const [i, s] of settled.entries()) {
    if (s.status === 'rejected') {
      const err = s.reason;
      errors.push(
        err instanceof NsqHttpError
          ? err
          : new NsqHttpError('GET', lookupds[i] as string, nsqBaseUrl(lookupds[i] as string), 0, '', String(err)),
      );
      continue;
    }
    for (const p of s.value) if (!merged.has(p.tcpAddress)) merged.set(p.tcpAddress, p);
  }
  return { producers: [...merged.values()], errors };
}
