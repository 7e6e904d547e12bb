import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { parseHostPort } from '@nsq-ts/go-compat';
import { type Command, CommandDecoder, isEphemeralName, isValidTopicName } from '@nsq-ts/protocol';
import { HTTP_SERVER_TIMEOUTS, listen, type V1Router } from '@nsq-ts/server-kit';
import { type Clock, systemClock } from './clock.js';
import type { BrokerContext, Pumpable } from './context.js';
import { createHttpApi } from './http/http-api.js';
import { ARENA_MIN_BACKLOG, BodyArena } from './log/body-arena.js';
import { type FileSystem, nodeFileSystem } from './log/file-system.js';
import { createLogger, type Logger } from './logger.js';
import { LookupdRegistrar } from './lookup/lookupd-registrar.js';
import type { MessageRecord } from './message.js';
import type { NsqdMetrics } from './metrics/prometheus.js';
import { type StatsdPusher, startStatsd } from './metrics/statsd.js';
import { defaultNodeId } from './node-id.js';
import { defaultNsqdOptions, type LogLevel, type NsqdOptions } from './options.js';
import type { HaNode } from './replication/ha-node.js';
import type { FlushTap } from './store/flush-batch.js';
import type { StateStore, TopicState } from './store/state-store.js';
import { Storage } from './store/storage.js';
import { type ClientHost, ClientV2 } from './tcp/client-v2.js';
import type { FrameWriter } from './tcp/frame-writer.js';
import { TransportPool } from './tcp/offload/transport-pool.js';
import { protocolV2 } from './tcp/protocol-v2.js';
import { Topic } from './topic.js';
import type { TopicStore } from './topic-store.js';
import { loadTlsSettings, type TlsSettings } from './transport/tls-options.js';
import { VERSION } from './version.js';

/**
 * The broker: topics, the TCP V2 listener and the HTTP API, on one event loop. Delivery work
 * is batched per tick: events only schedule channel pumps, and every connection written to
 * during a tick is flushed once at its end.
 */
export class Nsqd implements BrokerContext, ClientHost {
  readonly options: NsqdOptions;
  readonly logger: Logger;
  readonly topics = new Map<string, Topic>();
  readonly clients = new Set<ClientV2>();
  /** Connections closed at once because --max-connections was reached. */
  refusedConnections = 0;
  private nextClientId = 1;
  /** Unix seconds of construction, as /info and /stats report it. */
  readonly startTimeS: number;

  private tcpServer: Server | null = null;
  /** The HTTP API's request listener, shared by the HTTP and HTTPS servers. */
  private httpHandler: V1Router['handle'] | null = null;
  private http: HttpServer | null = null;
  private tcpBound = '';
  private httpBound = '';
  private https: HttpServer | null = null;
  private httpsBound = '';
  /** Certificate and client-auth policy, loaded at start() when --tls-cert/--tls-key are set. */
  tls: TlsSettings | null = null;
  transportPool: TransportPool | null = null;
  private starting: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  /** Segment logs and channel state; null until start() (a broker never started is memory-only). */
  private storage: Storage | null = null;
  private registrar: LookupdRegistrar | null = null;
  private prometheus: Promise<NsqdMetrics> | null = null;
  private statsd: StatsdPusher | null = null;
  /** With --ha-group: this member of its replica group (replication/ha-node.ts); it decides when to serve. */
  private ha: HaNode | null = null;

  private pumpQueue: Pumpable[] = [];
  private dirtyWriters: FrameWriter[] = [];
  private tickScheduled = false;

  /** Time for every deadline, timestamp and timer of this broker (a test may pass its own). */
  readonly clock: Clock;
  /** Files of the data path (a test may pass one that fails). */
  private readonly fs: FileSystem;

  constructor(options: Partial<NsqdOptions> = {}, clock: Clock = systemClock, fs: FileSystem = nodeFileSystem) {
    this.clock = clock;
    this.fs = fs;
    this.startTimeS = Math.floor(clock.wallMs() / 1000);
    const merged = { ...defaultNsqdOptions(), ...options };
    if (merged.nodeId < 0) merged.nodeId = defaultNodeId();
    if (merged.broadcastAddress === '') merged.broadcastAddress = hostname();
    // A client certificate policy forces TLS on (nsq-spec §5.11).
    if (merged.tlsClientAuthPolicy !== '' && merged.tlsRequired === 'false') merged.tlsRequired = 'true';
    this.options = merged;
    this.logger = createLogger(merged.logPrefix, merged.logLevel);
  }

  /** `host:port` the TCP listener is bound to (after start()). */
  get tcpAddress(): string {
    return this.tcpBound;
  }

  /** `host:port` the HTTP listener is bound to (after start()), '' when disabled. */
  get httpAddress(): string {
    return this.httpBound;
  }

  /** `host:port` the HTTPS listener is bound to (after start()), '' when disabled. */
  get httpsAddress(): string {
    return this.httpsBound;
  }

  start(): Promise<void> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doStart(): Promise<void> {
    this.logger.info(`nsqd v1.3.0 (built w/node${process.versions.node})`);
    this.logger.info(`ID: ${this.options.nodeId}`);
    this.tls = loadTlsSettings(this.options);
    if (this.options.tlsRequired !== 'false' && this.tls === null) {
      throw new Error('cannot require TLS client connections without TLS key and cert');
    }
    const o = this.options;
    if (o.transportWorkers > 0 && (this.tls !== null || o.snappy || o.deflate)) {
      const tls = this.tls === null ? null : { ...this.tls.serverOptions, requireCert: this.tls.requireCert };
      this.transportPool = new TransportPool(o.transportWorkers, tls, this.logger);
    }
    if (o.haGroup === '') await this.openStorageAndListen(null);
    else {
      // Loaded only in a group (etcd3 with it): a lone nsqd does no replication work at all.
      const { createHaNode } = await import('./replication/ha-node.js');
      this.ha = createHaNode(this, this.fs);
    }

    if (this.options.httpAddress !== '') {
      const http = createHttpServer(HTTP_SERVER_TIMEOUTS, this.httpApi());
      this.http = http;
      this.httpBound = await listen(http, this.options.httpAddress);
      this.logger.info(`HTTP: listening on ${this.httpBound}`);
    }
    if (this.tls !== null && this.options.httpsAddress !== '') {
      const https = createHttpsServer({ ...this.tls.serverOptions, ...HTTP_SERVER_TIMEOUTS }, this.httpApi());
      this.https = https;
      this.httpsBound = await listen(https, this.options.httpsAddress);
      this.logger.info(`HTTPS: listening on ${this.httpsBound}`);
    }
    this.statsd = startStatsd(this);
    this.registrar = new LookupdRegistrar({
      logger: this.logger,
      identity: () => ({
        version: VERSION,
        tcp_port: this.options.broadcastTcpPort || parseHostPort(this.tcpBound).port,
        http_port: this.options.broadcastHttpPort || parseHostPort(this.httpBound).port,
        hostname: hostname(),
        broadcast_address: this.options.broadcastAddress,
      }),
      registrations: () => [...this.topics.values()].map((t) => ({ topic: t.name, channels: [...t.channels.keys()] })),
      httpClientConnectTimeoutMs: this.options.httpClientConnectTimeoutMs,
      httpClientRequestTimeoutMs: this.options.httpClientRequestTimeoutMs,
      lookupdHttpAuthToken: this.options.lookupdHttpAuthToken,
      lookupdTls: !this.options.lookupdTls
        ? null
        : this.options.lookupdTlsRootCaFile === ''
          ? {}
          : { ca: readFileSync(this.options.lookupdTlsRootCaFile) },
    });
    if (this.ha === null) this.registrar.setAddresses(this.options.lookupdTcpAddresses);
    else await this.ha.start();
  }

  private async openStorageAndListen(tap: FlushTap | null): Promise<void> {
    // Everything stored comes back before the first connection is accepted (nsq-spec §5.6).
    const storage = new Storage(this, this.fs, tap);
    await storage.open();
    this.storage = storage;
    // Half-open: a client that ends its side mid-command gets nsqd's error for it (ClientV2).
    const server = createServer({ allowHalfOpen: true }, (socket) => this.onConnection(socket));
    this.tcpServer = server;
    this.tcpBound = await listen(server, this.options.tcpAddress);
    this.logger.info(`TCP: listening on ${this.tcpBound}`);
  }

  /** A member elected leader: its data path opens as after a crash (in flight redelivered), then it serves. */
  async serve(tap: FlushTap): Promise<void> {
    if (this.closing !== null) return;
    await this.openStorageAndListen(tap);
    this.registrar?.setAddresses(this.options.lookupdTcpAddresses);
  }

  /** A member that stopped leading: no client, no lookupd registration, its storage closed. */
  async stopServing(): Promise<void> {
    this.registrar?.setAddresses([]);
    await this.closeClientListener();
    await this.storage?.close();
    this.storage = null;
    for (const topic of this.topics.values()) topic.close();
    this.topics.clear();
  }

  between<T>(fn: (db: StateStore, dataPath: string) => Promise<T>): Promise<T> {
    if (this.storage === null) return Promise.reject(new Error('storage is not open'));
    return this.storage.between(fn);
  }

  private async closeClientListener(): Promise<void> {
    const server = this.tcpServer;
    this.tcpServer = null;
    this.tcpBound = '';
    const closed = server === null ? Promise.resolve() : new Promise<void>((r) => server.close(() => r()));
    for (const client of [...this.clients]) client.destroy();
    await closed;
  }

  /** The HTTP API's router, one for the HTTP and the HTTPS listener (nsq-spec §5.11). */
  private httpApi(): V1Router['handle'] {
    if (this.httpHandler === null) {
      const api = createHttpApi(this);
      this.httpHandler = this.ha === null ? api : this.ha.wrapHttp(api);
    }
    return this.httpHandler;
  }

  /**
   * The Prometheus registry, made on the first scrape: prom-client's process metrics (event
   * loop monitor, GC observer) cannot be stopped, so they start only when someone scrapes, and
   * prom-client itself is loaded then, not at start-up.
   */
  metrics(): Promise<NsqdMetrics> {
    this.prometheus ??= import('./metrics/prometheus.js').then(({ createMetrics }) => createMetrics(this));
    return this.prometheus;
  }

  private async doClose(): Promise<void> {
    await this.starting?.catch(() => undefined);
    this.statsd?.stop();
    this.registrar?.close();
    await this.closeClientListener();
    await this.transportPool?.close();
    // As nsqd's listeners: closed, and no request waits for the shutdown.
    for (const http of [this.https, this.http]) {
      if (http === null) continue;
      const done = new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      await done;
    }
    // Last synced flush: queued, in-flight, requeued and deferred messages survive the restart
    // (a leader still streams it to its followers, then leaves the group).
    await this.storage?.close();
    await this.ha?.close();
    for (const topic of this.topics.values()) topic.close();
    this.topics.clear();
    this.logger.info('nsqd closed');
  }

  private onConnection(socket: Socket): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const max = this.options.maxConnections;
    if (max > 0 && this.clients.size >= max) {
      // Over --max-connections: closed at once, before a byte is read.
      this.refusedConnections++;
      if (this.refusedConnections === 1 || this.refusedConnections % 1000 === 0) {
        this.logger.warn(`TCP: ${this.refusedConnections} connection(s) refused over --max-connections=${max}`);
      }
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    const decoder = new CommandDecoder({
      maxMsgBytes: this.options.maxMsgSize,
      maxBodyBytes: this.options.maxBodySize,
      allocBody: this.allocBody,
    });
    const client = new ClientV2(this.nextClientId++, socket, this, decoder, protocolV2);
    this.clients.add(client);
    this.logger.debug(`TCP: new client(${client.remoteAddress})`);
  }

  /**
   * A mid-size publish body goes into its topic's arena while the topic holds a deep backlog in
   * memory (ARENA_MIN_BACKLOG), which only a --mem-queue-size above it allows: the default and
   * --mem-queue-size=0 keep one allocation per body. The topic is looked up only for the sizes an
   * arena takes.
   */
  private readonly allocBody = (cmd: Command, size: number): Buffer => {
    if (!BodyArena.takes(size) || cmd.name === 'IDENTIFY' || cmd.name === 'AUTH') return Buffer.allocUnsafe(size);
    const topic = this.topics.get(cmd.params[0] as string);
    if (
      topic === undefined ||
      topic.tail.length < ARENA_MIN_BACKLOG ||
      this.options.memQueueSize <= ARENA_MIN_BACKLOG
    ) {
      return Buffer.allocUnsafe(size);
    }
    return topic.bodies.alloc(size);
  };

  onClientClosed(client: ClientV2): void {
    this.clients.delete(client);
  }

  // ---- topics ----

  /** Returns the topic, creating it on first use (PUB, SUB and /pub auto-create). */
  getTopic(name: string): Topic {
    let topic = this.topics.get(name);
    if (topic === undefined) {
      if (!isValidTopicName(name)) throw new Error(`invalid topic name ${name}`);
      const store = this.storage === null || isEphemeralName(name) ? null : this.storage.freshTopic(name);
      topic = new Topic(this, name, store);
      this.topics.set(name, topic);
      this.storage?.requestFlush();
      this.logger.info(`TOPIC(${name}): created`);
      this.registrar?.topicCreated(name);
      if (this.registrar !== null && this.registrar.addresses.length > 0) this.makeLookupdChannels(topic);
    }
    return topic;
  }

  /** Pre-creates the channels lookupd knows for a new topic before it trims anything. */
  private makeLookupdChannels(topic: Topic): void {
    topic.beginStarting();
    void (this.registrar as LookupdRegistrar).channelsFor(topic.name).then((channels) => {
      if (topic.deleted) return;
      for (const channel of channels) topic.getChannel(channel);
      topic.finishStarting();
    });
  }

  /** A topic from the data path, made before the listeners start. */
  restoreTopic(name: string, store: TopicStore, state: TopicState | null): Topic {
    const topic = new Topic(this, name, store, state?.nextOffset ?? 0);
    if (state !== null) topic.restoreState(state);
    this.topics.set(name, topic);
    this.logger.info(`TOPIC(${name}): loaded (${topic.depth} queued)`);
    return topic;
  }

  onChannelCreated(topic: string, channel: string): void {
    this.registrar?.channelCreated(topic, channel);
  }

  onChannelDeleted(topic: string, channel: string): void {
    this.registrar?.channelDeleted(topic, channel);
  }

  deadLetter(topic: string, record: MessageRecord): void {
    this.getTopic(topic).appendDeadLetter(record);
  }

  deleteTopic(name: string): boolean {
    const topic = this.topics.get(name);
    if (topic === undefined) return false;
    this.topics.delete(name);
    this.storage?.dropTopic(topic);
    topic.close();
    this.logger.info(`TOPIC(${name}): deleted`);
    this.registrar?.topicDeleted(name);
    return true;
  }

  onEphemeralTopicEmpty(topic: { readonly name: string }): void {
    if (this.topics.get(topic.name) === topic) this.deleteTopic(topic.name);
  }

  haStatus(): Readonly<Record<string, unknown>> | null {
    return this.ha?.status() ?? null;
  }

  /** null when healthy, else why not (the last disk write failed). */
  healthError(): string | null {
    return this.storage?.health ?? null;
  }

  /** `PUT /config/nsqlookupd_tcp_addresses`: takes effect in the lookupd connector. */
  setLookupdTcpAddresses(addresses: string[]): void {
    this.options.lookupdTcpAddresses = [...addresses];
    this.registrar?.setAddresses(addresses);
  }

  /** `PUT /config/log_level`. */
  setLogLevel(level: LogLevel): void {
    this.options.logLevel = level;
    this.logger.level = level;
  }

  // ---- the per-tick scheduler ----

  schedulePump(channel: Pumpable): void {
    this.pumpQueue.push(channel);
    this.scheduleTick();
  }

  markDirty(writer: FrameWriter): void {
    this.dirtyWriters.push(writer);
    this.scheduleTick();
  }

  private scheduleTick(): void {
    if (!this.tickScheduled) {
      this.tickScheduled = true;
      setImmediate(this.runTick);
    }
  }

  private readonly runTick = (): void => {
    this.tickScheduled = false;
    // Pumps can schedule further pumps (a delivery frees nothing, but trims and timers can);
    // those run in the next tick so one busy channel cannot starve the loop.
    const pumps = this.pumpQueue;
    this.pumpQueue = [];
    for (const channel of pumps) channel.pump();
    const dirty = this.dirtyWriters;
    this.dirtyWriters = [];
    for (const writer of dirty) if (writer.dirty) writer.flush();
  };
}

/** Creates an nsqd; call start() to listen and close() to stop (both idempotent). */
export function createNsqd(options: Partial<NsqdOptions> = {}): Nsqd {
  return new Nsqd(options);
}
