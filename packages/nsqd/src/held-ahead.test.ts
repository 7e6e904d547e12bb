import { describe, expect, it } from 'vitest';
import { HeldAhead } from './held-ahead.js';

describe('HeldAhead', () => {
  it('passes each held offset once and empties itself', () => {
    const held = new HeldAhead();
    expect([held.size, held.take(3), held.list()]).toEqual([0, false, null]);
    held.add(3);
    held.add(7);
    expect([held.size, held.has(3), held.has(4)]).toEqual([2, true, false]);
    expect([held.take(3), held.take(3), held.list()]).toEqual([true, false, [7]]);
    expect([held.take(7), held.size, held.list()]).toEqual([true, 0, null]);
  });

  it('counts and forgets what lies below a cursor jump', () => {
    const held = new HeldAhead();
    for (const o of [2, 5, 9]) held.add(o);
    expect([held.countBelow(5), held.countBelow(6), held.countBelow(100)]).toEqual([1, 2, 3]);
    held.forgetBelow(6);
    expect(held.list()).toEqual([9]);
    held.forgetBelow(10);
    expect(held.list()).toBeNull();
    held.add(1);
    held.clear();
    expect(held.size).toBe(0);
  });
});
