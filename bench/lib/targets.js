/**
 * The figures the scenarios' notes and the chart compare results with: goals for nsq-ts, and
 * what the real nsqd was measured at on the same load (mem0).
 */
export const TARGETS = {
  /** latency: p99 publish → deliver at 50k msgs/s offered (issue 21; issue 9 asked for 10). */
  latencyP99Ms: 1,
  /** rss-1m: RSS after the settle with 1 M messages of 200 B queued (MB, 10^6 bytes). */
  rss1mMB: 355,
  /** idle-conns: RSS with 10,000 idle connections (MB) and the broker's CPU while they idle. */
  idleConnsRssMB: 300,
  idleConnsCpuPct: 2,
  /** hostile-memory (issue 21): RSS peak over the start (MiB), what is left over it after the settle, KiB per idle connection. */
  hostilePeakOverStartMiB: 100,
  hostileAfterOverStartMiB: 50,
  hostileIdleConnKiB: 20,
  /** mem0 (--mem-queue-size=0): the real nsqd's publish-only and consume-only msgs/s … */
  mem0In: 270_000,
  mem0Out: 240_000,
  /** … our goal for out while publishing, and the real nsqd's. */
  mem0BothOut: 150_000,
  nsqdBothOut: 50_000,
  /** durable (--sync-every=1): the best msgs/s over the connection counts. */
  durableIn: 100_000,
};
