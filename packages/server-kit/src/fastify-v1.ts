import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { type GoQuery, parseGoQuery } from '@nsq-ts/go-compat';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { decodePath, GoRouter } from './go-router.js';
import {
  bearerMatches,
  HTTP_SERVER_TIMEOUTS,
  HttpError,
  missResponse,
  needsToken,
  UNAUTHORIZED,
  type V1AppOptions,
  type V1Response,
  v1Error,
  v1Response,
} from './http-v1.js';

/** The V1 conventions on nsqadmin's Fastify app, loaded with the first app: the daemons never load it. */

export type V1Handler = (req: FastifyRequest, query: GoQuery) => unknown;

export interface V1App {
  readonly app: FastifyInstance;
  route(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: V1Handler): void;
  /** Outside the V1 conventions (/ping, /metrics), still known to the 405 logic. */
  plain(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, handler: RouteHandlerMethod): void;
}

const require = createRequire(import.meta.url);

function send(reply: FastifyReply, r: V1Response): FastifyReply {
  return reply
    .code(r.status)
    .headers(r.headers)
    .send(r.body === '' ? undefined : r.body);
}

export function sendError(reply: FastifyReply, status: number, code: string): FastifyReply {
  return send(reply, v1Error(status, code));
}

export function sendUnauthorized(reply: FastifyReply): FastifyReply {
  return send(reply, UNAUTHORIZED);
}

export function createV1App(logger: { error(message: string): void }, options: V1AppOptions = {}): V1App {
  const Fastify = require('fastify') as typeof import('fastify').default;
  const app = Fastify({
    logger: false,
    exposeHeadRoutes: false,
    return503OnClosing: false,
    serverFactory: (handler) => createHttpServer(HTTP_SERVER_TIMEOUTS, handler),
  });
  const tokens = (options.auth?.tokens ?? []).filter((t) => t !== '');
  const reads = options.auth?.reads === true;
  /** The route hook that enforces the tokens, or none when auth is off or the route is an open read. */
  function authHook(method: string) {
    if (!needsToken(tokens, reads, method)) return undefined;
    return async (req: FastifyRequest, reply: FastifyReply) => {
      if (!bearerMatches(req.headers.authorization, tokens)) return sendUnauthorized(reply);
    };
  }
  /** The routes' shapes, for answering requests no route took as httprouter does. */
  const known = new GoRouter<true>();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  function describe(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
  }

  const v1: V1App = {
    app,
    route(method, path, handler) {
      known.add(method, path, true);
      const onRequest = authHook(method);
      app.route({
        method,
        url: path,
        ...(onRequest === undefined ? {} : { onRequest }),
        handler: async (req, reply) => {
          const query = parseGoQuery((req.raw.url ?? '').split('?')[1] ?? '');
          try {
            if (query === null) throw new HttpError(400, 'INVALID_REQUEST');
            return send(reply, v1Response(await handler(req, query)));
          } catch (err) {
            if (err instanceof HttpError) return sendError(reply, err.status, err.code);
            logger.error(`HTTP: ${req.method} ${req.url} - ${describe(err)}`);
            return sendError(reply, 500, 'INTERNAL_ERROR');
          }
        },
      });
    },
    plain(method, path, handler) {
      known.add(method, path, true);
      const onRequest = authHook(method);
      app.route({ method, url: path, handler, ...(onRequest === undefined ? {} : { onRequest }) });
    },
  };

  app.setNotFoundHandler((req, reply) => {
    const target = req.raw.url ?? '/';
    const q = target.indexOf('?');
    const path = decodePath(q < 0 ? target : target.slice(0, q)) ?? '/';
    return send(reply, missResponse(known.miss(req.method, path, q < 0 ? '' : target.slice(q + 1)), req.method));
  });

  app.setErrorHandler((err, req, reply) => {
    logger.error(`HTTP: ${req.method} ${req.url} - ${describe(err)}`);
    return sendError(reply, 500, 'INTERNAL_ERROR');
  });

  return v1;
}
