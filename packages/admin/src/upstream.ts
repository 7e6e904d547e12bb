/**
 * HTTP calls to nsqlookupd and nsqd, as Go's nsqadmin makes them (nsq-spec §6): NSQ's V1 Accept
 * header, the body read as bare JSON, any non-200 an error, one timeout per request.
 */

const ACCEPT = 'application/vnd.nsq; version=1.0';

/** A failed upstream call, with the address it went to. */
export class UpstreamError extends Error {
  constructor(
    readonly address: string,
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

function reason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'timed out';
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return (cause as { code?: string }).code ?? cause.message;
  return err.message;
}

export class Upstream {
  constructor(
    private readonly timeoutMs: number,
    /** `Authorization: Bearer` for nsqd's and nsqlookupd's --http-auth-token; '' sends none. */
    private readonly authToken = '',
  ) {}

  private async call(method: 'GET' | 'POST', address: string, pathAndQuery: string): Promise<string> {
    let res: Response;
    try {
      res = await fetch(`http://${address}${pathAndQuery}`, {
        method,
        headers:
          this.authToken === '' ? { Accept: ACCEPT } : { Accept: ACCEPT, Authorization: `Bearer ${this.authToken}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new UpstreamError(address, `${method} ${pathAndQuery}: ${reason(err)}`);
    }
    const text = await res.text().catch(() => '');
    if (res.status !== 200) throw new UpstreamError(address, `${method} ${pathAndQuery}: ${res.status} ${text}`.trim());
    return text;
  }

  async get<T>(address: string, pathAndQuery: string): Promise<T> {
    const text = await this.call('GET', address, pathAndQuery);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new UpstreamError(address, `GET ${pathAndQuery}: response is not JSON`);
    }
  }

  async post(address: string, pathAndQuery: string): Promise<void> {
    await this.call('POST', address, pathAndQuery);
  }
}

/** `?a=1&b=2` from the defined entries. */
export function query(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, v);
  return `?${search.toString()}`;
}
