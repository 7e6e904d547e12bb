/** Typed calls for an nsq-ts replica group member (README "Replication"): GET /ha and POST /ha/handover. */
import { type NsqHttpClient, NsqHttpError, nsqQuery } from './nsq-http-client.js';

/** The leader's view of one follower. */
export interface HaFollowerLag {
  readonly member_id: string;
  readonly connected: boolean;
  readonly in_sync: boolean;
  readonly acked_seq: number;
  readonly lag_batches: number;
  readonly lag_ms: number;
  /** Why its last hello was refused ('' when it was not), e.g. settings that differ from the leader's. */
  readonly refused: string;
}

/** Why a term this member led ended (GET /ha `counters.leadership_lost`). */
export type HaDeposeReason = 'fence-expired' | 'lease-lost' | 'leader-changed' | 'fenced-write' | 'resigned' | 'closed';

/** Events since the member started: what an operator alerts on (also /metrics nsq_ha_*_total). */
export interface HaCounters {
  readonly elections_won: number;
  readonly leadership_lost: Readonly<Record<HaDeposeReason, number>>;
  /** In-sync set changes this member committed as leader. */
  readonly isr_shrinks: number;
  readonly isr_expands: number;
  readonly full_copies_served: number;
  readonly full_copies_received: number;
  /** Publishes answered E_PUB_FAILED / 503: --min-insync not met, or no longer leading. */
  readonly refused_publishes: number;
  /** Publishes left without an answer (connection closed) once the fence shut after their flush was shipped. */
  readonly unanswered_publishes: number;
  /** Replication streams refused at their hello (e.g. differing settings): sent as leader, received as follower. */
  readonly stream_refusals_sent: number;
  readonly stream_refusals_received: number;
}

/** GET /ha: one member's status, as it serves it (snake_case, as nsqd's other JSON). */
export interface HaStatus {
  readonly group: string;
  readonly member_id: string;
  readonly role: 'leader' | 'follower';
  readonly epoch: number;
  /** The leader's member id, null while there is none. */
  readonly leader: string | null;
  readonly in_sync: readonly string[];
  readonly members: readonly string[];
  readonly replication_ack: string;
  readonly min_insync: number;
  readonly counters: HaCounters;
  readonly position: { readonly seq: number; readonly epoch: number };
  /** On the leader. */
  readonly followers?: readonly HaFollowerLag[];
  /** On a follower: its stream to the leader, its own lag, ms since the last batch (-1: none yet). */
  readonly connected?: boolean;
  readonly lag_batches?: number;
  readonly last_batch_ms_ago?: number;
  readonly refused?: string;
}

/**
 * A member's status. An nsqd outside a group (no --ha-group) has no /ha: its 404 becomes an
 * NsqHttpError saying so.
 */
export async function haStatus(http: NsqHttpClient, address: string): Promise<HaStatus> {
  try {
    return await http.get<HaStatus>(address, '/ha');
  } catch (err) {
    if (err instanceof NsqHttpError && err.status === 404) {
      throw new NsqHttpError(
        'GET',
        address,
        err.url,
        404,
        err.nsqMessage,
        'not a replica group member (no --ha-group)',
      );
    }
    throw err;
  }
}

/**
 * Planned handover: the leader at `address` stops serving and resigns, preferring `to` (an in-sync
 * member) as the next leader. Refusals: 409 NOT_LEADER, 400 TARGET_NOT_IN_SYNC.
 */
export async function haHandover(http: NsqHttpClient, address: string, to?: string): Promise<void> {
  await http.post(address, `/ha/handover${to === undefined ? '' : nsqQuery({ to })}`);
}
