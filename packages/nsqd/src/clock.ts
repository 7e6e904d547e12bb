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

/**
 * A monotonic due time as Unix ms, for what must outlive the process (a deferred message's
 * due time on disk), and back. The two clocks' difference is read at each call, so a wall
 * clock step moves stored due times, never the in-process timers.
 */
export function wallFromMonotonic(monotonic: number): number {
  return monotonic - performance.now() + Date.now();
}

export function monotonicFromWall(wall: number): number {
  return wall - Date.now() + performance.now();
}
