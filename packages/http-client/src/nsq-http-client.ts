/**
 * One client for the HTTP APIs of nsqd and nsqlookupd (nsq-spec §3.1, §6), as NSQ's own tools
 * call them (internal/http_api): `Accept: application/vnd.nsq; version=1.0`, an optional bearer
 * token, one timeout per request, and any status but 200 an error. Replies are read in both
 * shapes NSQ has used: the bare JSON of 1.x and the pre-1.0 `{"status_code", "data"}` envelope,
 * which is unwrapped.
 */

const ACCEPT = 'application/vnd.nsq; version=1.0';
/** The header by which a 1.x daemon says its body is bare JSON. */
const V1_CONTENT_TYPE = 'nsq; version=1.0';
/** How much of a non-JSON error body goes into the error message. */
const ERROR_TEXT_CHARS = 200;

export type NsqHttpMethod = 'GET' | 'POST';

export interface NsqHttpClientOptions {
  /** How long one request may take, from connecting to the last byte of the body. */
  readonly timeoutMs: number;
  /** Sent as `Authorization: Bearer` (nsq-ts's --http-auth-token); '' or absent sends none. */
  readonly authToken?: string;
}

/**
 * A request to an NSQ daemon that failed: no answer (`status` 0), a status other than 200, or
 * a reply that is not what was asked for. The message is `METHOD URL: reason`.
 */
export class NsqHttpError extends Error {
  override name = 'NsqHttpError';

  constructor(
    readonly method: NsqHttpMethod,
    /** The node as it was given (`host:port` or a URL). */
    readonly address: string,
    readonly url: string,
    /** The HTTP status; 0 when no reply came. */
    readonly status: number,
    /** NSQ's error text (`{"message":"TOPIC_NOT_FOUND"}`, or a legacy envelope's status_txt); '' if none. */
    readonly nsqMessage: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${method} ${url}: ${reason}`, options);
  }
}

/** `http://host:port` for an address that may omit the scheme (https:// is kept). */
export function nsqBaseUrl(address: string): string {
  return (/^https?:\/\//.test(address) ? address : `http://${address}`).replace(/\/+$/, '');
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

interface LegacyEnvelope {
  status_code: number;
  status_txt?: unknown;
  data: unknown;
}

function isLegacyEnvelope(body: unknown): body is LegacyEnvelope {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as LegacyEnvelope).status_code === 'number' &&
    'data' in body
  );
}

/** The JSON in `text`, `undefined` when it is none (an empty body included). */
function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export class NsqHttpClient {
  private readonly headers: Record<string, string>;

  constructor(private readonly options: NsqHttpClientOptions) {
    const token = options.authToken ?? '';
    this.headers = token === '' ? { accept: ACCEPT } : { accept: ACCEPT, authorization: `Bearer ${token}` };
  }

  /** Whether requests carry a bearer token. */
  get sendsToken(): boolean {
    return 'authorization' in this.headers;
  }

  /**
   * One request. Resolves with the reply's JSON (unwrapped from a legacy envelope), its text when
   * it is not JSON (`/pub`'s `OK`), or null for an empty body.
   */
  async request(method: NsqHttpMethod, address: string, pathAndQuery: string): Promise<unknown> {
    const url = `${nsqBaseUrl(address)}${pathAndQuery}`;
    const fail = (status: number, nsqMessage: string, reason: string, cause?: unknown): NsqHttpError =>
      new NsqHttpError(method, address, url, status, nsqMessage, reason, cause === undefined ? undefined : { cause });
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { method, headers: this.headers, signal: AbortSignal.timeout(this.options.timeoutMs) });
      text = await res.text();
    } catch (err) {
      throw fail(0, '', fetchFailure(err, this.options.timeoutMs), err);
    }
    let body = parseJson(text);
    const v1 = (res.headers.get('x-nsq-content-type') ?? '').trim() === V1_CONTENT_TYPE;
    if (!v1 && isLegacyEnvelope(body)) {
      // A pre-1.0 daemon: errors came as 500s with the code in status_txt.
      const code = typeof body.status_txt === 'string' ? body.status_txt : '';
      if (res.status !== 200 || body.status_code !== 200) {
        throw fail(res.status, code, `HTTP ${res.status === 200 ? body.status_code : res.status} ${code}`.trim());
      }
      body = body.data;
    }
    if (res.status !== 200) {
      const message = (body as { message?: unknown } | undefined)?.message;
      const code = typeof message === 'string' ? message : '';
      let reason = `HTTP ${res.status} ${code === '' ? text.slice(0, ERROR_TEXT_CHARS) : code}`.trim();
      // The token itself never appears, only whether one was sent.
      if (res.status === 401) reason += this.sendsToken ? ' (bearer token refused)' : ' (no bearer token sent)';
      throw fail(res.status, code, reason);
    }
    if (body !== undefined) return body;
    return text === '' ? null : text;
  }

  /** A GET whose reply must be JSON. */
  async get<T>(address: string, pathAndQuery: string): Promise<T> {
    const body = await this.request('GET', address, pathAndQuery);
    if (typeof body === 'object' && body !== null) return body as T;
    const url = `${nsqBaseUrl(address)}${pathAndQuery}`;
    throw new NsqHttpError('GET', address, url, 200, '', 'the reply is not JSON (is it an NSQ HTTP address?)');
  }

  /** A POST (create, delete, pause, …); resolves with the reply as request() does. */
  post(address: string, pathAndQuery: string): Promise<unknown> {
    return this.request('POST', address, pathAndQuery);
  }
}

/** `?a=1&b=2` from the defined entries. */
export function nsqQuery(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, v);
  return `?${search.toString()}`;
}
