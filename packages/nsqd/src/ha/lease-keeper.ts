import type { Etcd3 } from 'etcd3';

export interface LeaseKeeperOptions {
  readonly ttlSeconds: number;
  /** Milliseconds between keepalives (etcd's Go client uses TTL / 3). */
  readonly intervalMs: number;
  /** Deadline of the grant, each keepalive and the revoke. */
  readonly requestTimeoutMs: number;
  /** Monotonic ms: the send times handed to `renewed`. */
  readonly clock: () => number;
}

export interface LeaseKeeperHooks {
  /** A grant or keepalive sent at `sentAtMs` (before it left) came back alive with `ttlMs`. */
  renewed(sentAtMs: number, ttlMs: number): void;
  /** etcd says the lease is gone (expired or revoked by someone else). */
  lost(): void;
  /** A keepalive failed (timeout, connection): the lease may still be alive; the loop goes on. */
  failed(error: Error): void;
}

/** etcd's own text for a lease it does not know (expired or revoked). */
export function isLeaseNotFound(error: unknown): boolean {
  return error instanceof Error && error.message.includes('requested lease not found');
}

function deadline(ms: number): { deadline: Date } {
  return { deadline: new Date(Date.now() + ms) };
}

/**
 * One etcd lease kept alive by its own loop, so that every renewal is matched with the moment
 * its request was sent: each keepalive is its own short stream with one request and one answer
 * (etcd3's built-in loop shares one stream and reports no send times). A keepalive that hangs
 * (a partition drops packets) ends at its deadline; the next one is sent on schedule regardless.
 */
export class LeaseKeeper {
  private leaseId: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly options: LeaseKeeperOptions,
    private readonly hooks: LeaseKeeperHooks,
  ) {}

  /** The lease's id (decimal), once granted. */
  get id(): string | null {
    return this.leaseId;
  }

  /** Grants the lease and starts keeping it alive; resolves with its id. */
  async grant(): Promise<string> {
    const sentAtMs = this.options.clock();
    const res = await this.client.leaseClient.leaseGrant(
      { TTL: this.options.ttlSeconds },
      deadline(this.options.requestTimeoutMs),
    );
    if (res.error !== '' && res.error !== undefined) throw new Error(`etcd lease grant: ${res.error}`);
    this.leaseId = res.ID;
    if (this.stopped) {
      await this.revokeGranted();
      throw new Error('lease keeper stopped while granting');
    }
    this.hooks.renewed(sentAtMs, Number(res.TTL) * 1_000);
    this.timer = setInterval(this.tick, this.options.intervalMs);
    return res.ID;
  }

  /** Stops the keepalives and revokes the lease (its keys go with it); idempotent. */
  async revoke(): Promise<void> {
    this.stop();
    await this.revokeGranted();
  }

  /** Stops the keepalives only: the lease then expires by itself within its TTL. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async revokeGranted(): Promise<void> {
    const id = this.leaseId;
    if (id === null) return;
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id }, deadline(this.options.requestTimeoutMs));
    } catch (err) {
      if (!isLeaseNotFound(err)) throw err;
    }
  }

  private readonly tick = (): void => {
    this.keepaliveOnce().catch((err: Error) => {
      if (this.stopped) return;
      // etcd answers a keepalive for a lease it no longer has either with TTL 0 or with this error.
      if (isLeaseNotFound(err)) {
        this.stop();
        this.hooks.lost();
        return;
      }
      this.hooks.failed(err);
    });
  };

  private async keepaliveOnce(): Promise<void> {
    const id = this.leaseId;
    if (id === null) return;
    const sentAtMs = this.options.clock();
    const stream = await this.client.leaseClient.leaseKeepAlive(deadline(this.options.intervalMs));
    const ttlSeconds = await new Promise<string>((resolve, reject) => {
      // Stays attached: an error after the answer (the stream's own end) must not go unhandled.
      stream.on('error', reject);
      stream.on('data', (res) => resolve(res.TTL));
      stream.write({ ID: id });
    }).finally(() => stream.end());
    if (this.stopped) return;
    if (ttlSeconds === '0') {
      this.stop();
      this.hooks.lost();
      return;
    }
    this.hooks.renewed(sentAtMs, Number(ttlSeconds) * 1_000);
  }
}
