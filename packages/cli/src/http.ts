import { formatHostPort, parseHostPort } from '@nsq-ts/go-compat';
import { CliError } from './args.js';

/** nsqadmin's and nsq_stat's Accept header: the bare-JSON V1 replies (nsq-spec §6). */
const ACCEPT = 'application/vnd.nsq; version=1.0';
export const REQUEST_TIMEOUT_MS = 5_000;

/** `--http-auth-token` (or $NSQ_HTTP_AUTH_TOKEN): sent as `Authorization: Bearer`; '' sends none. */
let authToken = '';
export function setHttpAuthToken(token: string): void {
  authToken = token;
}
/** The token set above, for requests made outside nsqRequest (the tail consumer's lookupd polls). */
export function httpAuthToken(): string {
  return authToken;
}

function baseUrl(address: string): string {
  return (/^https?:\/\//.test(address) ? address : `http://${address}`).replace(/\/+$/, '');
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One request to an nsqd or nsqlookupd HTTP API. Resolves with the parsed JSON body (null for an
 * empty body); rejects with a CliError naming the URL for an unreachable node or a non-200 reply
 * (with NSQ's `{"message": CODE}` when there is one).
 */
export async function nsqRequest(method: 'GET' | 'POST', address: string, path: string): Promise<unknown> {
  const url = `${baseUrl(address)}${path}`;
  let res: Response;
  let text: string;
  try {
    const headers: Record<string, string> = { accept: ACCEPT };
    if (authToken !== '') headers.authorization = `Bearer ${authToken}`;
    res = await fetch(url, { method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    text = await res.text();
  } catch (err) {
    throw new CliError(`${method} ${url}: ${describeFetchError(err)}`);
  }
  let body: unknown = null;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (res.status !== 200) {
    const message = (body as { message?: unknown } | null)?.message;
    throw new CliError(
      `${method} ${url}: HTTP ${res.status} ${typeof message === 'string' ? message : text.slice(0, 200)}`,
    );
  }
  return body;
}

/** `?a=1&b=2` from the defined entries. */
export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return `?${q}`;
}

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

function peers(body: unknown, key: 'producers'): Peer[] {
  const list = (body as Record<string, unknown> | null)?.[key];
  return Array.isArray(list) ? (list as Peer[]) : [];
}

/**
 * The nsqds producing `topic`, per the lookupds' `/lookup?topic=` (404: none), as
 * `broadcast_address:<port>` without duplicates.
 */
export async function lookupTopicProducers(
  lookupds: readonly string[],
  topic: string,
  port: 'tcp_port' | 'http_port',
): Promise<Gathered<string>> {
  const got = await gather(lookupds, async (l) => {
    try {
      return peers(await nsqRequest('GET', l, `/lookup${query({ topic })}`), 'producers');
    } catch (err) {
      if (err instanceof CliError && / HTTP 404 /.test(err.message)) return [];
      throw err;
    }
  });
  return { results: dedup(got.results.flat().map((p) => peerAddress(p, port))), errors: got.errors };
}

/** Every nsqd the lookupds know (`/nodes`), as `broadcast_address:tcp_port`. */
export async function lookupNodes(lookupds: readonly string[]): Promise<Gathered<string>> {
  const got = await gather(lookupds, async (l) => {
    const nodes = (await nsqRequest('GET', l, '/nodes')) as { producers?: unknown } | null;
    return Array.isArray(nodes?.producers) ? (nodes.producers as Peer[]) : [];
  });
  return { results: dedup(got.results.flat().map((p) => peerAddress(p, 'tcp_port'))), errors: got.errors };
}

/**
 * The TCP address of the nsqd at an HTTP address: the host the user reached over HTTP (known
 * reachable, unlike a broadcast hostname) with `/info`'s tcp_port.
 */
export async function nsqdTcpAddress(httpAddress: string): Promise<string> {
  const info = (await nsqRequest('GET', httpAddress, '/info')) as { tcp_port?: unknown } | null;
  if (typeof info?.tcp_port !== 'number') throw new CliError(`GET ${baseUrl(httpAddress)}/info: no tcp_port`);
  const { host } = parseHostPort(httpAddress.replace(/^https?:\/\//, ''));
  return formatHostPort(host, info.tcp_port);
}

function dedup(list: ReadonlyArray<string | null>): string[] {
  return [...new Set(list.filter((a): a is string => a !== null))];
}
