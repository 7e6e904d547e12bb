import type { Clock, TimerHandle } from '@nsq-ts/server-kit';

export class ManualTimer implements TimerHandle {
  dueAt: number;
  cleared = false;

  constructor(
    private readonly clock: ManualClock,
    readonly fn: () => void,
    readonly delayMs: number,
  ) {
    this.dueAt = clock.monotonicMs() + delayMs;
  }

  refresh(): void {
    if (this.cleared) return;
    this.dueAt = this.clock.monotonicMs() + this.delayMs;
    this.clock.schedule(this);
  }
}

/**
 * A clock that moves only when the test says so. `advance(ms)` fires every timer that falls due
 * on the way, in due order, each with the clock set to its due time (so a callback that arms a
 * new timer sees the time it would see for real).
 */
export class ManualClock implements Clock {
  private monotonic: number;
  private wall: number;
  private timers: ManualTimer[] = [];

  constructor(startWallMs = Date.UTC(2026, 0, 1), startMonotonicMs = 1_000) {
    this.wall = startWallMs;
    this.monotonic = startMonotonicMs;
  }

  monotonicMs(): number {
    return this.monotonic;
  }

  wallMs(): number {
    return this.wall;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const timer = new ManualTimer(this, fn, Math.max(0, delayMs));
    this.schedule(timer);
    return timer;
  }

  /** Puts a timer (back) among the pending ones; a fired timer that is refreshed runs again. */
  schedule(timer: ManualTimer): void {
    if (!this.timers.includes(timer)) this.timers.push(timer);
  }

  clearTimer(handle: TimerHandle): void {
    const timer = handle as ManualTimer;
    timer.cleared = true;
    this.timers = this.timers.filter((t) => t !== timer);
  }

  /** Timers not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves both clocks forward by `ms`, firing what falls due. */
  advance(ms: number): void {
    const end = this.monotonic + ms;
    for (;;) {
      let next: ManualTimer | null = null;
      for (const t of this.timers) if (t.dueAt <= end && (next === null || t.dueAt < next.dueAt)) next = t;
      if (next === null) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.wall += next.dueAt - this.monotonic;
      this.monotonic = Math.max(this.monotonic, next.dueAt);
      next.fn();
    }
    this.wall += end - this.monotonic;
    this.monotonic = end;
  }

  /** Steps the wall clock alone (an NTP step): monotonic deadlines must not move. */
  stepWall(ms: number): void {
    this.wall += ms;
  }
}
