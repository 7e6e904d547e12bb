import type { Connection } from './connection.js';
import { Fifo } from './fifo.js';
import type { PublishRequest } from './publish-request.js';

/** Down: retrying after a failure; Failed: a permanent failure, never retried. */
export const HostState = { Idle: 0, Connecting: 1, Ready: 2, Down: 3, Failed: 4 } as const;
export type HostState = (typeof HostState)[keyof typeof HostState];

export class Host {
  readonly address: string;
  state: HostState = HostState.Idle;
  conn: Connection | null = null;
  readonly sent = new Fifo<PublishRequest>();
  /** Exponentially weighted publish round-trip time; 0 until measured (so new hosts get tried). */
  latencyMs = 0;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;
  lastError: Error | null = null;
  /** A refusal (TLS required) seen on the current connection: no reconnect once it closes. */
  refusal: Error | null = null;
  /** Set by close(): called when the last outstanding publish is answered. */
  onIdle: (() => void) | null = null;

  constructor(address: string) {
    this.address = address;
  }

  measured(rttMs: number): void {
    this.latencyMs = this.latencyMs === 0 ? rttMs : this.latencyMs * 0.8 + rttMs * 0.2;
  }

  /** Connected, accepting publishes and not backed up. */
  get usable(): boolean {
    return this.state === HostState.Ready && this.conn !== null && !this.conn.congested;
  }
}

export interface ProducerHostStatus {
  address: string;
  ready: boolean;
  /** Smoothed publish round-trip time in ms (0 until measured). */
  latencyMs: number;
  /** Consecutive connection failures. */
  failures: number;
  /** Publishes sent and not yet answered. */
  outstanding: number;
  /** The last connection error (it names the address and the cause), null while healthy. */
  lastError: string | null;
  /** True after a failure no retry can fix (TLS refused, AUTH failed, …): the host is not retried. */
  failed: boolean;
}

export class HostPool {
  readonly hosts: readonly Host[];
  private readonly epsilon: number;

  constructor(addresses: readonly string[], epsilon: number) {
    this.hosts = addresses.map((a) => new Host(a));
    this.epsilon = epsilon;
  }

  /** Epsilon-greedy: usually the lowest-latency usable host, sometimes a random one to re-measure. */
  choose(): Host | null {
    let best: Host | null = null;
    let usable = 0;
    for (const h of this.hosts) {
      if (!h.usable) continue;
      usable++;
      if (best === null || h.latencyMs < best.latencyMs) best = h;
    }
    if (usable > 1 && Math.random() < this.epsilon) {
      let pick = Math.floor(Math.random() * usable);
      for (const h of this.hosts) {
        if (!h.usable) continue;
        if (pick-- === 0) return h;
      }
    }
    return best;
  }

  status(): ProducerHostStatus[] {
    return this.hosts.map((h) => ({
      address: h.address,
      ready: h.state === HostState.Ready,
      latencyMs: h.latencyMs,
      failures: h.failures,
      outstanding: h.sent.length,
      lastError: h.lastError?.message ?? null,
      failed: h.state === HostState.Failed,
    }));
  }
}
