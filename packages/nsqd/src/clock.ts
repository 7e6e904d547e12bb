import { type Clock, systemClock } from '@nsq-ts/server-kit';

export { type Clock, systemClock, type TimerHandle } from '@nsq-ts/server-kit';

/**
 * A monotonic due time as Unix ms, for what must outlive the process (a deferred message's
 * due time on disk), and back. The two clocks' difference is read at each call, so a wall
 * clock step moves stored due times, never the in-process timers.
 */
export function wallFromMonotonic(monotonic: number, clock: Clock = systemClock): number {
  return monotonic - clock.monotonicMs() + clock.wallMs();
}

export function monotonicFromWall(wall: number, clock: Clock = systemClock): number {
  return wall - clock.wallMs() + clock.monotonicMs();
}

/** `systemClock.monotonicMs()`, for code that is not given a clock (yet). */
export function monotonicMs(): number {
  return performance.now();
}

/** `systemClock.wallMs()`, for code that is not given a clock (yet). */
export function wallMs(): number {
  return Date.now();
}
