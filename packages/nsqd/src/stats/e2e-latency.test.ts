import { describe, expect, it } from 'vitest';
import { E2eProcessingLatency } from './e2e-latency.js';

/** A hand-driven monotonic clock. */
function clock(startMs = 1000): { monotonicMs: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { monotonicMs: () => t, advance: (ms) => (t += ms) };
}

const MS = 1e6; // ns

function values(e2e: E2eProcessingLatency): number[] {
  return (e2e.snapshot().percentiles ?? []).map((p) => p.value);
}

describe('E2eProcessingLatency', () => {
  it('reports {count: 0, percentiles: null} without percentiles', () => {
    const e2e = new E2eProcessingLatency([], 60_000, clock());
    e2e.record(5 * MS);
    expect(e2e.snapshot()).toEqual({ count: 0, percentiles: null });
  });

  it('reports each configured quantile as 0 before any sample, in configured order', () => {
    const e2e = new E2eProcessingLatency([1, 0.99, 0.5], 60_000, clock());
    expect(e2e.snapshot()).toEqual({
      count: 0,
      percentiles: [
        { quantile: 1, value: 0 },
        { quantile: 0.99, value: 0 },
        { quantile: 0.5, value: 0 },
      ],
    });
  });

  it('reports quantiles of the samples within 1%', () => {
    const c = clock();
    const e2e = new E2eProcessingLatency([1, 0.99, 0.5], 60_000, c);
    for (let i = 1; i <= 1000; i++) e2e.record(i * MS);
    const snap = e2e.snapshot();
    expect(snap.count).toBe(1000);
    const [max, p99, p50] = values(e2e) as [number, number, number];
    expect(max).toBe(1000 * MS);
    expect(Math.abs(p99 - 990 * MS)).toBeLessThanOrEqual(990 * MS * 0.01);
    expect(Math.abs(p50 - 500 * MS)).toBeLessThanOrEqual(500 * MS * 0.01);
  });

  it('keeps between half a window and a whole window of samples', () => {
    const c = clock();
    const e2e = new E2eProcessingLatency([1], 10_000, c);
    e2e.record(100 * MS); // t = 0
    c.advance(4_000);
    e2e.record(200 * MS); // t = 4 s, same half
    c.advance(2_000);
    e2e.record(300 * MS); // t = 6 s: rotated once, the first half is still in the window
    expect(e2e.snapshot()).toEqual({ count: 3, percentiles: [{ quantile: 1, value: 300 * MS }] });
    c.advance(5_000); // t = 11 s: the half [0, 5) s is out, [5, 10) s still in
    expect(e2e.snapshot().count).toBe(1);
    expect(values(e2e)).toEqual([300 * MS]);
    e2e.record(50 * MS);
    expect(e2e.snapshot().count).toBe(2);
    expect(values(e2e)).toEqual([300 * MS]);
    c.advance(5_000); // t = 16 s: only [10, 15) remains
    expect(e2e.snapshot().count).toBe(1);
    expect(values(e2e)).toEqual([50 * MS]);
    c.advance(60 * 60_000); // long idle: everything is gone, in one step
    expect(e2e.snapshot()).toEqual({ count: 0, percentiles: [{ quantile: 1, value: 0 }] });
    e2e.record(7 * MS);
    expect(e2e.snapshot().count).toBe(1);
  });

  it('rotates on half-window boundaries like nsqd (stale only strictly after)', () => {
    const c = clock(0);
    const e2e = new E2eProcessingLatency([1], 1000, c);
    e2e.record(1 * MS); // t = 0: slot [0, 500]
    c.advance(500);
    e2e.record(2 * MS); // t = 500: not stale yet (now == last + half), same slot
    c.advance(200);
    e2e.record(3 * MS); // t = 700: rotated, slot (500, 1000]
    c.advance(300);
    expect(e2e.snapshot().count).toBe(3); // t = 1000: nothing stale
    c.advance(1);
    expect(e2e.snapshot()).toEqual({ count: 1, percentiles: [{ quantile: 1, value: 3 * MS }] }); // [0, 500] out
    c.advance(500);
    expect(e2e.snapshot().count).toBe(0); // t = 1501: (500, 1000] out
  });

  it('merges channels by their samples, not by averaging their percentiles', () => {
    const c = clock();
    const fast = new E2eProcessingLatency([0.5, 1], 60_000, c);
    const slow = new E2eProcessingLatency([0.5, 1], 60_000, c);
    for (let i = 0; i < 900; i++) fast.record(1 * MS);
    for (let i = 0; i < 100; i++) slow.record(1000 * MS);
    const topic = E2eProcessingLatency.merge([fast, slow]);
    expect(topic.count).toBe(1000);
    const [p50, max] = (topic.percentiles ?? []).map((p) => p.value) as [number, number];
    // The median of the union is the fast channel's 1 ms; an average of medians would be ~500 ms.
    expect(Math.abs(p50 - 1 * MS)).toBeLessThanOrEqual(MS * 0.01);
    expect(max).toBe(1000 * MS);
    // Merging does not disturb the channels.
    expect(fast.snapshot().count).toBe(900);
    expect(slow.snapshot().count).toBe(100);
  });

  it('drops expired samples of every channel when merging', () => {
    const c = clock();
    const a = new E2eProcessingLatency([1], 10_000, c);
    const b = new E2eProcessingLatency([1], 10_000, c);
    a.record(900 * MS);
    c.advance(12_000);
    b.record(10 * MS);
    expect(E2eProcessingLatency.merge([a, b])).toEqual({ count: 1, percentiles: [{ quantile: 1, value: 10 * MS }] });
  });

  it('reports a topic without channels as {count: 0, percentiles: null} like nsqd', () => {
    expect(E2eProcessingLatency.merge([])).toEqual({ count: 0, percentiles: null });
  });

  it('uses the monotonic clock by default', () => {
    const e2e = new E2eProcessingLatency([0.99], 60_000, clock());
    e2e.record(3 * MS);
    expect(e2e.snapshot().count).toBe(1);
  });
});
