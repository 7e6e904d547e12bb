/**
 * The etcd3 client, loaded on demand: its gRPC stack costs ~110 ms of start-up, which an nsqd
 * outside a replica group must not pay, so this module only imports etcd3's types statically.
 */
import type { Etcd3, IOptions } from 'etcd3';

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/**
 * Runs each call once, as is. etcd3's defaults retry a failed call and open a circuit breaker for
 * 5 s after three failures in a row, so calls would fail fast for seconds after a partition
 * heals; the coordinator has its own deadlines and retries and wants every call to really go out.
 */
function passThroughPolicy(): HostPolicy {
  const noListeners = () => ({ dispose: () => undefined });
  return {
    _altReturn: undefined as never,
    onSuccess: noListeners,
    onFailure: noListeners,
    execute: async (fn) => fn({ signal: new AbortController().signal }),
  };
}

/**
 * gRPC channel options: reconnect within a second once etcd is reachable again (the default
 * backoff grows to two minutes), and notice a silently dead connection (a partition drops
 * packets, it sends no RST) by keepalive pings no more often than etcd's default
 * --grpc-keepalive-min-time (5 s) permits.
 */
const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 3_000,
} as const;

export interface EtcdClientOptions {
  /** etcd client URLs, e.g. `http://127.0.0.1:2379` (NSQ-style: one --etcd-endpoints flag, comma-separated). */
  readonly endpoints: readonly string[];
  /** Milliseconds to wait for a first connection to a host. */
  readonly dialTimeoutMs?: number;
}

/** Imports etcd3 (once; later calls reuse the module) and connects a client to `endpoints`. */
export async function connectEtcd(options: EtcdClientOptions): Promise<Etcd3> {
  if (options.endpoints.length === 0) throw new Error('no etcd endpoints given');
  const { Etcd3 } = await import('etcd3');
  const policy = passThroughPolicy();
  return new Etcd3({
    hosts: [...options.endpoints],
    dialTimeout: options.dialTimeoutMs ?? 2_000,
    grpcOptions: GRPC_OPTIONS,
    faultHandling: { host: () => passThroughPolicy(), global: policy },
  });
}
