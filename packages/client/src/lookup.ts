import { formatAddress } from './address.js';

/** The header by which an nsqlookupd ≥ 1.0 says its body is bare JSON (nsq-spec §3.1). */
const V1_CONTENT_TYPE = 'nsq; version=1.0';

interface LookupPeer {
  broadcast_address?: unknown;
  hostname?: unknown;
  address?: unknown;
  tcp_port?: unknown;
}

/**
 * A failed lookupd query: unreachable, too slow, or a reply that is neither a producer list nor
 * a 404. The message starts with the lookupd's URL.
 */
export class LookupError extends Error {
  override name = 'LookupError';
}

/** What went wrong with a fetch, in words: `connect ECONNREFUSED …` rather than `fetch failed`. */
function fetchFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `no answer within ${timeoutMs} ms`;
  }
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof AggregateError && cause.errors.length > 0) return String((cause.errors[0] as Error).message);
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** `http://host:port` for a configured lookupd address, which may omit the scheme. */
export function lookupdBaseUrl(address: string): string {
  const base = /^https?:\/\//.test(address) ? address : `http://${address}`;
  return base.replace(/\/+$/, '');
}

/**
 * Asks one nsqlookupd which nsqd nodes carry `topic` (`GET /lookup?topic=`, nsq-spec §4.2) and
 * returns their TCP addresses (`broadcast_address:tcp_port`). A 404 (TOPIC_NOT_FOUND) means no
 * producer yet: an empty list. Bodies are bare JSON when the reply carries
 * `X-NSQ-Content-Type: nsq; version=1.0`, else the pre-1.0 `{"data": …}` envelope. A non-empty
 * `authToken` goes as `Authorization: Bearer` (nsq-ts lookupd's --http-auth-token).
 */
export async function lookupProducers(
  address: string,
  topic: string,
  timeoutMs: number,
  authToken = '',
): Promise<string[]> {
  const url = `${lookupdBaseUrl(address)}/lookup?topic=${encodeURIComponent(topic)}`;
  const headers: Record<string, string> = { accept: 'application/vnd.nsq; version=1.0' };
  if (authToken !== '') headers.authorization = `Bearer ${authToken}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    text = await res.text();
  } catch (err) {
    throw new LookupError(`lookupd ${url}: ${fetchFailure(err, timeoutMs)}`, { cause: err });
  }
  if (res.status === 404) return [];
  if (res.status !== 200) throw new LookupError(`lookupd ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LookupError(`lookupd ${url}: the reply is not JSON (is it an nsqlookupd HTTP address?)`);
  }
  const v1 = (res.headers.get('x-nsq-content-type') ?? '').trim() === V1_CONTENT_TYPE;
  const payload = v1 ? parsed : (parsed as { data?: unknown } | null)?.data;
  const producers = (payload as { producers?: unknown } | null | undefined)?.producers;
  if (!Array.isArray(producers)) throw new LookupError(`lookupd ${url}: no producers list in the reply`);
  const out: string[] = [];
  for (const p of producers as LookupPeer[]) {
    // go-nsq and nsqjs connect to broadcast_address; very old lookupds only had address/hostname.
    const host = [p.broadcast_address, p.address, p.hostname].find((h) => typeof h === 'string' && h !== '');
    if (typeof host === 'string' && typeof p.tcp_port === 'number') out.push(formatAddress(host, p.tcp_port));
  }
  return out;
}
