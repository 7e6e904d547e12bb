import type { HaCounters as HaCountersJson } from '@nsq-ts/http-client';
import type { DeposeReason } from '../ha/events.js';

/** Every way a term ends (events.ts DeposeReason), so each reason is a series from the start. */
const DEPOSE_REASONS: readonly DeposeReason[] = [
  'fence-expired',
  'lease-lost',
  'leader-changed',
  'fenced-write',
  'resigned',
  'closed',
];

/**
 * What happened to one member since it started, for alerts (GET /ha `counters`, /metrics nsq_ha_*_total).
 * Plain number fields, bumped where each event happens; they outlive the terms and streams that bump them.
 */
export class HaCounters {
  electionsWon = 0;
  readonly leadershipLost: Record<DeposeReason, number>;
  /** Shrinks and expansions this member committed to etcd as leader. */
  isrShrinks = 0;
  isrExpands = 0;
  fullCopiesServed = 0;
  fullCopiesReceived = 0;
  /** Publishes answered E_PUB_FAILED / 503 because of --min-insync or the fence, before or after they were stored. */
  refusedPublishes = 0;
  /** Publishes whose connection was closed without an answer: the fence shut after their flush was shipped. */
  unansweredPublishes = 0;
  /** Replication streams refused at their hello: sent as leader, received as follower. */
  streamRefusalsSent = 0;
  streamRefusalsReceived = 0;

  constructor() {
    const lost: Partial<Record<DeposeReason, number>> = {};
    for (const r of DEPOSE_REASONS) lost[r] = 0;
    this.leadershipLost = lost as Record<DeposeReason, number>;
  }

  /** GET /ha's `counters` block (snake_case, as nsqd's other JSON). */
  toJSON(): HaCountersJson {
    return {
      elections_won: this.electionsWon,
      leadership_lost: { ...this.leadershipLost },
      isr_shrinks: this.isrShrinks,
      isr_expands: this.isrExpands,
      full_copies_served: this.fullCopiesServed,
      full_copies_received: this.fullCopiesReceived,
      refused_publishes: this.refusedPublishes,
      unanswered_publishes: this.unansweredPublishes,
      stream_refusals_sent: this.streamRefusalsSent,
      stream_refusals_received: this.streamRefusalsReceived,
    };
  }
}
