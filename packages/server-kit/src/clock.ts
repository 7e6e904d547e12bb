/** A pending callback of a `Clock`. */
export interface TimerHandle {
  /** Postpones the callback by its original delay from now (Node's `timeout.refresh()`). */
  refresh(): void;
}

/**
 * Time as a daemon sees it, injected so tests move a clock (`ManualClock` in @nsq-ts/test-utils)
 * instead of sleeping.
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
