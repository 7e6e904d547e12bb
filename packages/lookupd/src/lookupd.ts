import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { createLogger, type Logger, parseHostPort } from '@nsq-ts/go-compat';
import { type Clock, goJson, HTTP_SERVER_TIMEOUTS, listen, systemClock } from '@nsq-ts/server-kit';
import { createHttpApi } from './http-api.js';
import type { LookupdMetrics } from './metrics.js';
import { defaultLookupdOptions, type LookupdOptions } from './options.js';
import { RegistrationDB } from './registration-db.js';
import { ClientV1, type LookupHost } from './tcp/client-v1.js';
import { lookupdVersionLine, VERSION } from './version.js';

/**
 * nsqlookupd (nsq-spec §4). Inactivity and tombstone lifetimes are judged when a request reads the
 * DB, as in NSQ; the only timers are the connections' read deadlines.
 */
export class Lookupd implements LookupHost {
  readonly options: LookupdOptions;
  readonly logger: Logger;
  readonly db = new RegistrationDB();
  /** Made on the first scrape (prom-client is loaded then, not at start-up). */
  private metricsMade: Promise<LookupdMetrics> | null = null;
  readonly clients = new Set<ClientV1>();

  private tcpServer: Server | null = null;
  private readonly rawSockets = new Set<Socket>();
  private http: HttpServer | null = null;
  private tcpBound = '';
  private httpBound = '';
  private tcpPort = 0;
  private httpPort = 0;
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    options: Partial<LookupdOptions> = {},
    readonly clock: Clock = systemClock,
  ) {
    const merged = { ...defaultLookupdOptions(), ...options };
    if (merged.broadcastAddress === '') merged.broadcastAddress = hostname();
    this.options = merged;
    this.logger = createLogger(merged.logPrefix, merged.logLevel, (line) => process.stderr.write(line));
  }

  metrics(): Promise<LookupdMetrics> {
    this.metricsMade ??= import('./metrics.js').then(
      ({ LookupdMetrics }) =>
        new LookupdMetrics(this.db, () => ({
          inactiveProducerTimeoutMs: this.options.inactiveProducerTimeoutMs,
          nowMs: this.clock.wallMs(),
        })),
    );
    return this.metricsMade;
  }

  /** `host:port` the TCP listener is bound to (after start()). */
  get tcpAddress(): string {
    return this.tcpBound;
  }

  /** `host:port` the HTTP listener is bound to (after start()). */
  get httpAddress(): string {
    return this.httpBound;
  }

  get maxIdentifyBodyBytes(): number {
    return this.options.maxIdentifyBodyBytes;
  }

  get tcpReadTimeoutMs(): number {
    return this.options.tcpReadTimeoutMs;
  }

  /** Listens on both addresses; resolves once both are bound. Idempotent. */
  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  /** Closes the listeners and every connection (their registrations go with them). Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doStart(): Promise<void> {
    this.logger.info(lookupdVersionLine());
    const onSocket = (socket: Socket) => {
      if (this.closing !== null) {
        socket.destroy();
        return;
      }
      socket.setNoDelay(true);
      this.clients.add(new ClientV1(socket, this));
    };
    // --tls-cert/--tls-key (an nsq-ts extension): the whole V1 stream, magic included, over TLS.
    const o = this.options;
    const server: Server =
      o.tlsCert !== '' && o.tlsKey !== ''
        ? createTlsServer(
            {
              allowHalfOpen: true,
              cert: readFileSync(o.tlsCert),
              key: readFileSync(o.tlsKey),
              minVersion: 'TLSv1.2',
              handshakeTimeout: 10_000,
            },
            onSocket,
          )
        : createServer({ allowHalfOpen: true }, onSocket);
    if (o.tlsCert !== '') server.on('tlsClientError', (err: Error) => this.logger.debug(`TLS: ${err.message}`));
    // Every raw connection, so close() also ends those still in a TLS handshake (half-open ones
    // included), which never reach a ClientV1.
    server.on('connection', (socket: Socket) => {
      this.rawSockets.add(socket);
      socket.once('close', () => this.rawSockets.delete(socket));
    });
    this.tcpServer = server;
    this.tcpBound = await listen(server, o.tcpAddress);
    this.tcpPort = parseHostPort(this.tcpBound).port;
    this.logger.info(`TCP: listening on ${this.tcpBound}${o.tlsCert === '' ? '' : ' (TLS)'}`);

    const http = createHttpServer(HTTP_SERVER_TIMEOUTS, createHttpApi(this));
    this.http = http;
    this.httpBound = await listen(http, o.httpAddress);
    this.httpPort = parseHostPort(this.httpBound).port;
    this.logger.info(`HTTP: listening on ${this.httpBound}`);
  }

  private async doClose(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const server = this.tcpServer;
    const closed = server === null ? Promise.resolve() : new Promise<void>((r) => server.close(() => r()));
    for (const client of [...this.clients]) client.socket.destroy();
    for (const socket of [...this.rawSockets]) socket.destroy();
    await closed;
    const http = this.http;
    if (http !== null) {
      const done = new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      await done;
    }
    if (this.metricsMade !== null) (await this.metricsMade).registry.clear();
    this.logger.info('nsqlookupd closed');
  }

  onClientClosed(client: ClientV1): void {
    this.clients.delete(client);
  }

  /** nsqlookupd's IDENTIFY reply: Go marshals a map, so the keys are sorted. */
  identifyReply(): string {
    return goJson({
      broadcast_address: this.options.broadcastAddress,
      hostname: hostname(),
      http_port: this.httpPort,
      tcp_port: this.tcpPort,
      version: VERSION,
    });
  }
}

/** Creates an nsqlookupd; call start() to listen and close() to stop (both idempotent). */
export function createLookupd(options: Partial<LookupdOptions> = {}, clock: Clock = systemClock): Lookupd {
  return new Lookupd(options, clock);
}
