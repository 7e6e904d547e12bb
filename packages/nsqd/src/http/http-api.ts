import Fastify, { type FastifyInstance } from 'fastify';

/** What the HTTP API reads from the broker. */
export interface HttpHost {
  /** null when healthy, else the reason (nsq-spec §3: `/ping` answers 500 `NOK - reason`). */
  healthError(): string | null;
}

/**
 * nsqd's HTTP API. This issue serves `/ping` for readiness checks; the full API (nsq-spec §3)
 * is built on the same instance.
 */
export function createHttpApi(host: HttpHost): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/ping', async (_request, reply) => {
    const err = host.healthError();
    reply.type('text/plain; charset=utf-8');
    if (err !== null) return reply.code(500).send(`NOK - ${err}`);
    return reply.send('OK');
  });
  return app;
}
