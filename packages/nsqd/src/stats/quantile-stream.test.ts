import { describe, expect, it } from 'vitest';
import { QuantileStream } from './quantile-stream.js';

/** mulberry32: a small seeded PRNG so failures reproduce. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The exact value the stream approximates: rank ⌊q·(n−1)⌋ of the sorted values. */
function exact(sorted: Float64Array, q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))] as number;
}

const QUANTILES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];
/** Float slack on top of α: a value on a bucket boundary may land either side of it. */
const SLACK = 1e-9;

function expectWithin(stream: QuantileStream, sorted: Float64Array, alpha: number): void {
  for (const q of QUANTILES) {
    const want = exact(sorted, q);
    const got = stream.query(q);
    expect(Math.abs(got - want), `q=${q} want ${want} got ${got}`).toBeLessThanOrEqual(want * (alpha + SLACK));
  }
  expect(stream.query(0)).toBe(sorted[0]);
  expect(stream.query(1)).toBe(sorted[sorted.length - 1]);
}

const distributions: Array<[string, (r: () => number) => number]> = [
  ['uniform 0..1e6', (r) => r() * 1e6],
  // Latency-like: log-normal around 1 ms with a heavy tail (seconds).
  ['log-normal ns', (r) => Math.exp(13.8 + 1.5 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()))],
  ['exponential', (r) => -Math.log(1 - r()) * 5e6],
  ['integers with ties', (r) => Math.floor(r() * 20) * 1e6],
];

describe('QuantileStream', () => {
  for (const [name, draw] of distributions) {
    it(`stays within the relative error bound on ${name} data`, () => {
      const random = seeded(42);
      for (const alpha of [0.01, 0.05]) {
        const stream = new QuantileStream({ relativeAccuracy: alpha });
        const values = new Float64Array(100_000);
        for (let i = 0; i < values.length; i++) {
          values[i] = draw(random);
          stream.insert(values[i] as number);
        }
        expect(stream.count).toBe(values.length);
        expectWithin(stream, values.slice().sort(), alpha);
      }
    });
  }

  it('answers every quantile monotonically and within α, whichever end it walks from', () => {
    const random = seeded(11);
    for (const n of [1, 2, 3, 10, 1001]) {
      const s = new QuantileStream();
      const values: number[] = [];
      for (let i = 0; i < n; i++) {
        // Some zeros and some ties, so the zero bucket and shared buckets are crossed too.
        const v = random() < 0.1 ? 0 : Math.ceil(random() * 50) * 1e4;
        values.push(v);
        s.insert(v);
      }
      const sorted = Float64Array.from(values).sort();
      let last = -1;
      for (let q = 0; q <= 1; q += 0.0005) {
        const got = s.query(q);
        expect(got).toBeGreaterThanOrEqual(last);
        last = got;
        const want = exact(sorted, q);
        expect(Math.abs(got - want), `n=${n} q=${q}`).toBeLessThanOrEqual(want * (0.01 + SLACK));
      }
      const qs = [0.99, 0, 0.5, 1, 0.05];
      expect(s.queryAll(qs)).toEqual(qs.map((q) => s.query(q)));
    }
  });

  it('is exact on tiny streams at the ends and bounded in between', () => {
    const s = new QuantileStream();
    expect(s.query(0.5)).toBe(0);
    s.insert(7);
    expect(s.query(0)).toBe(7);
    expect(s.query(0.5)).toBe(7);
    expect(s.query(1)).toBe(7);
    s.insert(1000);
    expect(s.query(0.5)).toBeCloseTo(7, 0);
    expect(s.query(0.99)).toBeCloseTo(7, 0); // rank ⌊0.99·1⌋ = 0
    expect(s.query(1)).toBe(1000);
  });

  it('counts zero, negative and NaN values as 0', () => {
    const s = new QuantileStream();
    for (const v of [0, -5, Number.NaN, 0, 10]) s.insert(v);
    expect(s.count).toBe(5);
    expect(s.query(0)).toBe(0);
    expect(s.query(0.5)).toBe(0);
    expect(s.query(1)).toBe(10);
  });

  it('merges exactly: the merged summary answers like one stream fed the union', () => {
    const random = seeded(7);
    const parts = [new QuantileStream(), new QuantileStream(), new QuantileStream()];
    const whole = new QuantileStream();
    const all: number[] = [];
    // Different ranges per part, so that merging has to grow the store both ways.
    const scales = [1e3, 1e9, 1e6];
    for (let p = 0; p < parts.length; p++) {
      for (let i = 0; i < 20_000; i++) {
        const v = random() * (scales[p] as number);
        (parts[p] as QuantileStream).insert(v);
        whole.insert(v);
        all.push(v);
      }
    }
    const merged = new QuantileStream();
    for (const p of parts) merged.merge(p);
    expect(merged.count).toBe(whole.count);
    for (const q of [0, ...QUANTILES, 1]) expect(merged.query(q)).toBe(whole.query(q));
    expectWithin(merged, Float64Array.from(all).sort(), 0.01);
  });

  it('merging an empty stream changes nothing, merging into an empty one copies', () => {
    const a = new QuantileStream();
    for (let i = 1; i <= 100; i++) a.insert(i * 1000);
    const before = QUANTILES.map((q) => a.query(q));
    a.merge(new QuantileStream());
    expect(QUANTILES.map((q) => a.query(q))).toEqual(before);
    const b = new QuantileStream();
    b.merge(a);
    expect(QUANTILES.map((q) => b.query(q))).toEqual(before);
    expect(() => a.merge(new QuantileStream({ relativeAccuracy: 0.02 }))).toThrow(/accuracy/);
  });

  it('keeps memory bounded by collapsing the lowest buckets, high quantiles still within α', () => {
    const random = seeded(3);
    const s = new QuantileStream({ maxBins: 100 });
    const values = new Float64Array(50_000);
    for (let i = 0; i < values.length; i++) {
      // Twelve decades of range: far more than 100 buckets of 2%.
      values[i] = 10 ** (random() * 12);
      s.insert(values[i] as number);
    }
    const sorted = values.slice().sort();
    expect((s as unknown as { bins: Float64Array }).bins.length).toBeLessThanOrEqual(100);
    // 100 buckets of ±1% cover ~ a factor 7.3 below the max: q ≥ 0.95 is far inside that.
    for (const q of [0.95, 0.99, 0.999]) {
      const want = exact(sorted, q);
      expect(Math.abs(s.query(q) - want)).toBeLessThanOrEqual(want * (0.01 + SLACK));
    }
    // Merging a far lower stream into a full one folds it into the lowest bucket.
    const low = new QuantileStream({ maxBins: 100 });
    for (let i = 0; i < 1000; i++) low.insert(1 + i);
    s.merge(low);
    expect(s.count).toBe(51_000);
    expect(s.query(1)).toBe(sorted[sorted.length - 1]);
  });

  it('reset forgets everything and the stream is reusable', () => {
    const s = new QuantileStream();
    for (let i = 1; i <= 1000; i++) s.insert(i);
    s.reset();
    expect(s.count).toBe(0);
    expect(s.query(0.99)).toBe(0);
    for (let i = 1; i <= 10; i++) s.insert(i * 1e9);
    expect(s.count).toBe(10);
    expect(s.query(0)).toBe(1e9);
    expect(Math.abs(s.query(0.5) - 5e9)).toBeLessThanOrEqual(5e9 * 0.0101);
  });

  it('rejects nonsensical parameters', () => {
    expect(() => new QuantileStream({ relativeAccuracy: 0 })).toThrow(RangeError);
    expect(() => new QuantileStream({ relativeAccuracy: 1 })).toThrow(RangeError);
    expect(() => new QuantileStream({ maxBins: 1 })).toThrow(RangeError);
  });
});
