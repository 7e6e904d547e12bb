/**
 * Rates kept by nsqadmin itself (true whether or not a browser watches): count since the last sample over its span.
 * Two rings: `fine` one point per sample (live charts), `coarse` one per `coarseStepMs`. NaN: no count for that point.
 */

export interface RateHistoryOptions {
  /** The fine ring holds `fineSpanMs / sampleIntervalMs` points. */
  readonly sampleIntervalMs: number;
  readonly fineSpanMs: number;
  readonly coarseSpanMs: number;
}

/** Points of every series on one time axis; a null rate is a gap (no count for that span). */
export interface RateSeries {
  /** The sample interval, or the coarse step. */
  readonly stepMs: number;
  /** ms since the epoch, oldest first. */
  readonly times: number[];
  /** Messages per second. */
  readonly series: Record<string, Array<number | null>>;
}

/** How many coarse points the history aims at, whatever its span. */
const COARSE_POINTS = 720;

class Ring {
  readonly times: Float64Array;
  readonly values = new Map<string, Float64Array>();
  head = 0;
  length = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
  }

  series(key: string): Float64Array {
    let values = this.values.get(key);
    if (values === undefined) {
      values = new Float64Array(this.capacity).fill(Number.NaN);
      this.values.set(key, values);
    }
    return values;
  }

  /** Appends a point at `at`: `rates` for the series they name, NaN for every other. */
  push(at: number, rates: ReadonlyMap<string, number>): void {
    const i = this.head;
    this.times[i] = at;
    for (const [key, values] of this.values) values[i] = rates.get(key) ?? Number.NaN;
    for (const [key, rate] of rates) if (!this.values.has(key)) this.series(key)[i] = rate;
    this.head = (i + 1) % this.capacity;
    this.length = Math.min(this.length + 1, this.capacity);
  }

  prune(): void {
    for (const [key, values] of this.values) if (values.every(Number.isNaN)) this.values.delete(key);
  }

  read(stepMs: number, since: number): RateSeries {
    const order: number[] = [];
    for (let n = 0; n < this.length; n++) {
      const i = (this.head - this.length + n + this.capacity) % this.capacity;
      if ((this.times[i] as number) > since) order.push(i);
    }
    const series: Record<string, Array<number | null>> = {};
    for (const [key, values] of this.values) {
      const points = order.map((i) => {
        const v = values[i] as number;
        return Number.isNaN(v) ? null : v;
      });
      if (points.some((p) => p !== null)) series[key] = points;
    }
    return { stepMs, times: order.map((i) => this.times[i] as number), series };
  }
}

export class RateHistory {
  readonly coarseStepMs: number;
  private readonly fine: Ring;
  private readonly coarse: Ring;
  private lastAt: number | null = null;
  private coarseStart: number | null = null;
  private readonly pending = new Map<string, number>();
  private latest = new Map<string, number>();
  private latestAt: number | null = null;
  private latestWindowMs = 0;

  constructor(readonly options: RateHistoryOptions) {
    const interval = Math.max(1, options.sampleIntervalMs);
    this.fine = new Ring(Math.max(2, Math.ceil(options.fineSpanMs / interval) + 1));
    this.coarseStepMs = Math.max(interval, Math.ceil(options.coarseSpanMs / COARSE_POINTS));
    this.coarse = new Ring(Math.max(2, Math.ceil(options.coarseSpanMs / this.coarseStepMs) + 1));
  }

  /** `counts`: messages per series since the previous sample; the first sample only starts the clock. */
  record(at: number, counts: ReadonlyMap<string, number>): void {
    const last = this.lastAt;
    this.lastAt = at;
    if (last === null || at <= last) {
      this.coarseStart = at;
      return;
    }
    const seconds = (at - last) / 1000;
    const rates = new Map<string, number>();
    for (const [key, count] of counts) {
      rates.set(key, count / seconds);
      this.pending.set(key, (this.pending.get(key) ?? 0) + count);
    }
    this.fine.push(at, rates);
    this.latest = rates;
    this.latestAt = at;
    this.latestWindowMs = at - last;

    const start = this.coarseStart ?? last;
    if (at - start >= this.coarseStepMs) {
      const span = (at - start) / 1000;
      const coarseRates = new Map<string, number>();
      for (const [key, count] of this.pending) coarseRates.set(key, count / span);
      this.coarse.push(at, coarseRates);
      this.pending.clear();
      this.coarseStart = at;
      this.coarse.prune();
      this.fine.prune();
    }
  }

  /** messages/s; null before it has one. */
  rate(key: string): number | null {
    return this.latest.get(key) ?? null;
  }

  /** ms since the epoch; null before the second sample. */
  get ratesAt(): number | null {
    return this.latestAt;
  }

  /** ms. */
  get rateWindowMs(): number {
    return this.latestWindowMs;
  }

  /** Per sample if the fine ring reaches back that far. */
  read(since: number): RateSeries {
    const ring = this.fine;
    // Until the fine ring wraps it holds everything since start-up.
    const wrapped = ring.length === ring.capacity;
    if (!wrapped || since >= (ring.times[ring.head] as number) - this.options.sampleIntervalMs) {
      return ring.read(this.options.sampleIntervalMs, since);
    }
    return this.coarse.read(this.coarseStepMs, since);
  }
}
