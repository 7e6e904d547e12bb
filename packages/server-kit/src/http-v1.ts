import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type GoQuery, parseGoDuration, parseGoQuery } from '@nsq-ts/go-compat';
import { decodePath, GoRouter, type RouteMiss, redirectBody } from './go-router.js';

/** NSQ's HTTP V1 conventions (nsq-spec §3.1), on plain node:http: no framework to load at start-up. */

const NSQ_HEADER = 'X-NSQ-Content-Type';
const NSQ_HEADER_VALUE = 'nsq; version=1.0';
export const JSON_TYPE = 'application/json; charset=utf-8';
export const TEXT_TYPE = 'text/plain; charset=utf-8';

/** An error answered as `{"message": code}` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

/** A non-negative Go duration parameter (`90s`, `1h30m`, `0`) in milliseconds, or 400 `code`. */
export function goDurationParam(text: string, code: string): number {
  let ms: number;
  try {
    ms = parseGoDuration(text);
  } catch {
    throw new HttpError(400, code);
  }
  if (ms < 0) throw new HttpError(400, code);
  return ms;
}

/** Handler results: EMPTY (empty 200), Text (plain text), JsonText (encoded JSON), or any value. */
export const EMPTY: unique symbol = Symbol('empty');
export class Text {
  constructor(readonly text: string) {}
}
export class JsonText {
  constructor(readonly json: string) {}
}

/** Go's encoding/json escapes these inside strings; JSON.stringify leaves them as they are. */
const GO_ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/** JSON text as Go's json.Marshal writes it (object keys in the order given). */
export function goJson(value: unknown): string {
  return (JSON.stringify(value) as string).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] as string);
}

export interface V1Response {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A handler's result as NSQ's RespondV1 writes it. */
export function v1Response(result: unknown): V1Response {
  if (result === EMPTY) return { status: 200, headers: { [NSQ_HEADER]: NSQ_HEADER_VALUE }, body: '' };
  if (result instanceof Text) {
    return { status: 200, headers: { [NSQ_HEADER]: NSQ_HEADER_VALUE, 'Content-Type': TEXT_TYPE }, body: result.text };
  }
  const json = result instanceof JsonText ? result.json : goJson(result);
  return { status: 200, headers: { [NSQ_HEADER]: NSQ_HEADER_VALUE, 'Content-Type': JSON_TYPE }, body: json };
}

export function v1Error(status: number, code: string): V1Response {
  return {
    status,
    headers: { [NSQ_HEADER]: NSQ_HEADER_VALUE, 'Content-Type': JSON_TYPE },
    body: goJson({ message: code }),
  };
}

/** The answer to a request no route took: redirect, OPTIONS, 405 or 404 (go-router.ts). */
export function missResponse(miss: RouteMiss, method: string): V1Response {
  switch (miss.kind) {
    case 'redirect': {
      // Go's http.Redirect: an HTML link for GET, nothing for other methods.
      if (method !== 'GET' && method !== 'HEAD')
        return { status: miss.status, headers: { Location: miss.location }, body: '' };
      return {
        status: miss.status,
        headers: { Location: miss.location, 'Content-Type': 'text/html; charset=utf-8' },
        body: method === 'GET' ? redirectBody(miss.status, miss.location) : '',
      };
    }
    case 'options':
      return { status: 200, headers: { Allow: miss.allow }, body: '' };
    case 'not-allowed': {
      const r = v1Error(405, 'METHOD_NOT_ALLOWED');
      return { ...r, headers: { Allow: miss.allow, ...r.headers } };
    }
    case 'not-found':
      return v1Error(404, 'NOT_FOUND');
  }
}

/** An nsq-ts extension (NSQ's HTTP is open): with tokens, all but GET (and GET with `reads`) need one. */
export interface HttpAuthOptions {
  readonly tokens: readonly string[];
  readonly reads?: boolean;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Time independent of where the secrets differ, or their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Tries every token, on digests, so the time taken says nothing of the tokens. */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  const given = digest(m?.[1] ?? '');
  let ok = false;
  for (const token of tokens) {
    if (token !== '' && timingSafeEqual(given, digest(token)) && m !== null) ok = true;
  }
  return ok;
}

export const UNAUTHORIZED: V1Response = (() => {
  const r = v1Error(401, 'UNAUTHORIZED');
  return { ...r, headers: { ...r.headers, 'WWW-Authenticate': 'Bearer' } };
})();

export function needsToken(tokens: readonly string[], reads: boolean, method: string): boolean {
  return tokens.length > 0 && (method !== 'GET' || reads);
}

export interface V1AppOptions {
  readonly auth?: HttpAuthOptions;
}

/** Node's defaults let dribbled headers hold a connection ~90 s (NSQ's Go servers: forever). */
export const HTTP_SERVER_TIMEOUTS = {
  headersTimeout: 10_000,
  requestTimeout: 60_000,
  connectionsCheckingInterval: 1_000,
} as const;

// ---- the daemons' router, on node:http ----

export interface V1Request {
  readonly raw: IncomingMessage;
  readonly params: Readonly<Record<string, string>>;
  /** Go's url.ParseQuery; HttpError 400 only for handlers that ask, as in NSQ. */
  query(): GoQuery;
}

export type V1Handler = (req: V1Request) => unknown;
/** An endpoint outside the V1 conventions (/ping, /metrics): it writes its own response. */
export type PlainHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface V1Router {
  /** A V1 endpoint: the handler's result or HttpError becomes NSQ's response. */
  route(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: V1Handler): void;
  plain(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: PlainHandler): void;
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface V1RouterOptions extends V1AppOptions {
  /** Runs before routing (nsqd's TLS_REQUIRED check): true when it answered the request itself. */
  readonly before?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

interface Endpoint {
  readonly run: (
    req: IncomingMessage,
    res: ServerResponse,
    params: Readonly<Record<string, string>>,
    rawQuery: string,
  ) => void;
}

export function write(res: ServerResponse, r: V1Response): void {
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

export function createV1Router(logger: { error(message: string): void }, options: V1RouterOptions = {}): V1Router {
  const router = new GoRouter<Endpoint>();
  const tokens = (options.auth?.tokens ?? []).filter((t) => t !== '');
  const reads = options.auth?.reads === true;
  const before = options.before;

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (err instanceof HttpError) {
      write(res, v1Error(err.status, err.code));
      return;
    }
    logger.error(`HTTP: ${req.method} ${req.url} - ${err instanceof Error ? err.message : String(err)}`);
    if (res.headersSent) res.destroy();
    else write(res, v1Error(500, 'INTERNAL_ERROR'));
  };

  function add(method: string, path: string, run: Endpoint['run']): void {
    const guarded = needsToken(tokens, reads, method);
    router.add(method, path, {
      run: guarded
        ? (req, res, params, rawQuery) => {
            if (bearerMatches(req.headers.authorization, tokens)) run(req, res, params, rawQuery);
            else write(res, UNAUTHORIZED);
          }
        : run,
    });
  }

  return {
    route(method, path, handler) {
      add(method, path, (raw, res, params, rawQuery) => {
        let parsed: GoQuery | null | undefined;
        const req: V1Request = {
          raw,
          params,
          query() {
            parsed ??= parseGoQuery(rawQuery);
            if (parsed === null) throw new HttpError(400, 'INVALID_REQUEST');
            return parsed;
          },
        };
        let result: unknown;
        try {
          result = handler(req);
        } catch (err) {
          fail(raw, res, err);
          return;
        }
        if (result instanceof Promise) {
          result.then(
            (value: unknown) => write(res, v1Response(value)),
            (err: unknown) => fail(raw, res, err),
          );
        } else {
          write(res, v1Response(result));
        }
      });
    },
    plain(method, path, handler) {
      add(method, path, (req, res) => {
        try {
          const done = handler(req, res);
          if (done instanceof Promise) done.catch((err: unknown) => fail(req, res, err));
        } catch (err) {
          fail(req, res, err);
        }
      });
    },
    handle(req, res) {
      if (before?.(req, res) === true) return;
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const rawPath = q < 0 ? target : target.slice(0, q);
      const rawQuery = q < 0 ? '' : target.slice(q + 1);
      const path = decodePath(rawPath);
      const method = req.method ?? 'GET';
      if (path === null) {
        // Go's server refuses a bad escape in the request line before any handler.
        res.writeHead(400, { 'Content-Type': TEXT_TYPE, Connection: 'close' });
        res.end('400 Bad Request');
        return;
      }
      const found = router.find(method, path);
      if (found !== null) found.handler.run(req, res, found.params, rawQuery);
      else write(res, missResponse(router.miss(method, path, rawQuery), method));
    },
  };
}
