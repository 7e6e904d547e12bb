/**
 * One nsqd as a member of a replica group (docs/replication.md): it starts as a follower (its data
 * path written by the leader's stream, no NSQ client served), and when etcd elects it, it opens its
 * data path as a lone nsqd would after a crash, serves, and streams its own flushes to the others.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { bearerMatches, listen } from '@nsq-ts/server-kit';
import type { Clock } from '../clock.js';
import { createHaCoordinator, type HaCoordinator } from '../ha/coordinator.js';
import type { FileSystem } from '../log/file-system.js';
import type { Logger } from '../logger.js';
import type { NsqdOptions } from '../options.js';
import type { FlushTap } from '../store/flush-batch.js';
import { FollowerStream } from './follower-stream.js';
import { HaCounters } from './ha-counters.js';
import { HeldConnections } from './held-connections.js';
import { type BetweenFlushes, LeaderStream } from './leader-stream.js';
import { ReplicaStore, replicaLogOptions } from './replica-store.js';
import { groupSettings, type Position } from './wire.js';

/** What the member needs of its nsqd. */
export interface HaHost {
  readonly options: NsqdOptions;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly tcpAddress: string;
  readonly httpAddress: string;
  /** Opens storage with `tap` on its flushes, then the client listener and lookupd registration. */
  serve(tap: FlushTap): Promise<void>;
  /** Closes the client listener, lookupd registration and storage; forgets the topics. */
  stopServing(): Promise<void>;
  /** Runs `fn` between two flushes of the open storage. */
  between: BetweenFlushes;
}

/** `[addr]:port` → a member id: the characters etcd keys allow. */
function defaultMemberId(address: string): string {
  return address.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
}

/** How long a follower's connection waits for this member's leader stream (a newly elected member opens it within ms). */
const HOLD_FOLLOWERS_MS = 1_000;

export class HaNode {
  readonly memberId: string;
  private coordinator: HaCoordinator | null = null;
  private store: ReplicaStore | null = null;
  private follower: FollowerStream | null = null;
  private leader: LeaderStream | null = null;
  /** The data path is open as a broker's: until then an HTTP publish would go to a topic about to be replaced. */
  private serving = false;
  private server: Server | null = null;
  private readonly early = new HeldConnections(HOLD_FOLLOWERS_MS);
  /** Role changes run one at a time, in order. */
  private changes: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly maxFrameBytes: number;
  readonly counters = new HaCounters();

  constructor(
    private readonly host: HaHost,
    private readonly fs: FileSystem,
  ) {
    const o = host.options;
    this.memberId = o.haMemberId !== '' ? o.haMemberId : defaultMemberId(o.replicationAddress);
    // A batch holds at most what one flush collects; this only stops a corrupt length from allocating gigabytes.
    this.maxFrameBytes = Math.max(256 * 1024 * 1024, 4 * o.maxBodySize);
  }

  get role(): 'leader' | 'follower' {
    return this.serving ? 'leader' : 'follower';
  }

  private get dataPath(): string {
    return this.host.options.dataPath === '' ? process.cwd() : this.host.options.dataPath;
  }

  async start(): Promise<void> {
    const o = this.host.options;
    this.store = await ReplicaStore.open({
      dataPath: this.dataPath,
      log: replicaLogOptions(o, this.host.clock, this.fs),
      logger: this.host.logger,
    });
    const server = createServer((socket) => this.onFollower(socket));
    this.server = server;
    const bound = await listen(server, o.replicationAddress);
    this.host.logger.info(`REPLICATION: listening on ${bound} as ${this.memberId} of group ${o.haGroup}`);
    const coordinator = await createHaCoordinator({
      group: o.haGroup,
      memberId: this.memberId,
      etcdEndpoints: o.etcdEndpoints,
      leaseTtlSeconds: o.haLeaseTtlMs / 1_000,
      addresses: {
        replicationAddress: o.replicationAddress,
        tcpAddress: o.tcpAddress,
        httpAddress: this.host.httpAddress,
        broadcastAddress: o.broadcastAddress,
      },
      // Mid-promotion or mid-demotion it holds no data path it could serve from.
      canLead: () => this.store !== null && this.leader === null,
    });
    this.coordinator = coordinator;
    coordinator.on('elected', (term) => {
      this.counters.electionsWon++;
      this.change(() => this.promote(term.epoch));
    });
    coordinator.on('fenceExpired', ({ epoch }) => {
      // Stop acknowledging now; the listener closes with the demotion.
      this.host.logger.warn(`REPLICATION: the lease of epoch ${epoch} may have expired: no more acknowledgements`);
      this.leader?.close();
    });
    coordinator.on('deposed', ({ epoch, reason }) => {
      this.counters.leadershipLost[reason]++;
      this.change(() => this.demote(epoch, reason));
    });
    coordinator.on('leader', () => this.change(async () => this.follow()));
    coordinator.on('etcdError', ({ op, error }) => this.host.logger.warn(`HA: ${op} - ${error.message}`));
    await coordinator.start();
    this.change(async () => this.follow());
  }

  private change(step: () => Promise<void>): void {
    this.changes = this.changes.then(step).catch((err: Error) => {
      this.host.logger.error(`REPLICATION: role change failed - ${err.message}`);
    });
  }

  /** Follows the leader etcd names, unless that is this member or it already does. */
  private follow(): void {
    const leader = this.coordinator?.leader ?? null;
    if (this.closed || this.store === null || this.leader !== null) return;
    if (leader === null || leader.memberId === this.memberId) {
      this.follower?.close();
      this.follower = null;
      return;
    }
    if (this.follower?.leaderId === leader.memberId) return;
    this.follower?.close();
    const coordinator = this.coordinator as HaCoordinator;
    this.follower = new FollowerStream(
      {
        memberId: this.memberId,
        leaderId: leader.memberId,
        address: leader.replicationAddress,
        epoch: () => coordinator.epoch,
        maxFrameBytes: this.maxFrameBytes,
        settings: groupSettings(this.host.options),
        counters: this.counters,
      },
      this.store,
      this.host.logger,
    );
  }

  private async promote(epoch: number): Promise<void> {
    const store = this.store;
    if (this.closed || store === null) return;
    const startedAt = performance.now();
    this.follower?.close();
    this.follower = null;
    await store.close();
    this.store = null;
    const o = this.host.options;
    const stream = new LeaderStream(
      {
        memberId: this.memberId,
        epoch,
        start: store.position,
        ack: o.replicationAck,
        minInsync: o.minInsync,
        timeoutMs: o.replicationTimeoutMs,
        maxFrameBytes: this.maxFrameBytes,
        between: (fn) => this.host.between(fn),
        settings: groupSettings(o),
        counters: this.counters,
      },
      this.coordinator as HaCoordinator,
      this.host.logger,
    );
    this.leader = stream;
    this.early.release((socket) => stream.accept(socket));
    await this.host.serve(stream);
    this.serving = true;
    this.host.logger.info(
      `REPLICATION: leading epoch ${epoch} from seq ${store.position.seq}; serving on ${this.host.tcpAddress} after ${Math.round(performance.now() - startedAt)} ms`,
    );
  }

  private async demote(epoch: number, reason: string): Promise<void> {
    const stream = this.leader;
    if (stream === null) return;
    this.host.logger.warn(`REPLICATION: no longer leading epoch ${epoch} (${reason}); rejoining as a follower`);
    this.serving = false;
    stream.close();
    await this.host.stopServing();
    this.leader = null;
    if (this.closed) return;
    const o = this.host.options;
    this.store = await ReplicaStore.open({
      dataPath: this.dataPath,
      log: replicaLogOptions(o, this.host.clock, this.fs),
      logger: this.host.logger,
    });
    this.follow();
  }

  /**
   * Planned handover (POST /ha/handover, rolling deploys): stops serving, so the last flush reaches the
   * followers while this member still leads, then resigns in etcd preferring `target`.
   */
  async handover(target: string | undefined): Promise<void> {
    const c = this.coordinator;
    if (c === null || !this.serving) throw new Error('NOT_LEADER');
    if (target !== undefined && !(c.isr?.members.includes(target) ?? false)) throw new Error('TARGET_NOT_IN_SYNC');
    this.serving = false;
    await this.host.stopServing();
    await c.resign(target);
  }

  private onFollower(socket: Socket): void {
    const stream = this.leader;
    if (stream !== null) stream.accept(socket);
    else if (this.closed) socket.destroy();
    else this.early.hold(socket);
  }

  /** GET /ha (and the `ha` block of /stats). */
  status(): Record<string, unknown> {
    const c = this.coordinator;
    const base = {
      group: this.host.options.haGroup,
      member_id: this.memberId,
      role: this.role,
      epoch: c?.epoch ?? 0,
      leader: c?.leader?.memberId ?? null,
      in_sync: c?.isr?.members ?? [],
      members: [...(c?.members.keys() ?? [])],
      replication_ack: this.host.options.replicationAck,
      min_insync: this.host.options.minInsync,
      counters: this.counters.toJSON(),
    };
    if (this.leader !== null) {
      return { ...base, position: this.leader.position, followers: this.leader.lag() };
    }
    const f = this.follower;
    const position: Position = this.store?.position ?? { seq: 0, epoch: 0 };
    return {
      ...base,
      position,
      connected: f?.connected ?? false,
      lag_batches: f === null ? 0 : Math.max(0, f.leaderSeq - position.seq),
      last_batch_ms_ago: f === null || f.lastBatchAtMs === 0 ? -1 : Math.round(performance.now() - f.lastBatchAtMs),
      refused: f?.lastRefusal ?? '',
    };
  }

  /**
   * The HTTP API of a member: GET /ha everywhere; a follower answers /ping with what it is (503, so
   * health checks send nothing there) and serves only reads of its own status.
   */
  wrapHttp(
    api: (req: IncomingMessage, res: ServerResponse) => void,
  ): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const o = this.host.options;
      // The same --http-auth-token rules as the API's own endpoints.
      const guarded = path?.startsWith('/ha') === true && (req.method !== 'GET' || o.httpAuthReads);
      if (guarded && o.httpAuthTokens.length > 0 && !bearerMatches(req.headers.authorization, o.httpAuthTokens)) {
        json(res, 401, { message: 'UNAUTHORIZED' });
        return;
      }
      if (req.method === 'GET' && path === '/ha') {
        json(res, 200, this.status());
        return;
      }
      if (req.method === 'POST' && path === '/ha/handover') {
        const target = new URL(req.url ?? '/', 'http://x').searchParams.get('to') ?? undefined;
        this.handover(target).then(
          () => json(res, 200, { message: 'OK' }),
          (err: Error) => json(res, err.message === 'NOT_LEADER' ? 409 : 400, { message: err.message }),
        );
        return;
      }
      if (this.serving) {
        api(req, res);
        return;
      }
      if (path === '/ping') {
        res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
        const leader = this.coordinator?.leader?.memberId ?? 'none';
        res.end(`NOK - follower of ${leader} (epoch ${this.coordinator?.epoch ?? 0})`);
        return;
      }
      if (req.method === 'GET' && (path === '/info' || path === '/stats' || path === '/metrics')) {
        api(req, res);
        return;
      }
      json(res, 503, { message: 'NOT_LEADER', leader: this.coordinator?.leader?.httpAddress ?? null });
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.early.close();
    await this.changes;
    this.follower?.close();
    this.follower = null;
    this.leader?.close();
    await this.coordinator?.close();
    const server = this.server;
    if (server !== null) await new Promise<void>((r) => server.close(() => r()));
    await this.store?.close();
    this.store = null;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

export function createHaNode(host: HaHost, fs: FileSystem): HaNode {
  return new HaNode(host, fs);
}
