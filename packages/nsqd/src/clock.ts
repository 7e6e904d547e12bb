/** A pending callback of a `Clock`. */
export interface TimerHandle {
  /** Postpones the callback by its original delay from now (Node's `timeout.refresh()`). */
  refresh(): void;
}

/**
 * Time as the broker sees it, injected through its context so the core structures can be tested
 * with a clock the test moves (`ManualClock` in clock.test-util.ts) instead of sleeps.
 */
export interface Clock {
  /**
   * Monotonic milliseconds for every deadline and due time: wall-clock jumps (NTP steps, manual
   * changes) must not expire in-flight messages early or hold deferred ones forever.
   */
  monotonicMs(): number;
  /**
   * Wall-clock milliseconds, for timestamps that leave the process (message timestamps, stats).
   * Date.now(), not timeOrigin + now(): the latter drifts from the system clock over a long uptime.
   */
  wallMs(): number;
  /** Runs `fn` once after `delayMs`; unref'd (a timer never keeps the process alive). */
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
  setTimer(fn, delayMs) {
    const t = setTimeout(fn, delayMs);
    t.unref();
    return t;
  },
  clearTimer(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

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
