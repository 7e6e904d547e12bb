/**
 * Monotonic milliseconds for every deadline and due time: wall-clock jumps (NTP steps, manual
 * changes) must not expire in-flight messages early or hold deferred ones forever.
 */
export function monotonicMs(): number {
  return performance.now();
}

/** Wall-clock milliseconds, for timestamps that leave the process (message timestamps, stats). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}
