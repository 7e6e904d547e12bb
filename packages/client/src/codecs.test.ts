import { describe, expect, it, vi } from 'vitest';
import { backoffDelayMs } from './backoff.js';
import { bytesCodec, jsonCodec, msgpackCodec, rawCodec, stringCodec } from './codecs.js';

describe('codecs', () => {
  it('raw passes bytes through without copying', () => {
    const b = Buffer.from([0, 1, 255]);
    expect(rawCodec.encode(b)).toBe(b);
    expect(rawCodec.decode(b)).toBe(b);
  });

  it('bytes takes Buffers or UTF-8 strings', () => {
    expect(bytesCodec.encode('héllo')).toEqual(Buffer.from('héllo', 'utf8'));
    const b = Buffer.from('x');
    expect(bytesCodec.encode(b)).toBe(b);
  });

  it('string, json and msgpack round-trip', () => {
    expect(stringCodec.decode(stringCodec.encode('ünïcode ✓'))).toBe('ünïcode ✓');
    const value = { a: 1, b: [true, null, 'x'], c: { d: 2.5 } };
    const json = jsonCodec<typeof value>();
    expect(json.decode(json.encode(value))).toEqual(value);
    const mp = msgpackCodec<typeof value>();
    const first = mp.encode(value);
    const second = mp.encode({ ...value, a: 2 });
    // Each encoded body is its own copy, safe to queue while the next one is packed.
    expect(mp.decode(first)).toEqual(value);
    expect(mp.decode(second)).toEqual({ ...value, a: 2 });
    expect(first.length).toBeLessThan(json.encode(value).length);
  });

  it('a decode failure surfaces as a throw', () => {
    expect(() => jsonCodec().decode(Buffer.from('{nope'))).toThrow();
  });
});

describe('backoffDelayMs', () => {
  it('doubles per attempt, never below minMs nor above maxMs, jitter up to half again', () => {
    const random = vi.spyOn(Math, 'random');
    try {
      for (const r of [0, 0.5, 0.999999]) {
        random.mockReturnValue(r);
        const d1 = backoffDelayMs(1, { minMs: 100, maxMs: 1_000 });
        expect(d1).toBeGreaterThanOrEqual(100); // backoffMinDelayMs is a minimum
        expect(d1).toBeLessThanOrEqual(150);
        const d3 = backoffDelayMs(3, { minMs: 100, maxMs: 1_000 });
        expect(d3).toBeGreaterThanOrEqual(400);
        expect(d3).toBeLessThanOrEqual(600);
        expect(backoffDelayMs(50, { minMs: 100, maxMs: 1_000 })).toBe(1_000);
        expect(backoffDelayMs(4, { minMs: 100, maxMs: 1_000 })).toBeLessThanOrEqual(1_000);
      }
    } finally {
      random.mockRestore();
    }
  });
});
