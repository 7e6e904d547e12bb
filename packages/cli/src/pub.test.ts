import { describe, expect, it } from 'vitest';
import { rateDelayMs } from './pub.js';

describe('nsq pub --rate pacing', () => {
  it('spaces messages 1/rate seconds apart from the first, catching up after a slow stretch', () => {
    expect(rateDelayMs(0, 1_000, 0)).toBe(0); // no limit
    expect(rateDelayMs(4, 0, 0)).toBe(0); // the first leaves at once
    expect(rateDelayMs(4, 1, 0)).toBe(250);
    expect(rateDelayMs(4, 4, 100)).toBe(900); // the 5th waits for the next second
    expect(rateDelayMs(4, 4, 1_000)).toBe(0);
    expect(rateDelayMs(4, 5, 5_000)).toBe(0); // behind schedule: no wait, never negative
    // Any window of one second from the first holds at most `rate` sends.
    const rate = 8; // 125 ms apart: exact in binary floating point
    const sendTimes = Array.from({ length: 50 }, (_, n) => rateDelayMs(rate, n, 0));
    for (const t0 of sendTimes)
      expect(sendTimes.filter((t) => t >= t0 && t < t0 + 1_000).length).toBeLessThanOrEqual(rate);
  });
});
