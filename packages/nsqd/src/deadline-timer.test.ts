import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.test-util.js';
import { DeadlineTimer } from './deadline-timer.js';

describe('DeadlineTimer', () => {
  it('fires once at the deadline, not before', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, () => fired.push(clock.monotonicMs()));
    timer.arm(clock.monotonicMs() + 100);
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([1_100]);
    clock.advance(1_000);
    expect(fired).toEqual([1_100]);
  });

  it('keeps one timer: a later deadline does not re-arm it, an earlier one does', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, () => fired.push(clock.monotonicMs()));
    timer.arm(1_500);
    timer.arm(1_800); // later: the armed timer covers it (the callback re-arms for what is left)
    expect(clock.pendingTimers).toBe(1);
    timer.arm(1_200);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(1_000);
    expect(fired).toEqual([1_200]);
  });

  it('can be armed again from its own callback, and after it fired', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const timer = new DeadlineTimer(clock, () => {
      fired.push(clock.monotonicMs());
      if (fired.length < 3) timer.arm(clock.monotonicMs() + 10);
    });
    timer.arm(1_010);
    clock.advance(100);
    expect(fired).toEqual([1_010, 1_020, 1_030]);
    timer.arm(1_200);
    clock.advance(100);
    expect(fired).toEqual([1_010, 1_020, 1_030, 1_200]);
  });

  it('a deadline already past fires on the next turn of the clock, and cancel stops it', () => {
    const clock = new ManualClock();
    let fired = 0;
    const timer = new DeadlineTimer(clock, () => fired++);
    timer.arm(clock.monotonicMs() - 50);
    clock.advance(0);
    expect(fired).toBe(1);
    timer.arm(clock.monotonicMs() + 10);
    timer.cancel();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(100);
    expect(fired).toBe(1);
    // After a cancel any deadline arms it again.
    timer.arm(clock.monotonicMs() + 500);
    clock.advance(500);
    expect(fired).toBe(2);
  });

  it('is not moved by a wall-clock step', () => {
    const clock = new ManualClock();
    let fired = 0;
    const timer = new DeadlineTimer(clock, () => fired++);
    timer.arm(clock.monotonicMs() + 1_000);
    clock.stepWall(3_600_000);
    clock.advance(999);
    expect(fired).toBe(0);
    clock.advance(1);
    expect(fired).toBe(1);
  });
});
