/** A pending callback of a `Clock`. */
export interface TimerHandle {
  /** Postpones the callback by its original delay from now (Node's `timeout.refresh()`). */
  refresh(): void;
}

/** Injected so tests move a clock (`ManualClock` in @nsq-ts/test-utils) instead of sleeping. */
export interface Clock {
  /** For every deadline and due time: a wall-clock step must not expire or hold them. */
  monotonicMs(): number;
  /** For timestamps that leave the process. Date.now(): timeOrigin + now() drifts over a long uptime. */
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
