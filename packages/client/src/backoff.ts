/** Exponential delay bounds, in milliseconds. */
export interface BackoffOptions {
  /** Delay after the first failure. */
  minMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

/**
 * `minMs * 2^(attempt-1)` capped at `maxMs`, then "equal jitter": a random point in the upper
 * half, so many clients that failed together do not retry together, yet none retries instantly.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions): number {
  const exp = Math.min(options.maxMs, options.minMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}
