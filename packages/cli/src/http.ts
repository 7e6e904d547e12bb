import { formatHostPort, parseHostPort } from '@nsq-ts/go-compat';
import { lookupProducers, NsqHttpClient, NsqHttpError, nsqBaseUrl, nsqQuery } from '@nsq-ts/http-client';
import { CliError } from './args.js';

export const REQUEST_TIMEOUT_MS = 5_000;

/** `--http-auth-token` (or $NSQ_HTTP_AUTH_TOKEN): sent as `Authorization: Bearer`; '' sends none. */
let authToken = '';
let http = new NsqHttpClient({ timeoutMs: REQUEST_TIMEOUT_MS });
export function setHttpAuthToken(token: string): void {
  authToken = token;
  http = new NsqHttpClient({ timeoutMs: REQUEST_TIMEOUT_MS, authToken });
}
/** For requests made outside nsqRequest (the tail consumer's lookupd polls). */
export function httpAuthToken(): string {
  return authToken;
}

function cliError(err: unknown): unknown {
  return err instanceof NsqHttpError ? new CliError(err.message) : err;
}

/** One nsqd/nsqlookupd HTTP request (nsq-spec §6); failures are a CliError naming the URL. */
export function nsqRequest(method: 'GET' | 'POST', address: string, path: string): Promise<unknown> {
  return withHttp((client) => client.request(method, address, path));
}

export async function withHttp<T>(call: (client: NsqHttpClient) => Promise<T>): Promise<T> {
  try {
    return await call(http);
  } catch (err) {
    throw cliError(err);
  }
}

export { nsqQuery as query };

/** Results of asking several nodes the same thing: what answered, and an error line per node that did not. */
export interface Gathered<T> {
  results: T[];
  errors: string[];
}

export async function gather<A, T>(items: readonly A[], ask: (item: A) => Promise<T>): Promise<Gathered<T>> {
  const settled = await Promise.allSettled(items.map(ask));
  const results: T[] = [];
  const errors: string[] = [];
  for (const s of settled) {
    if (s.status === 'fulfilled') results.push(s.value);
    else errors.push(s.reason instanceof Error ? s.reason.message : String(s.reason));
  }
  return { results, errors };
}

interface Peer {
  broadcast_address?: unknown;
  hostname?: unknown;
  tcp_port?: unknown;
  http_port?: unknown;
}

function peerAddress(peer: Peer, port: 'tcp_port' | 'http_port'): string | null {
  const host = [peer.broadcast_address, peer.hostname].find((h) => typeof h === 'string' && h !== '');
  const p = peer[port];
  return typeof host === 'string' && typeof p === 'number' ? formatHostPort(host, p) : null;
}

/** The nsqds producing `topic` per the lookupds, merged as nsq's clusterinfo does, as `broadcast_address:<port>`. */
export async function lookupTopicProducers(
  lookupds: readonly string[],
  topic: string,
  port: 'tcp_port' | 'http_port',
): Promise<Gathered<string>> {
  const found = await lookupProducers(http, lookupds, topic);
  const addresses = found.producers.map((p) => (port === 'tcp_port' ? p.tcpAddress : p.httpAddress));
  return { results: dedup(addresses), errors: found.errors.map((e) => e.message) };
}

/** Every nsqd the lookupds know (`/nodes`), as `broadcast_address:tcp_port`. */
export async function lookupNodes(lookupds: readonly string[]): Promise<Gathered<string>> {
  const got = await gather(lookupds, async (l) => {
    const nodes = (await nsqRequest('GET', l, '/nodes')) as { producers?: unknown } | null;
    return Array.isArray(nodes?.producers) ? (nodes.producers as Peer[]) : [];
  });
  return { results: dedup(got.results.flat().map((p) => peerAddress(p, 'tcp_port'))), errors: got.errors };
}

/** The host the user reached over HTTP (known reachable, unlike a broadcast hostname) with `/info`'s tcp_port. */
export async function nsqdTcpAddress(httpAddress: string): Promise<string> {
  const info = (await nsqRequest('GET', httpAddress, '/info')) as { tcp_port?: unknown } | null;
  if (typeof info?.tcp_port !== 'number') throw new CliError(`GET ${nsqBaseUrl(httpAddress)}/info: no tcp_port`);
  const { host } = parseHostPort(httpAddress.replace(/^https?:\/\//, ''));
  return formatHostPort(host, info.tcp_port);
}

function dedup(list: ReadonlyArray<string | null>): string[] {
  return [...new Set(list.filter((a): a is string => a !== null))];
}
