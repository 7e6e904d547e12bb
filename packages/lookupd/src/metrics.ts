import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Category, filterByActive, type RegistrationDB } from './registration-db.js';

/**
 * Prometheus metrics of one lookupd (its own registry, so several lookupds in one process do not
 * collide). Gauges are computed from the registration DB at scrape time; nothing is counted on
 * the request path.
 */
export class LookupdMetrics {
  readonly registry = new Registry();

  constructor(db: RegistrationDB, activeWindow: () => { inactiveProducerTimeoutMs: number; nowMs: number }) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'nsqlookupd_producers',
      help: 'Identified nsqd connections that are not inactive (what /nodes lists).',
      registers: [this.registry],
      collect() {
        const { inactiveProducerTimeoutMs, nowMs } = activeWindow();
        this.set(filterByActive(db.findProducers(Category.Client, '', ''), inactiveProducerTimeoutMs, 0, nowMs).length);
      },
    });
    new Gauge({
      name: 'nsqlookupd_topics',
      help: 'Topic registrations (what /topics lists).',
      registers: [this.registry],
      collect() {
        this.set(db.count(Category.Topic));
      },
    });
    new Gauge({
      name: 'nsqlookupd_channels',
      help: 'Channel registrations, over all topics.',
      registers: [this.registry],
      collect() {
        this.set(db.count(Category.Channel));
      },
    });
  }
}
