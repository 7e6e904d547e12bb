import type { Clock, TimerHandle } from './clock.js';

/**
 * One timer for a whole heap of deadlines: armed for the earliest, re-armed only when an
 * earlier deadline appears or after it fires. This replaces a timer per message.
 */
export class DeadlineTimer {
  private timer: TimerHandle | null = null;
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly onFire: () => void,
  ) {}

  /** Ensures the callback runs no later than monotonic time `at`. */
  arm(at: number): void {
    if (at >= this.armedAt) return;
    this.cancel();
    this.armedAt = at;
    const delay = Math.max(0, Math.ceil(at - this.clock.monotonicMs()));
    this.timer = this.clock.setTimer(this.fire, delay);
  }

  cancel(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    this.onFire();
  };
}
