/**
 * A streaming quantile summary with bounded memory and a guaranteed error: DDSketch
 * (Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with Relative-Error
 * Guarantees", VLDB 2019), with a dense store that collapses its lowest buckets.
 *
 * Why not CKMS targeted quantiles (bmizerany/perks, what nsqd uses): its merge is a heuristic
 * with no error bound (perks itself says so), and nsqd's topic figure *is* a merge of its
 * channels. DDSketch merges exactly (bucket counts add up), inserts in O(1) without
 * allocating or batching, and answers every quantile, not only targeted ones.
 *
 * Guarantee: for a non-negative value stream, `query(q)` is within `relativeAccuracy`
 * (default 1%) of the exact value at rank ⌊q·(n−1)⌋ of the sorted stream, as long as no bucket
 * was collapsed — i.e. while max/min of the positive values stays below γ^maxBins (with the
 * defaults ≈ 5·10^17, so a 1 ns .. 18 years range of nanosecond latencies). Past that the
 * lowest buckets merge, which degrades only the low quantiles. q=0 and q=1 are the exact
 * minimum and maximum.
 *
 * Memory: one Float64Array spanning the buckets between the smallest and largest key seen,
 * at most `maxBins` (default 2048, 16 KiB); a 100 µs .. 10 s latency spread takes ≈ 580.
 */
export interface QuantileStreamOptions {
  /** Default 0.01. */
  relativeAccuracy?: number;
  /** Default 2048. */
  maxBins?: number;
}

const DEFAULT_RELATIVE_ACCURACY = 0.01;
const DEFAULT_MAX_BINS = 2048;
/** Extra buckets allocated when the store grows, so a drifting range does not reallocate often. */
const GROW_SLACK = 64;
const EMPTY = new Float64Array(0);

export class QuantileStream {
  readonly relativeAccuracy: number;
  readonly maxBins: number;
  /** γ = (1+α)/(1−α): bucket k holds the values in (γ^(k−1), γ^k]. */
  private readonly gamma: number;
  /** 1 / ln γ, so that key(v) = ⌈ln v · multiplier⌉. */
  private readonly multiplier: number;
  /** Counts of keys [offset, offset + bins.length); allocated on first insert. */
  private bins: Float64Array = EMPTY;
  private offset = 0;
  /** Smallest and largest non-empty key; minKey > maxKey when no positive value is held. */
  private minKey = Number.POSITIVE_INFINITY;
  private maxKey = Number.NEGATIVE_INFINITY;
  /** Values ≤ 0 (negative and NaN values are counted as 0). */
  private zeroCount = 0;
  private n = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = Number.NEGATIVE_INFINITY;

  constructor(options: QuantileStreamOptions = {}) {
    const alpha = options.relativeAccuracy ?? DEFAULT_RELATIVE_ACCURACY;
    if (!(alpha > 0 && alpha < 1)) throw new RangeError(`relativeAccuracy must be in (0, 1), got ${alpha}`);
    const maxBins = options.maxBins ?? DEFAULT_MAX_BINS;
    if (!(Number.isInteger(maxBins) && maxBins >= 2)) throw new RangeError(`maxBins must be an integer >= 2`);
    this.relativeAccuracy = alpha;
    this.maxBins = maxBins;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.multiplier = 1 / Math.log(this.gamma);
  }

  get count(): number {
    return this.n;
  }

  /** O(1), allocation-free once the store covers the value's bucket. */
  insert(value: number): void {
    // biome-ignore lint/complexity/useMathMinMax: NaN must become 0, and Math.max keeps NaN
    const v = value > 0 ? value : 0;
    this.n++;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
    if (v === 0) {
      this.zeroCount++;
      return;
    }
    this.addKey(Math.ceil(Math.log(v) * this.multiplier), 1);
  }

  /** Within `relativeAccuracy` of the exact value at rank ⌊q·(n−1)⌋; 0 when empty; walks from the nearer end. */
  query(q: number): number {
    const n = this.n;
    if (n === 0) return 0;
    if (q >= 1) return this.maxValue;
    if (q <= 0) return this.minValue;
    const rank = Math.floor(q * (n - 1));
    if (rank < this.zeroCount) return 0;
    const bins = this.bins;
    const offset = this.offset;
    const minKey = this.minKey;
    const maxKey = this.maxKey;
    if (rank < n / 2) {
      // The first bucket whose cumulative count passes the rank.
      let seen = this.zeroCount;
      for (let key = minKey; key <= maxKey; key++) {
        seen += bins[key - offset] as number;
        if (seen > rank) return this.valueOf(key);
      }
      return this.maxValue;
    }
    // From the top: `below` is the count under `key`; the rank is in `key` once below ≤ rank.
    let below = n;
    for (let key = maxKey; key >= minKey; key--) {
      below -= bins[key - offset] as number;
      if (below <= rank) return this.valueOf(key);
    }
    return this.valueOf(minKey);
  }

  queryAll(qs: readonly number[], out: number[] = []): number[] {
    for (let i = 0; i < qs.length; i++) out[i] = this.query(qs[i] as number);
    return out;
  }

  /** Bucket `key`'s value: its midpoint in relative terms, clamped to [min, max]. */
  private valueOf(key: number): number {
    const v = (2 * this.gamma ** key) / (1 + this.gamma);
    return Math.max(this.minValue, Math.min(v, this.maxValue));
  }

  /** Adds `other`'s values to this stream (exact: the result is the summary of the union). */
  merge(other: QuantileStream): void {
    if (other.gamma !== this.gamma) throw new Error('cannot merge quantile streams of different accuracy');
    if (other.n === 0) return;
    this.n += other.n;
    this.zeroCount += other.zeroCount;
    if (other.minValue < this.minValue) this.minValue = other.minValue;
    if (other.maxValue > this.maxValue) this.maxValue = other.maxValue;
    if (other.minKey > other.maxKey) return;
    // Reserve the union's range once, then add bucket by bucket (keys below the reserved
    // range, if it had to be cut to maxBins, land in its lowest bucket).
    const lo = this.reserve(other.minKey, other.maxKey);
    const src = other.bins;
    const srcOffset = other.offset;
    const dst = this.bins;
    for (let key = other.minKey; key <= other.maxKey; key++) {
      const w = src[key - srcOffset] as number;
      if (w === 0) continue;
      const k = Math.max(key, lo);
      dst[k - this.offset] = (dst[k - this.offset] as number) + w;
      if (k < this.minKey) this.minKey = k;
      if (k > this.maxKey) this.maxKey = k;
    }
  }

  /** Keeps the allocated store for reuse. */
  reset(): void {
    if (this.minKey <= this.maxKey) this.bins.fill(0, this.minKey - this.offset, this.maxKey - this.offset + 1);
    this.minKey = Number.POSITIVE_INFINITY;
    this.maxKey = Number.NEGATIVE_INFINITY;
    this.zeroCount = 0;
    this.n = 0;
    this.minValue = Number.POSITIVE_INFINITY;
    this.maxValue = Number.NEGATIVE_INFINITY;
  }

  private addKey(key: number, weight: number): void {
    let i = key - this.offset;
    if (i < 0 || i >= this.bins.length) {
      const lo = this.reserve(key, key);
      i = Math.max(key, lo) - this.offset;
      key = i + this.offset;
    }
    this.bins[i] = (this.bins[i] as number) + weight;
    if (key < this.minKey) this.minKey = key;
    if (key > this.maxKey) this.maxKey = key;
  }

  /** Covers [lo, hi] and what it holds, cut to the top `maxBins` keys (lower ones folded in); returns the lowest kept key. */
  private reserve(lo: number, hi: number): number {
    const held = this.minKey <= this.maxKey;
    if (held) {
      if (this.minKey < lo) lo = this.minKey;
      if (this.maxKey > hi) hi = this.maxKey;
    }
    if (hi - lo + 1 > this.maxBins) lo = hi - this.maxBins + 1;
    let folded = 0;
    if (held && this.minKey < lo) {
      const end = Math.min(this.maxKey, lo - 1);
      for (let key = this.minKey; key <= end; key++) {
        const i = key - this.offset;
        folded += this.bins[i] as number;
        this.bins[i] = 0;
      }
      if (this.maxKey < lo) {
        this.minKey = Number.POSITIVE_INFINITY;
        this.maxKey = Number.NEGATIVE_INFINITY;
      } else {
        this.minKey = lo; // it receives the folded counts below
      }
    }
    if (lo < this.offset || hi >= this.offset + this.bins.length) this.regrow(lo, hi);
    if (folded > 0) {
      const i = lo - this.offset;
      this.bins[i] = (this.bins[i] as number) + folded;
      if (lo < this.minKey) this.minKey = lo;
      if (lo > this.maxKey) this.maxKey = lo;
    }
    return lo;
  }

  /** A new array covering [lo, hi] (≤ maxBins keys) with slack on the side that grew. */
  private regrow(lo: number, hi: number): void {
    const needed = hi - lo + 1;
    const size = Math.min(this.maxBins, Math.max(this.bins.length, needed + GROW_SLACK));
    const growingUp = this.bins.length === 0 || hi >= this.offset + this.bins.length;
    const offset = growingUp ? lo : hi - size + 1;
    const next = new Float64Array(size);
    if (this.minKey <= this.maxKey) {
      next.set(this.bins.subarray(this.minKey - this.offset, this.maxKey - this.offset + 1), this.minKey - offset);
    }
    this.bins = next;
    this.offset = offset;
  }
}
