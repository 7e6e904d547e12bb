import { monotonicMs } from '../clock.js';
import type { MemberAddresses } from './keys.js';
import type { LeaseKeeperOptions } from './lease-keeper.js';

export interface HaCoordinatorOptions {
  /** The replica group (`--ha-group`): one key prefix in etcd. */
  readonly group: string;
  /** This member's id, unique in the group and stable across restarts. */
  readonly memberId: string;
  readonly addresses: MemberAddresses;
  /** `--ha-lease-ttl` in whole seconds (etcd's unit; it raises values below its minimum). Default 5. */
  readonly leaseTtlSeconds?: number;
  /** Subtracted from every renewal's expiry bound. Default max(100 ms, TTL / 10). */
  readonly fenceMarginMs?: number;
  /** Between keepalives of both leases. Default TTL / 3. */
  readonly keepaliveIntervalMs?: number;
  /** Deadline of each etcd request other than keepalives. Default max(1 s, TTL / 2). */
  readonly requestTimeoutMs?: number;
  /** How long members other than a handover's target wait before they campaign. Default 1 s. */
  readonly handoverDelayMs?: number;
  /** Before another campaign after one failed on an etcd error. Default 500 ms. */
  readonly campaignRetryMs?: number;
  /** Campaign by itself whenever the group has no leader (default true); else only `campaign()`. */
  readonly autoCampaign?: boolean;
  /** Asked before each campaign: may this member lead now (e.g. its storage is open)? Default yes. */
  readonly canLead?: () => boolean;
  /** May this member found a group that never had a leader? Default true. */
  readonly bootstrap?: boolean;
  /** Monotonic milliseconds for the fence arithmetic. Default performance.now(). */
  readonly clock?: () => number;
  /** Root of every group's keys. Default `/nsq-ts/ha/`. */
  readonly keyPrefix?: string;
}

/** The options with every default filled in and checked. */
export interface HaSettings {
  readonly clock: () => number;
  readonly ttlSeconds: number;
  readonly fenceMarginMs: number;
  readonly keepaliveIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly handoverDelayMs: number;
  readonly campaignRetryMs: number;
  readonly autoCampaign: boolean;
  readonly canLead: () => boolean;
  readonly bootstrap: boolean;
}

export function resolveSettings(options: HaCoordinatorOptions): HaSettings {
  const ttlSeconds = options.leaseTtlSeconds ?? 5;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw new RangeError(`lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
  }
  const ttlMs = ttlSeconds * 1_000;
  const fenceMarginMs = options.fenceMarginMs ?? Math.max(100, ttlMs / 10);
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? ttlMs / 3;
  // A renewal must be sent before the previous one's fence closes, or the fence flaps shut.
  if (keepaliveIntervalMs <= 0 || keepaliveIntervalMs >= ttlMs - fenceMarginMs) {
    throw new RangeError(
      `keepalive interval ${keepaliveIntervalMs} ms must be > 0 and < TTL − fence margin (${ttlMs - fenceMarginMs} ms)`,
    );
  }
  return {
    clock: options.clock ?? monotonicMs,
    ttlSeconds,
    fenceMarginMs,
    keepaliveIntervalMs,
    requestTimeoutMs: options.requestTimeoutMs ?? Math.max(1_000, ttlMs / 2),
    handoverDelayMs: options.handoverDelayMs ?? 1_000,
    campaignRetryMs: options.campaignRetryMs ?? 500,
    autoCampaign: options.autoCampaign ?? true,
    canLead: options.canLead ?? (() => true),
    bootstrap: options.bootstrap ?? true,
  };
}

export function leaseOptions(s: HaSettings): LeaseKeeperOptions {
  return {
    ttlSeconds: s.ttlSeconds,
    intervalMs: s.keepaliveIntervalMs,
    requestTimeoutMs: s.requestTimeoutMs,
    clock: s.clock,
  };
}

/** The call options of one etcd request other than a keepalive. */
export function requestDeadline(s: HaSettings): { deadline: Date } {
  return { deadline: new Date(Date.now() + s.requestTimeoutMs) };
}
