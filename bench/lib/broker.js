/**
 * The broker under test: either an already-running NSQ-compatible broker (addresses given on the
 * command line) or nsqd spawned as a child process on two free loopback ports, with a fresh
 * temporary data path (everything in memory unless a scenario lowers --mem-queue-size).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './util.js';

/**
 * @import { ChildProcess } from 'node:child_process'
 * @import { Broker, CpuUse, ExitInfo, ExternalBroker, HostPort, Options, ProcSample, SpawnedBroker } from './types.js'
 */

const LOOPBACK = '127.0.0.1';
export const LOOKUPD_BIN = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../packages/lookupd/bin/nsqlookupd.js',
);
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * @param {string} value
 * @param {string} what the option, for the error
 * @returns {HostPort}
 */
export function parseHostPort(value, what) {
  const i = value.lastIndexOf(':');
  const host = value.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(value.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`${what}: expected host:port, got ${JSON.stringify(value)}`);
  }
  if (!isLoopback(host)) throw new Error(`${what}: only loopback addresses are allowed, got ${host}`);
  return { host, port };
}

/** @param {string} host */
function isLoopback(host) {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * A free loopback port (listen on port 0, read it, close).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, LOOPBACK, () => {
      const { port } = /** @type {net.AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * A small HTTP request against the broker's HTTP address.
 * @param {HostPort} addr
 * @param {string} method
 * @param {string} pathAndQuery
 * @param {number} [timeoutMs]
 * @returns {Promise<{ status: number, body: string }>}
 */
export function httpRequest(addr, method, pathAndQuery, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: addr.host, port: addr.port, method, path: pathAndQuery, timeout: timeoutMs, agent: false },
      (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathAndQuery} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** @param {HostPort} addr @param {boolean} [anyAnswer] */
async function ping(addr, anyAnswer = false) {
  try {
    const res = await httpRequest(addr, 'GET', '/ping', 1_000);
    return res.status === 200 || (anyAnswer && res.status > 0);
  } catch {
    return false;
  }
}

/**
 * @typedef {object} SpawnOptions
 * @property {number} [nofile] raise the open-file limit to this (idle-conns)
 * @property {string | null} [taskset] a CPU list such as '0' or '0,1': pin with `taskset -c`
 * @property {boolean} [lookupd] packages/lookupd/bin/nsqlookupd.js instead of nsqd
 * @property {number} [memQueueSize] instead of opts.memQueueSize (the storage scenarios)
 * @property {string | null} [cpuProfDir] instead of opts.brokerCpuProf
 * @property {string[]} [nodeFlags] more flags for node before a .js broker (policy-memory's heap snapshots)
 * @property {boolean} [anyPing] ready at any answer to GET /ping, not only 200 (a replica group's
 *   follower answers 503 "NOK - follower of …")
 */

/**
 * The broker of --nsqd-tcp-address / --nsqd-http-address, once it answers GET /ping; else nsqd
 * spawned as spawnDaemon() does. `extraFlags` are appended to a spawned broker's command line
 * (e.g. --tls-cert/--tls-key for the transport scenario).
 * @param {Options} opts
 * @param {string[]} [extraFlags]
 * @param {SpawnOptions} [options]
 * @returns {Promise<Broker>}
 */
export async function startBroker(opts, extraFlags = [], options = {}) {
  if (!opts.nsqdTcpAddress && !opts.nsqdHttpAddress) return spawnDaemon(opts, extraFlags, options);
  if (!opts.nsqdTcpAddress || !opts.nsqdHttpAddress) {
    throw new Error('--nsqd-tcp-address and --nsqd-http-address go together');
  }
  const tcp = parseHostPort(opts.nsqdTcpAddress, '--nsqd-tcp-address');
  const httpAddr = parseHostPort(opts.nsqdHttpAddress, '--nsqd-http-address');
  if (!(await ping(httpAddr))) throw new Error(`no broker answers GET /ping on ${opts.nsqdHttpAddress}`);
  /** @type {ExternalBroker} */
  const external = { tcp, http: httpAddr, external: true, pid: null, command: null, stop: async () => {} };
  return external;
}

/**
 * Spawns nsqd (opts.nsqdBin) on two free loopback ports with a fresh temporary data path,
 * `--mem-queue-size` of the options (or `memQueueSize`) and `extraFlags`, and waits until it
 * answers GET /ping. `nofile` raises its open-file limit; `cpuProfDir` (default
 * opts.brokerCpuProf) runs a .js broker under `node --cpu-prof --cpu-prof-dir=<dir>` (the
 * profile is written when it exits); `taskset` pins the process with `taskset -c` (same pid: it
 * execs). `lookupd: true` starts packages/lookupd/bin/nsqlookupd.js instead, with its TCP and
 * HTTP address, `--broadcast-address=127.0.0.1` and `extraFlags` (never profiled; the temp dir
 * holds only its log). `restart()` stops it with SIGTERM and starts it again on the same ports and
 * data path (`pid` changes); the data path is removed by `stop()` only.
 * @param {Options} opts
 * @param {string[]} [extraFlags]
 * @param {SpawnOptions} [options]
 * @returns {Promise<SpawnedBroker>}
 */
export async function spawnDaemon(opts, extraFlags = [], options = {}) {
  const { nofile = 0, taskset = null, lookupd = false } = options;
  const { memQueueSize = opts.memQueueSize, cpuProfDir: profDir = opts.brokerCpuProf ?? null } = options;
  const cpuProfDir = lookupd ? null : profDir;
  const tcpPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === tcpPort) httpPort = await freePort();
  const tcp = { host: LOOPBACK, port: tcpPort };
  const httpAddr = { host: LOOPBACK, port: httpPort };
  const dataPath = fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-'));
  const logPath = path.join(dataPath, lookupd ? 'nsqlookupd.log' : 'nsqd.log');
  const flags = [
    `--tcp-address=${LOOPBACK}:${tcpPort}`,
    `--http-address=${LOOPBACK}:${httpPort}`,
    ...(lookupd
      ? [`--broadcast-address=${LOOPBACK}`]
      : [`--mem-queue-size=${memQueueSize}`, `--data-path=${dataPath}`]),
    ...extraFlags,
  ];
  const bin = lookupd ? LOOKUPD_BIN : String(opts.nsqdBin);
  const nodeFlags = [
    ...(cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : []),
    ...(options.nodeFlags ?? []),
  ];
  /** @type {[string, string[]]} */
  let [cmd, args] = bin.endsWith('.js') ? [process.execPath, [...nodeFlags, bin, ...flags]] : [bin, flags];
  /** @type {string | null} */
  let version = null;
  try {
    const versionArgs = bin.endsWith('.js') ? [bin, '--version'] : ['--version'];
    version = execFileSync(cmd, versionArgs, { encoding: 'utf8', timeout: 10_000, stdio: 'pipe' }).trim();
  } catch {
    // Reported by the start below if the binary is broken.
  }
  if (nofile > 0) {
    // Node cannot raise its own RLIMIT_NOFILE: a shell does, then execs the broker (same pid).
    // Without the privilege to go past the hard limit, the hard limit is what it gets.
    const script = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
    [cmd, args] = ['sh', ['-c', script, cmd, ...args]];
  }
  if (taskset !== null) [cmd, args] = ['taskset', ['-c', String(taskset), cmd, ...args]];

  /** @type {{ child: ChildProcess, exited: ExitInfo | null, exitPromise: Promise<ExitInfo> } | null} the running process */
  let proc = null;
  /** @type {number | null} */
  let pid = null;
  const cleanup = () => fs.rmSync(dataPath, { recursive: true, force: true });
  // However this process ends (an uncaught error, a closed stdout), the broker does not outlive it.
  const onExit = () => {
    if (proc !== null && proc.exited === null) proc.child.kill('SIGKILL');
    cleanup();
  };
  process.on('exit', onExit);
  const logTail = () => {
    try {
      return fs.readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  };

  // Writing a CPU profile at exit takes a while: it is not cut short.
  const stopTimeoutMs = cpuProfDir ? 60_000 : STOP_TIMEOUT_MS;
  /**
   * SIGTERM, then SIGKILL after `timeoutMs`.
   * @param {number} [timeoutMs]
   * @returns {Promise<{ exit: ExitInfo | null, stopMs: number, killed: boolean }>}
   */
  const terminate = async (timeoutMs = stopTimeoutMs) => {
    const p = proc;
    const t0 = Date.now();
    if (p === null || p.exited !== null) return { exit: p?.exited ?? null, stopMs: 0, killed: false };
    p.child.kill('SIGTERM');
    let killed = false;
    const res = await Promise.race([p.exitPromise, sleep(timeoutMs).then(() => null)]);
    if (res === null) {
      killed = true;
      p.child.kill('SIGKILL');
      await p.exitPromise;
    }
    return { exit: p.exited, stopMs: Date.now() - t0, killed };
  };

  const spawnOnce = async () => {
    const log = fs.openSync(logPath, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    /** @type {{ exited: ExitInfo | null }} */
    const state = { exited: null };
    /** @type {Promise<ExitInfo>} */
    const exitPromise = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        const e = { code, signal };
        state.exited = e;
        resolve(e);
      });
      child.on('error', (err) => {
        const e = { code: null, signal: null, error: err.message };
        state.exited = e;
        resolve(e);
      });
    });
    const p = {
      child,
      exitPromise,
      get exited() {
        return state.exited;
      },
    };
    proc = p;
    pid = child.pid ?? null;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (p.exited !== null) {
        throw new Error(
          `broker exited before answering /ping (${JSON.stringify(p.exited)}): ${cmd} ${args.join(' ')}\n${logTail()}`,
        );
      }
      if (await ping(httpAddr, options.anyPing)) return;
      if (Date.now() > deadline) {
        const tail = logTail();
        await terminate();
        throw new Error(`broker did not answer /ping within ${READY_TIMEOUT_MS} ms\n${tail}`);
      }
      await sleep(100);
    }
  };

  /** @type {SpawnedBroker} */
  const broker = {
    tcp,
    http: httpAddr,
    external: false,
    get pid() {
      return pid;
    },
    dataPath,
    logPath,
    command: [cmd, ...args].join(' '),
    version,
    logTail,
    isRunning: () => proc !== null && proc.exited === null,
    exitInfo: () => proc?.exited ?? null,
    async stop() {
      await terminate();
      process.off('exit', onExit);
      cleanup();
    },
    /** SIGTERM (SIGKILL after `timeoutMs`), then the same command again. */
    async restart({ timeoutMs = stopTimeoutMs } = {}) {
      const stopped = await terminate(timeoutMs);
      const t0 = Date.now();
      await spawnOnce();
      return { ...stopped, startMs: Date.now() - t0 };
    },
  };

  try {
    await spawnOnce();
  } catch (err) {
    process.off('exit', onExit);
    cleanup();
    throw err;
  }
  return broker;
}

/** @type {number | null} */
let clkTck = null;
function clockTicks() {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * RSS / peak RSS (KiB) and CPU time (ms) of a local process, from /proc; null if unreadable.
 * @param {number | null | undefined} pid
 * @returns {ProcSample | null}
 */
export function procStats(pid) {
  if (pid === null || pid === undefined) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    /** @param {string} key */
    const kb = (key) => {
      const m = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) : null;
    };
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = clockTicks();
    const threads = status.match(/^Threads:\s+(\d+)/m);
    return {
      rssKiB: kb('VmRSS'),
      peakRssKiB: kb('VmHWM'),
      threads: threads ? Number(threads[1]) : null,
      userMs: (Number(fields[11]) / ticks) * 1000,
      systemMs: (Number(fields[12]) / ticks) * 1000,
      at: Number(process.hrtime.bigint()) / 1e6,
    };
  } catch {
    return null;
  }
}

/**
 * CPU use between two procStats samples, as % of one core.
 * @param {ProcSample | null} a
 * @param {ProcSample | null} b
 * @returns {CpuUse | null}
 */
export function cpuBetween(a, b) {
  if (a === null || b === null) return null;
  const cpuMs = b.userMs + b.systemMs - (a.userMs + a.systemMs);
  const wallMs = b.at - a.at;
  return { cpuMs, wallMs, pct: wallMs > 0 ? (cpuMs / wallMs) * 100 : 0 };
}

/** Machine-wide CPU time (ms, summed over all cores) from /proc/stat; null if unreadable. */
export function systemCpu() {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = clockTicks();
    const busy = user + nice + system + irq + softirq + (steal || 0);
    return { busyMs: (busy / ticks) * 1000, idleMs: ((idle + iowait) / ticks) * 1000 };
  } catch {
    return null;
  }
}
