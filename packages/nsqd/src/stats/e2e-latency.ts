import type { Clock } from '../clock.js';
import { QuantileStream } from './quantile-stream.js';
import type { E2eLatencyStats } from './types.js';

/**
 * A channel's end-to-end processing latency (nsq-spec §5.8), shaped like nsqd's
 * internal/quantile.Quantile: two streams that each cover half of the window. New samples go
 * to the current one; every half window the other is cleared and becomes current, so a
 * snapshot sees between half a window and a whole window of samples, and nothing older.
 */
export class E2eProcessingLatency {
  readonly percentiles: readonly number[];
  readonly windowMs: number;
  private readonly halfWindowMs: number;
  private current: QuantileStream;
  private previous: QuantileStream;
  /** When `current` became current (monotonic ms). */
  private lastMoveMs: number;
  private readonly clock: Pick<Clock, 'monotonicMs'>;

  /** What the e2e flags ask for: null (no tracking at all) without percentiles, as in nsqd. */
  static fromOptions(
    options: { e2eProcessingLatencyPercentiles: readonly number[]; e2eProcessingLatencyWindowTimeMs: number },
    clock: Pick<Clock, 'monotonicMs'>,
  ): E2eProcessingLatency | null {
    const percentiles = options.e2eProcessingLatencyPercentiles;
    if (percentiles.length === 0) return null;
    return new E2eProcessingLatency(percentiles, options.e2eProcessingLatencyWindowTimeMs, clock);
  }

  constructor(percentiles: readonly number[], windowMs: number, clock: Pick<Clock, 'monotonicMs'>) {
    this.percentiles = [...percentiles];
    this.windowMs = windowMs;
    // A zero window would rotate on every sample (and loop forever in nsqd); 1 ms is the floor.
    this.halfWindowMs = Math.max(1, windowMs / 2);
    this.current = new QuantileStream();
    this.previous = new QuantileStream();
    this.clock = clock;
    this.lastMoveMs = clock.monotonicMs();
  }

  /** One FIN's latency in nanoseconds. O(1), no allocation. */
  record(latencyNs: number): void {
    const t = this.clock.monotonicMs();
    if (t - this.lastMoveMs > this.halfWindowMs) this.advance(t);
    this.current.insert(latencyNs);
  }

  /** Samples in the window and the configured percentiles, in configured order (ns). */
  snapshot(): E2eLatencyStats {
    if (this.percentiles.length === 0) return { count: 0, percentiles: null };
    this.advance(this.clock.monotonicMs());
    // One half empty (a quiet or a young channel): read the other as it is.
    if (this.previous.count === 0) return result(this.current, this.percentiles);
    if (this.current.count === 0) return result(this.previous, this.percentiles);
    scratch.reset();
    scratch.merge(this.previous);
    scratch.merge(this.current);
    return result(scratch, this.percentiles);
  }

  /**
   * A topic's figure: the union of its channels' windows, queried once (not an average of the
   * channels' percentiles). `{count: 0, percentiles: null}` for an empty list, as nsqd reports
   * for a topic without channels.
   */
  static merge(list: readonly E2eProcessingLatency[]): E2eLatencyStats {
    const first = list[0];
    if (first === undefined) return { count: 0, percentiles: null };
    if (first.percentiles.length === 0) return { count: 0, percentiles: null };
    scratch.reset();
    for (const e2e of list) {
      e2e.advance(e2e.clock.monotonicMs());
      scratch.merge(e2e.previous);
      scratch.merge(e2e.current);
    }
    return result(scratch, first.percentiles);
  }

  /** Rotates as many half windows as have passed (nsqd: `for IsDataStale(now) { moveWindow() }`). */
  private advance(t: number): void {
    const elapsed = t - this.lastMoveMs;
    if (!(elapsed > this.halfWindowMs)) return;
    const moves = Math.ceil(elapsed / this.halfWindowMs) - 1;
    const swap = this.previous;
    this.previous = this.current;
    this.current = swap;
    this.current.reset();
    // Two or more moves: what was current is also older than the window.
    if (moves >= 2) this.previous.reset();
    this.lastMoveMs += moves * this.halfWindowMs;
  }
}

/** Reused by every snapshot and merge (one thread, and results are copied out). */
const scratch = new QuantileStream();

function result(stream: QuantileStream, percentiles: readonly number[]): E2eLatencyStats {
  const values = stream.queryAll(percentiles);
  const out: Array<{ quantile: number; value: number }> = [];
  for (let i = 0; i < percentiles.length; i++)
    out.push({ quantile: percentiles[i] as number, value: values[i] as number });
  return { count: stream.count, percentiles: out };
}
