/**
 * Until when a leader may still acknowledge, from its lease's renewals alone.
 *
 * etcd sets a lease's expiry to (the time it processes a grant or keepalive) + TTL, and only ever
 * extends it (a new etcd leader re-arms every lease in full). The request was sent before etcd
 * processed it, so `sendTime + TTL` is a lower bound on the expiry, measured on our clock; less a
 * margin for clock-rate differences and for the time between a check and the bytes leaving, the
 * fence is always before etcd could delete the leader key and let another member be elected.
 *
 * One fence per term: once revoked it stays shut, so a keepalive answer that arrives after the
 * term ended cannot reopen it. Pure arithmetic over an injected monotonic clock (ms); the
 * coordinator owns the timers.
 */
export class AckFence {
  private deadlineMs = Number.NEGATIVE_INFINITY;
  private revoked = false;

  constructor(private readonly marginMs: number) {
    if (!(marginMs >= 0)) throw new RangeError(`fence margin must be >= 0 ms, got ${marginMs}`);
  }

  /** A grant or keepalive sent at `sentAtMs` came back alive with `ttlMs` left. */
  renewed(sentAtMs: number, ttlMs: number): void {
    if (this.revoked) return;
    const candidate = sentAtMs + ttlMs - this.marginMs;
    if (candidate > this.deadlineMs) this.deadlineMs = candidate;
  }

  /** The term is over: nothing may be acknowledged any more, whatever arrives later. */
  revoke(): void {
    this.revoked = true;
    this.deadlineMs = Number.NEGATIVE_INFINITY;
  }

  /** Monotonic ms until which acknowledging is safe (−Infinity when never or no longer). */
  deadline(): number {
    return this.deadlineMs;
  }

  open(nowMs: number): boolean {
    return nowMs < this.deadlineMs;
  }
}
