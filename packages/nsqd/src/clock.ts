/**
 * Monotonic milliseconds for every deadline and due time: wall-clock jumps (NTP steps, manual
 * changes) must not expire in-flight messages early or hold deferred ones forever.
 */
export function monotonicMs(): number {
  return performance.now();
}

/**
 * Wall-clock milliseconds, for timestamps that leave the process (message timestamps, stats).
 * Date.now(), not timeOrigin + now(): the latter drifts from the system clock over a long uptime.
 */
export function wallMs(): number {
  return Date.now();
}
