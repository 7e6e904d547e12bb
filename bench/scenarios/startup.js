/**
 * `startup`: how long a daemon takes from exec until it serves, against
 * the floor Node itself sets. Per target, --startup-runs (20) times, interleaved so that load on
 * the machine falls on every target alike:
 *
 *   floor          `node -e` with one HTTP listener answering every request `OK`
 *   nsqd empty     bin/nsqd.js on a fresh, empty data path
 *   nsqd N topics  bin/nsqd.js on a copy of a data path with --startup-topics (100) topics, each
 *                  with a channel and 10 messages queued on disk (made once by a first nsqd)
 *   nsqlookupd     bin/nsqlookupd.js
 *   nsqadmin       bin/nsqadmin.js (--nsqd-http-address of a port nothing listens on)
 *
 * Each run: spawn (t = 0), then poll every millisecond for a TCP connect to the daemon's TCP port
 * (nsqd, nsqlookupd: "TCP accept") and for `GET /ping` answering 200 ("/ping"); then SIGKILL.
 * Reported per target: median / min / max of each, and the /ping median over the floor's median.
 * It starts its own processes: no --nsqd-* broker is used.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, LOOKUPD_BIN } from '../lib/broker.js';
import { int } from '../lib/options.js';
import { fmt1, fmtInt, log, round, sleep } from '../lib/util.js';

/**
 * @import { Scenario, StartupTarget } from '../lib/types.js'
 */

/**
 * @typedef {object} Target
 * @property {string} name
 * @property {boolean} tcp whether it has a TCP listener to time
 * @property {(tcpPort: number, httpPort: number) => { args: string[], cleanup: () => void }} prepare
 *   its command line (after node) and what to remove after the run
 */

const ADMIN_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/admin/bin/nsqadmin.js');
/** A daemon that has not answered by then counts as failed. */
const RUN_TIMEOUT_MS = 15_000;
const LOOPBACK = '127.0.0.1';

export const options = {
  startupRuns: int('starts per target', 20),
  startupTopics: int('topics in the data path of its second nsqd target', 100),
};

/** @param {number} port */
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: LOOPBACK, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** @param {number} port */
function pingOk(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: LOOPBACK, port, path: '/ping', agent: false, timeout: 1_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * Polls `check` every millisecond until it holds; ms since `t0`, or null past the deadline.
 * @param {() => Promise<boolean>} check
 * @param {number} t0
 * @param {() => boolean} exited
 */
async function until(check, t0, exited) {
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (exited() || performance.now() - t0 > RUN_TIMEOUT_MS) return null;
    await sleep(1);
  }
}

/**
 * One start: { tcpMs, pingMs } (tcpMs null for a daemon without TCP listener).
 * @param {Target} target
 */
async function runOnce(target) {
  const tcpPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === tcpPort) httpPort = await freePort();
  const { args, cleanup } = target.prepare(tcpPort, httpPort);
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  let exited = false;
  const exit = new Promise((r) => child.once('exit', r));
  child.once('exit', () => {
    exited = true;
  });
  try {
    const tcpMs = target.tcp
      ? await until(
          () => canConnect(tcpPort),
          t0,
          () => exited,
        )
      : null;
    const pingMs = await until(
      () => pingOk(httpPort),
      t0,
      () => exited,
    );
    if (pingMs === null || (target.tcp && tcpMs === null)) {
      throw new Error(`${target.name}: no answer within ${RUN_TIMEOUT_MS} ms (exited: ${exited})`);
    }
    return { tcpMs, pingMs };
  } finally {
    child.kill('SIGKILL');
    await exit;
    cleanup();
  }
}

/** @param {string} prefix */
function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * A data path with `topics` topics, each with channel `ch` and 10 messages on disk; returns its dir.
 * @param {string} nsqdBin
 * @param {number} topics
 */
async function makeDataPath(nsqdBin, topics) {
  const dir = tempDir('nsq-ts-startup-src-');
  const tcpPort = await freePort();
  const httpPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      nsqdBin,
      `--tcp-address=${LOOPBACK}:${tcpPort}`,
      `--http-address=${LOOPBACK}:${httpPort}`,
      `--data-path=${dir}`,
      '--mem-queue-size=0',
    ],
    { stdio: 'ignore' },
  );
  const exit = new Promise((r) => child.once('exit', r));
  try {
    if (
      (await until(
        () => pingOk(httpPort),
        performance.now(),
        () => false,
      )) === null
    ) {
      throw new Error('the data-path nsqd did not start');
    }
    const base = `http://${LOOPBACK}:${httpPort}`;
    const body = Buffer.alloc(4 + 10 * (4 + 100));
    body.writeInt32BE(10, 0);
    for (let i = 0; i < 10; i++) body.writeInt32BE(100, 4 + i * 104);
    for (let t = 0; t < topics; t++) {
      const topic = `startup_${t}`;
      for (const [p, b] of [
        [`/topic/create?topic=${topic}`, undefined],
        [`/channel/create?topic=${topic}&channel=ch`, undefined],
        [`/mpub?topic=${topic}&binary=true`, body],
      ]) {
        const res = await fetch(`${base}${p}`, { method: 'POST', body: b });
        if (res.status !== 200) throw new Error(`POST ${p}: ${res.status}`);
        await res.arrayBuffer();
      }
    }
    child.kill('SIGTERM');
    await exit;
    return dir;
  } catch (err) {
    child.kill('SIGKILL');
    await exit;
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** @param {number[]} values */
function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const median =
    sorted.length % 2 === 1
      ? sorted[(sorted.length - 1) / 2]
      : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** @type {Scenario['run']} */
async function startup(b, result) {
  const o = b.opts;
  const runs = o.startupRuns;
  const nsqdBin = String(o.nsqdBin);
  /**
   * @param {string} dataPath
   * @param {number} tcpPort
   * @param {number} httpPort
   */
  const nsqdArgs = (dataPath, tcpPort, httpPort) => [
    nsqdBin,
    `--tcp-address=${LOOPBACK}:${tcpPort}`,
    `--http-address=${LOOPBACK}:${httpPort}`,
    `--data-path=${dataPath}`,
  ];
  log(`  making a data path of ${fmtInt(o.startupTopics)} topics`);
  const source = await makeDataPath(nsqdBin, o.startupTopics);
  /** @type {Target[]} */
  const targets = [
    {
      name: 'floor',
      tcp: false,
      prepare: (_tcp, httpPort) => ({
        args: ['-e', `require('node:http').createServer((q, s) => s.end('OK')).listen(${httpPort}, '${LOOPBACK}')`],
        cleanup: () => {},
      }),
    },
    {
      name: 'nsqd empty',
      tcp: true,
      prepare: (tcpPort, httpPort) => {
        const dir = tempDir('nsq-ts-startup-');
        return {
          args: nsqdArgs(dir, tcpPort, httpPort),
          cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: `nsqd ${o.startupTopics} topics`,
      tcp: true,
      prepare: (tcpPort, httpPort) => {
        const dir = tempDir('nsq-ts-startup-');
        fs.cpSync(source, dir, { recursive: true });
        return {
          args: nsqdArgs(dir, tcpPort, httpPort),
          cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
        };
      },
    },
    {
      name: 'nsqlookupd',
      tcp: true,
      prepare: (tcpPort, httpPort) => ({
        args: [LOOKUPD_BIN, `--tcp-address=${LOOPBACK}:${tcpPort}`, `--http-address=${LOOPBACK}:${httpPort}`],
        cleanup: () => {},
      }),
    },
    {
      name: 'nsqadmin',
      tcp: false,
      // Its upstream: a port with no listener (nsqadmin polls it in the background).
      prepare: (tcpPort, httpPort) => ({
        args: [ADMIN_BIN, `--http-address=${LOOPBACK}:${httpPort}`, `--nsqd-http-address=${LOOPBACK}:${tcpPort}`],
        cleanup: () => {},
      }),
    },
  ];
  /** @type {{ tcp: number[], ping: number[] }[]} */
  const times = targets.map(() => ({ tcp: [], ping: [] }));
  const t0 = performance.now();
  try {
    for (let i = 0; i < runs; i++) {
      for (const [k, target] of targets.entries()) {
        const r = await runOnce(target);
        times[k].ping.push(r.pingMs);
        if (r.tcpMs !== null) times[k].tcp.push(r.tcpMs);
      }
      log(
        `  [startup] run ${i + 1}/${runs}: ${targets.map((t, k) => `${t.name} ${fmt1(times[k].ping[i])} ms`).join(', ')}`,
      );
    }
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
  }
  // targets[0] is the floor.
  const floor = stats(times[0].ping);
  /** @type {StartupTarget[]} */
  const rows = [];
  result.startup = { runs, topics: o.startupTopics, floorMedianMs: round(floor.median, 1), targets: rows };
  for (const [k, target] of targets.entries()) {
    const rec = times[k];
    const ping = stats(rec.ping);
    const tcp = rec.tcp.length > 0 ? stats(rec.tcp) : null;
    const overFloor = ping.median - floor.median;
    rows.push({
      name: target.name,
      pingMs: { median: round(ping.median, 1), min: round(ping.min, 1), max: round(ping.max, 1) },
      tcpAcceptMs: tcp === null ? null : { median: round(tcp.median, 1), max: round(tcp.max, 1) },
      overFloorMs: round(overFloor, 1),
      samplesMs: rec.ping.map((v) => round(v, 1)),
    });
    const tcpText = tcp === null ? '' : `TCP accept median ${fmt1(tcp.median)} / max ${fmt1(tcp.max)} ms; `;
    const over = k === 0 ? '' : `; +${fmt1(overFloor)} ms over the floor`;
    result.phases.push({
      phase: target.name,
      kind: 'startup',
      role: 'none',
      msgs: runs,
      bytes: 0,
      seconds: round(rec.ping.reduce((a, v) => a + v, 0) / 1000, 3),
      msgsPerSec: 0,
      mibPerSec: 0,
      generators: [],
      broker: null,
      machineCpuPct: null,
      otherCpuPct: null,
      timeline: [],
      note: `${tcpText}/ping median ${fmt1(ping.median)} / min ${fmt1(ping.min)} / max ${fmt1(ping.max)} ms${over}`,
    });
  }
  result.notes.push(`startup: ${runs} runs per target, ${round((performance.now() - t0) / 1000, 1)} s in all`);
}

/** @type {Scenario} */
export default {
  name: 'startup',
  description:
    'how long each daemon takes from exec until it serves, beside the floor Node itself sets: --startup-runs starts per target (a bare node HTTP listener, nsqd on an empty data path, nsqd with --startup-topics topics, nsqlookupd, nsqadmin), interleaved; TCP accept and /ping median / min / max',
  options,
  ownDaemons: true,
  budgetSeconds: (o) => o.startupRuns * 5 * 16 + 120,
  run: startup,
};
