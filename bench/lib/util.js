/** Small helpers: time, rounding, the number formats of the output, a generator's empty counters. */

/**
 * @import { WorkerStats } from './types.js'
 */

export const MiB = 1024 * 1024;

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** process.hrtime in ms: CLOCK_MONOTONIC, the clock the generators stamp their phases with. */
export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** @param {number} n */
export const fmtInt = (n) => Math.round(n).toLocaleString('en-US');

/** @param {number | null | undefined} n */
export const fmt1 = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(1));

/** KiB to MiB with one decimal (null stays null). @param {number | null | undefined} kib */
export const mib = (kib) => (kib === null || kib === undefined ? null : Math.round((kib / 1024) * 10) / 10);

/**
 * @param {number} n
 * @param {number} digits
 */
export function round(n, digits) {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/**
 * A generator's counters before it has done anything.
 * @returns {WorkerStats}
 */
export function emptyStats() {
  return {
    msgs: 0,
    bytes: 0,
    redeliveries: 0,
    batches: 0,
    heartbeats: 0,
    softErrors: 0,
    startAt: 0,
    firstAt: 0,
    lastAt: 0,
    stopAt: 0,
  };
}

/**
 * Polls `check` every `everyMs` until it returns a truthy value; throws after `ms`.
 * @template T
 * @param {string} what
 * @param {() => T | Promise<T>} check
 * @param {{ ms?: number, everyMs?: number }} [options]
 * @returns {Promise<NonNullable<T>>}
 */
export async function until(what, check, { ms = 20_000, everyMs = 50 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return /** @type {NonNullable<T>} */ (v);
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** @param {string} text */
export function log(text) {
  process.stdout.write(`${text}\n`);
}
