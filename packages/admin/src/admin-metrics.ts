import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ClusterError } from './cluster.js';

/**
 * nsqadmin's Prometheus metrics (`GET /metrics`), in its own registry so several admins in one
 * process do not collide: prom-client's process metrics, the sampler's health, and the upstream
 * calls that failed — the number an operator alerts on when nsqadmin cannot see part of the
 * cluster. Label values are upstream addresses and action names, both bounded by the cluster.
 */
export class AdminMetrics {
  readonly registry = new Registry();
  private readonly upstreamErrors: Counter<'source' | 'address'>;
  private readonly samples: Counter<'result'>;
  private readonly lastSample: Gauge;
  private readonly sampleSeconds: Gauge;
  private readonly actions: Counter<'action'>;
  private readonly refused: Counter<'reason'>;

  constructor(webSocketClients: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.upstreamErrors = new Counter({
      name: 'nsqadmin_upstream_errors_total',
      help: 'Calls to nsqd or nsqlookupd HTTP APIs that failed (refused, timed out, non-200).',
      labelNames: ['source', 'address'],
      registers,
    });
    this.samples = new Counter({
      name: 'nsqadmin_samples_total',
      help: 'Reads of the cluster by the rate sampler, by result (partial: some upstream failed).',
      labelNames: ['result'],
      registers,
    });
    this.lastSample = new Gauge({
      name: 'nsqadmin_last_sample_timestamp_seconds',
      help: 'When the rate sampler last read the cluster (Unix seconds).',
      registers,
    });
    this.sampleSeconds = new Gauge({
      name: 'nsqadmin_sample_duration_seconds',
      help: 'How long the latest read of the cluster took.',
      registers,
    });
    this.actions = new Counter({
      name: 'nsqadmin_actions_total',
      help: 'Admin actions carried out (create, pause, empty, delete, tombstone...).',
      labelNames: ['action'],
      registers,
    });
    this.refused = new Counter({
      name: 'nsqadmin_refused_requests_total',
      help: 'State-changing requests refused as possible cross-site request forgery, by reason.',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: 'nsqadmin_websocket_clients',
      help: 'Browsers connected to the live view.',
      registers,
      collect() {
        this.set(webSocketClients());
      },
    });
  }

  upstreamFailed(errors: readonly ClusterError[]): void {
    for (const e of errors) this.upstreamErrors.inc({ source: e.source, address: e.address });
  }

  sampled(at: number, durationMs: number, result: 'ok' | 'partial' | 'failed'): void {
    this.samples.inc({ result });
    if (result === 'failed') return;
    this.lastSample.set(at / 1000);
    this.sampleSeconds.set(durationMs / 1000);
  }

  acted(action: string): void {
    this.actions.inc({ action });
  }

  refusedRequest(reason: string): void {
    this.refused.inc({ reason });
  }
}
