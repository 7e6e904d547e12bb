/**
 * Load-generator processes, driven over IPC: bench/lib/load-worker.js (raw TCP, one per
 * connection) by default, or `config.worker` (http-worker.js, client-worker.js).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { emptyStats } from './util.js';

const WORKER = fileURLToPath(new URL('./load-worker.js', import.meta.url));
export const HTTP_WORKER = fileURLToPath(new URL('./http-worker.js', import.meta.url));
export const CLIENT_WORKER = fileURLToPath(new URL('./client-worker.js', import.meta.url));
export const PERF_WORKER = fileURLToPath(new URL('./perf-worker.js', import.meta.url));
export const SOAK_WORKER = fileURLToPath(new URL('./soak-worker.js', import.meta.url));
export const HOSTILE_WORKER = fileURLToPath(new URL('./hostile-worker.js', import.meta.url));
const READY_TIMEOUT_MS = 15_000;

/**
 * @import { GenConfig, WorkerMessage, WorkerResult, WorkerStats } from './types.js'
 */

/** One generator process: its progress as reported, and its end result. */
export class Generator {
  /**
   * @param {GenConfig} config the worker's configuration: `worker` is the script to fork (default
   *   load-worker.js), `name` overrides `role#index`
   * @param {(text: string) => void} onLog
   */
  constructor(config, onLog) {
    this.role = config.role;
    this.index = config.index;
    this.name = config.name ?? `${config.role}#${config.index}`;
    /** @type {WorkerStats} */
    this.progress = emptyStats();
    /** @type {unknown} the broker's IDENTIFY response, as the worker saw it */
    this.identify = null;
    /** True once the worker reported its result (or died); `failed` if that result is an error. */
    this.settled = false;
    this.failed = false;
    this.child = fork(config.worker ?? WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    /** @type {() => void} */
    let resolveReady = () => {};
    /** @type {(err: Error) => void} */
    let rejectReady = () => {};
    /** @type {Promise<void>} */
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Never an unhandled rejection: whoever awaits `ready` sees the error.
    this.ready.catch(() => {});
    /** @type {Promise<WorkerResult>} */
    this.result = new Promise((resolve) => {
      let settled = false;
      /** @param {WorkerResult} r */
      const settle = (r) => {
        if (settled) return;
        settled = true;
        this.settled = true;
        this.failed = !r.ok;
        rejectReady(new Error(`${this.name}: ${r.error ?? 'finished before it was ready'}`));
        resolve(r);
      };
      this.child.on('message', (/** @type {WorkerMessage} */ msg) => {
        if (msg.type === 'ready') resolveReady();
        else if (msg.type === 'progress') this.progress = msg;
        else if (msg.type === 'identify') this.identify = msg.info;
        else if (msg.type === 'log') onLog(`${this.name}: ${msg.message}`);
        else if (msg.type === 'done') {
          this.progress = msg;
          settle({ ok: true, ...msg });
        } else if (msg.type === 'error') {
          this.progress = msg;
          settle({ ok: false, error: msg.message, ...msg });
        }
      });
      this.child.on('exit', (code, signal) => {
        settle({
          ok: false,
          error: `worker exited (code ${code}, signal ${signal}) without a result`,
          ...this.progress,
        });
      });
    });
    this.child.send({ type: 'config', ...config });
  }

  start() {
    this.send({ type: 'start' });
  }

  stop() {
    this.send({ type: 'stop' });
  }

  /** @param {{ type: string }} msg */
  send(msg) {
    // A worker that finished by itself (maxMessages) may have closed its IPC channel a moment ago;
    // a late `stop` is then moot, not an error.
    if (this.child.connected) this.child.send(msg, () => {});
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * Waits for every generator to be ready, up to `ms`.
 * @param {Generator[]} gens
 * @param {number} [ms]
 */
export async function waitReady(gens, ms = READY_TIMEOUT_MS) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`generators not ready within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([Promise.all(gens.map((g) => g.ready)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `key` of every generator's progress, added up.
 * @param {Generator[]} gens
 * @param {'msgs' | 'bytes' | 'cpuMs'} key
 */
export function sum(gens, key) {
  let total = 0;
  for (const g of gens) total += g.progress[key] ?? 0;
  return total;
}
