/** Exponential delay bounds, in milliseconds. */
export interface BackoffOptions {
  /** Delay after the first failure: no delay is shorter. */
  minMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

/** Jitter of up to half again (still capped), so clients that failed together do not retry together. */
export function backoffDelayMs(attempt: number, options: BackoffOptions): number {
  return jitteredDelayMs(attempt, options, Math.random);
}

/** {@link backoffDelayMs} with the jitter drawn from `random` (0 ≤ x < 1), for a pure caller. */
export function jitteredDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const exp = Math.min(options.maxMs, options.minMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(Math.min(options.maxMs, exp + random() * (exp / 2)));
}
