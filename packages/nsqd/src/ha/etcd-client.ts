/** Loaded on demand: etcd3's gRPC stack costs ~110 ms of start-up an nsqd outside a replica group must not pay. */
import type { Etcd3, IOptions } from 'etcd3';

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/**
 * No retries or circuit breaker (etcd3's defaults fail fast for seconds after a partition heals); the
 * coordinator has its own deadlines and retries.
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
  /** Milliseconds. */
  readonly dialTimeoutMs?: number;
}

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
