/** Client for nsqd's and nsqlookupd's HTTP APIs as NSQ's tools call them (internal/http_api); unwraps the pre-1.0 envelope. */

const ACCEPT = 'application/vnd.nsq; version=1.0';
const V1_CONTENT_TYPE = 'nsq; version=1.0';
const ERROR_TEXT_CHARS = 200;

export type NsqHttpMethod = 'GET' | 'POST';

export interface NsqHttpClientOptions {
  /** From connecting to the last byte of the body. */
  readonly timeoutMs: number;
  /** Sent as `Authorization: Bearer`; '' or absent sends none. */
  readonly authToken?: string;
}

/** No answer (`status` 0), a status other than 200, or an unexpected reply; message is `METHOD URL: reason`. */
export class NsqHttpError extends Error {
  override name = 'NsqHttpError';

  constructor(
    readonly method: NsqHttpMethod,
    readonly address: string,
    readonly url: string,
    /** 0 when no reply came. */
    readonly status: number,
    /** `{"message":"TOPIC_NOT_FOUND"}`, or a legacy envelope's status_txt; '' if none. */
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

/** `connect ECONNREFUSED …` rather than `fetch failed`. */
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

/** `undefined` when it is none (an empty body included). */
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

  get sendsToken(): boolean {
    return 'authorization' in this.headers;
  }

  /** Resolves with the JSON (unwrapped), the text when not JSON (`/pub`'s `OK`), or null for an empty body. */
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

  async get<T>(address: string, pathAndQuery: string): Promise<T> {
    const body = await this.request('GET', address, pathAndQuery);
    if (typeof body === 'object' && body !== null) return body as T;
    const url = `${nsqBaseUrl(address)}${pathAndQuery}`;
    throw new NsqHttpError('GET', address, url, 200, '', 'the reply is not JSON (is it an NSQ HTTP address?)');
  }

  post(address: string, pathAndQuery: string): Promise<unknown> {
    return this.request('POST', address, pathAndQuery);
  }
}

export function nsqQuery(params: Record<string, string | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, v);
  return `?${search.toString()}`;
}
