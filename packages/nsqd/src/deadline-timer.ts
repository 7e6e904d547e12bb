import { monotonicMs } from './clock.js';

/**
 * One timer for a whole heap of deadlines: armed for the earliest, re-armed only when an
 * earlier deadline appears or after it fires. This replaces a timer per message.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private readonly onFire: () => void;

  constructor(onFire: () => void) {
    this.onFire = onFire;
  }

  /** Ensures the callback runs no later than monotonic time `at`. */
  arm(at: number): void {
    if (at >= this.armedAt) return;
    this.cancel();
    this.armedAt = at;
    const delay = Math.max(0, Math.ceil(at - monotonicMs()));
    this.timer = setTimeout(this.fire, delay);
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    this.onFire();
  };
}
