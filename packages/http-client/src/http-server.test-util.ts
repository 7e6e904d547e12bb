/** Real local HTTP servers standing in for nsqd and nsqlookupd in this package's tests. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { NsqHttpError } from './nsq-http-client.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const cleanups: Array<() => Promise<void>> = [];

/** Closes every server serve() started (an afterEach). */
export async function stopServers(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export interface TestServer {
  address: string;
  /** `METHOD path accept=… [authorization=…]` per request. */
  requests: string[];
}

export async function serve(handler: Handler): Promise<TestServer> {
  const state: TestServer = { address: '', requests: [] };
  const server = createServer((req, res) => {
    const auth = req.headers.authorization === undefined ? '' : ` authorization=${req.headers.authorization}`;
    state.requests.push(`${req.method} ${req.url} accept=${req.headers.accept}${auth}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return state;
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** The NsqHttpError `p` rejects with (fails the test when it resolves or rejects otherwise). */
export async function failure(p: Promise<unknown>): Promise<NsqHttpError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(NsqHttpError);
  return err as NsqHttpError;
}
