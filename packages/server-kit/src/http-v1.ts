import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { type GoQuery, parseGoQuery } from '@nsq-ts/protocol';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteHandlerMethod,
} from 'fastify';

/**
 * NSQ's HTTP "V1" conventions (nsq-spec §3.1), shared by nsqd and nsqlookupd: every V1 response
 * carries `X-NSQ-Content-Type: nsq; version=1.0`; objects are bare JSON as Go encodes it, strings
 * plain text, actions an empty 200 without Content-Type, errors `{"message":"CODE"}` with the
 * handler's status; unknown paths 404 NOT_FOUND, known paths with another method 405
 * METHOD_NOT_ALLOWED with `Allow`; parameters come from the query string only, parsed as Go's
 * url.ParseQuery (400 INVALID_REQUEST when that fails); bodies are read only by handlers that
 * want one.
 */

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

export type V1Handler = (req: FastifyRequest, query: GoQuery) => unknown;

export interface V1App {
  readonly app: FastifyInstance;
  /** A V1 endpoint: the handler's result or HttpError becomes NSQ's response. */
  route(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: V1Handler): void;
  /** An endpoint outside the V1 conventions (/ping, /metrics), still known to the 405 logic. */
  plain(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: RouteHandlerMethod): void;
}

/**
 * Optional bearer-token auth (an nsq-ts extension; NSQ's HTTP APIs are open). With tokens, every
 * endpoint that changes state (any method but GET) needs `Authorization: Bearer <token>`, and with
 * `reads` the GET endpoints too; otherwise 401 UNAUTHORIZED with `WWW-Authenticate: Bearer`.
 * No tokens (the default) means no check, as in NSQ.
 */
export interface HttpAuthOptions {
  readonly tokens: readonly string[];
  readonly reads?: boolean;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Equality of two secrets in time that does not depend on where they differ (or their lengths). */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * True when `header` is `Bearer <t>` for one of `tokens`. Compares SHA-256 digests with
 * timingSafeEqual and always tries every token, so the time taken says nothing of the tokens.
 */
export function bearerMatches(header: string | undefined, tokens: readonly string[]): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  const given = digest(m?.[1] ?? '');
  let ok = false;
  for (const token of tokens) {
    if (token !== '' && timingSafeEqual(given, digest(token)) && m !== null) ok = true;
  }
  return ok;
}

export function sendUnauthorized(reply: FastifyReply): FastifyReply {
  reply.header('WWW-Authenticate', 'Bearer');
  return sendError(reply, 401, 'UNAUTHORIZED');
}

export interface V1AppOptions {
  readonly auth?: HttpAuthOptions;
}

/**
 * Timeouts for every HTTP(S) server of the daemons. Node's defaults let a client dribbling its
 * request headers hold a connection for ~90 s (60 s headers timeout, checked every 30 s); NSQ's Go
 * servers have no such limit at all. Headers must arrive within 10 s, a whole request within 60 s.
 */
export const HTTP_SERVER_TIMEOUTS = {
  headersTimeout: 10_000,
  requestTimeout: 60_000,
  connectionsCheckingInterval: 1_000,
} as const;

export function createV1App(logger: { error(message: string): void }, options: V1AppOptions = {}): V1App {
  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    return503OnClosing: false,
    serverFactory: (handler) => createHttpServer(HTTP_SERVER_TIMEOUTS, handler),
  });
  const tokens = (options.auth?.tokens ?? []).filter((t) => t !== '');
  const authReads = options.auth?.reads === true;
  /** The route hook that enforces the tokens, or none when auth is off or the route is an open read. */
  function authHook(method: string) {
    if (tokens.length === 0 || (method === 'GET' && !authReads)) return undefined;
    return async (req: FastifyRequest, reply: FastifyReply) => {
      if (!bearerMatches(req.headers.authorization, tokens)) return sendUnauthorized(reply);
    };
  }
  const allowed: Array<{ pattern: RegExp; methods: string[] }> = [];

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  function allow(method: string, path: string): void {
    const source = `^${path.replace(/:[^/]+/g, '[^/]+')}$`;
    const entry = allowed.find((a) => a.pattern.source === source);
    if (entry === undefined) allowed.push({ pattern: new RegExp(source), methods: [method] });
    else entry.methods.push(method);
  }

  function describe(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
  }

  const v1: V1App = {
    app,
    route(method, path, handler) {
      allow(method, path);
      const onRequest = authHook(method);
      app.route({
        method,
        url: path,
        ...(onRequest === undefined ? {} : { onRequest }),
        handler: async (req, reply) => {
          const query = parseGoQuery((req.raw.url ?? '').split('?')[1] ?? '');
          try {
            if (query === null) throw new HttpError(400, 'INVALID_REQUEST');
            return send(reply, await handler(req, query));
          } catch (err) {
            if (err instanceof HttpError) return sendError(reply, err.status, err.code);
            logger.error(`HTTP: ${req.method} ${req.url} - ${describe(err)}`);
            return sendError(reply, 500, 'INTERNAL_ERROR');
          }
        },
      });
    },
    plain(method, path, handler) {
      allow(method, path);
      const onRequest = authHook(method);
      app.route({ method, url: path, handler, ...(onRequest === undefined ? {} : { onRequest }) });
    },
  };

  app.setNotFoundHandler((req, reply) => {
    const path = (req.raw.url ?? '').split('?')[0] ?? '';
    const entry = allowed.find((a) => a.pattern.test(path));
    if (entry !== undefined) {
      reply.header('Allow', entry.methods.join(', '));
      return sendError(reply, 405, 'METHOD_NOT_ALLOWED');
    }
    return sendError(reply, 404, 'NOT_FOUND');
  });

  app.setErrorHandler((err, req, reply) => {
    logger.error(`HTTP: ${req.method} ${req.url} - ${describe(err)}`);
    return sendError(reply, 500, 'INTERNAL_ERROR');
  });

  return v1;
}

function send(reply: FastifyReply, result: unknown): FastifyReply {
  reply.header(NSQ_HEADER, NSQ_HEADER_VALUE);
  if (result === EMPTY) return reply.code(200).send();
  if (result instanceof Text) return reply.code(200).type(TEXT_TYPE).send(result.text);
  const json = result instanceof JsonText ? result.json : goJson(result);
  return reply.code(200).type(JSON_TYPE).send(json);
}

export function sendError(reply: FastifyReply, status: number, code: string): FastifyReply {
  return reply
    .code(status)
    .header(NSQ_HEADER, NSQ_HEADER_VALUE)
    .type(JSON_TYPE)
    .send(goJson({ message: code }));
}
