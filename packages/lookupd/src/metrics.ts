import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { Category, filterByActive, type RegistrationDB } from './registration-db.js';

/** Its own registry, so lookupds in one process do not collide; gauges are read from the DB at scrape time. */
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
