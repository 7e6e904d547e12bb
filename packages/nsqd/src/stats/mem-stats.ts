import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { MemStats } from './types.js';

/**
 * /stats `memory` from Node's figures (nsq-spec §3.3 lets a non-Go broker report process
 * equivalents). Mapping of Go's runtime.MemStats:
 * - heap_objects: 0 — V8's heap statistics have sizes, not object counts; the one way to count
 *   (v8.queryObjects, or a heap snapshot) forces a full GC and walks the heap: 1.1–1.7 s for a
 *   163 MiB heap here, a stall no /stats poll may cause.
 * - heap_in_use_bytes: V8 heap used + external memory (Buffers: message bodies live there,
 *   where Go would count them in its heap).
 * - heap_idle_bytes: V8 heap committed but unused (heapTotal − heapUsed).
 * - heap_released_bytes: V8 heap reserved but not resident (total_heap_size − total_physical_size).
 * - next_gc_bytes: V8's committed heap size: it collects or grows when that fills.
 * - gc_pause_usec_*: over the last 256 GC pauses, picked like nsqd's `percentile()`.
 * - gc_total_runs: GCs seen since the first /stats with memory (the observer starts then).
 */

/** nsqd reads Go's 256-entry PauseNs ring. */
const RING_SIZE = 256;
const pausesUs = new Float64Array(RING_SIZE);
const sortScratch = new Float64Array(RING_SIZE);
let gcRuns = 0;
let observer: PerformanceObserver | null = null;

/** Starts the process-wide GC observer once; each GC costs one ring write. */
function observeGc(): void {
  if (observer !== null) return;
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      pausesUs[gcRuns % RING_SIZE] = entry.duration * 1000;
      gcRuns++;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

export function collectMemStats(): MemStats {
  observeGc();
  const heap = getHeapStatistics();
  const usage = process.memoryUsage();
  const length = Math.min(gcRuns, RING_SIZE);
  const sorted = sortScratch.subarray(0, length);
  sorted.set(pausesUs.subarray(0, length));
  sorted.sort();
  return {
    heap_objects: 0,
    heap_idle_bytes: Math.max(0, usage.heapTotal - usage.heapUsed),
    heap_in_use_bytes: usage.heapUsed + usage.external,
    heap_released_bytes: Math.max(0, heap.total_heap_size - heap.total_physical_size),
    gc_pause_usec_100: percentile(100, sorted),
    gc_pause_usec_99: percentile(99, sorted),
    gc_pause_usec_95: percentile(95, sorted),
    next_gc_bytes: heap.total_heap_size,
    gc_total_runs: gcRuns,
  };
}

/** nsqd's `percentile(perc, arr, len)`: index ⌊perc/100·len + 0.5⌋, capped at len − 1. */
function percentile(perc: number, sorted: Float64Array): number {
  const length = sorted.length;
  if (length === 0) return 0;
  const i = Math.min(length - 1, Math.floor((perc / 100) * length + 0.5));
  return Math.floor(sorted[i] as number);
}
