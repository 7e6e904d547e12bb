import { describe, expect, it } from 'vitest';
import { monotonicFromWall, wallFromMonotonic } from './clock.js';
import { ManualClock } from './clock.test-util.js';

describe('ManualClock', () => {
  it('fires timers in due order, each at its own due time, and not before', () => {
    const clock = new ManualClock();
    const seen: [string, number][] = [];
    clock.setTimer(() => seen.push(['b', clock.monotonicMs()]), 20);
    clock.setTimer(() => seen.push(['a', clock.monotonicMs()]), 10);
    clock.advance(9);
    expect(seen).toEqual([]);
    clock.advance(11);
    expect(seen).toEqual([
      ['a', 1_010],
      ['b', 1_020],
    ]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('runs a timer armed by a callback within the same advance, and never a cleared one', () => {
    const clock = new ManualClock();
    const seen: number[] = [];
    const cleared = clock.setTimer(() => seen.push(-1), 5);
    clock.clearTimer(cleared);
    clock.setTimer(() => clock.setTimer(() => seen.push(clock.monotonicMs()), 10), 10);
    clock.advance(25);
    expect(seen).toEqual([1_020]);
  });

  it('reschedules a refreshed timer from the time of the refresh, also after it fired', () => {
    const clock = new ManualClock();
    let fired = 0;
    const t = clock.setTimer(() => fired++, 10);
    clock.advance(8);
    t.refresh();
    clock.advance(8);
    expect(fired).toBe(0);
    clock.advance(2);
    expect(fired).toBe(1);
    t.refresh();
    clock.advance(10);
    expect(fired).toBe(2);
  });

  it('converts due times between the clocks, and a wall step moves only the wall side', () => {
    const clock = new ManualClock();
    const due = clock.monotonicMs() + 5_000;
    const wall = wallFromMonotonic(due, clock);
    expect(wall).toBe(clock.wallMs() + 5_000);
    clock.stepWall(3_600_000);
    expect(monotonicFromWall(wall, clock)).toBe(due - 3_600_000);
    expect(clock.monotonicMs()).toBe(1_000);
  });
});
