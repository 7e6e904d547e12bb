/**
 * The `startup` scenario (issue #15): how long a daemon takes from exec until it serves, against
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
import { freePort } from './broker.js';

export const STARTUP_SCENARIOS = ['startup'];

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LOOKUPD_BIN = path.join(ROOT, 'packages/lookupd/bin/nsqlookupd.js');
const ADMIN_BIN = path.join(ROOT, 'packages/admin/bin/nsqadmin.js');
/** A daemon that has not answered by then counts as failed. */
const RUN_TIMEOUT_MS = 15_000;
const LOOPBACK = '127.0.0.1';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** Polls `check` every millisecond until it holds; ms since `t0`, or null past the deadline. */
async function until(check, t0, exited) {
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (exited() || performance.now() - t0 > RUN_TIMEOUT_MS) return null;
    await sleep(1);
  }
}

/** One start: { tcpMs, pingMs } (tcpMs null for a daemon without TCP listener). */
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

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A data path with `topics` topics, each with channel `ch` and 10 messages on disk; returns its dir. */
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

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const median =
    sorted.length % 2 === 1
      ? sorted[(sorted.length - 1) / 2]
      : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** Runs the scenario on the Bench of run.js (`b`), with run.js's helpers (`h`). */
export async function startup(b, result, h) {
  const o = b.opts;
  const runs = o.startupRuns;
  const nsqdArgs = (dataPath, tcpPort, httpPort) => [
    o.nsqdBin,
    `--tcp-address=${LOOPBACK}:${tcpPort}`,
    `--http-address=${LOOPBACK}:${httpPort}`,
    `--data-path=${dataPath}`,
  ];
  h.log(`  making a data path of ${h.fmtInt(o.startupTopics)} topics`);
  const source = await makeDataPath(o.nsqdBin, o.startupTopics);
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
  const times = new Map(targets.map((t) => [t.name, { tcp: [], ping: [] }]));
  const t0 = performance.now();
  try {
    for (let i = 0; i < runs; i++) {
      for (const target of targets) {
        const r = await runOnce(target);
        const rec = times.get(target.name);
        rec.ping.push(r.pingMs);
        if (r.tcpMs !== null) rec.tcp.push(r.tcpMs);
      }
      h.log(
        `  [startup] run ${i + 1}/${runs}: ${targets.map((t) => `${t.name} ${h.fmt1(times.get(t.name).ping[i])} ms`).join(', ')}`,
      );
    }
  } finally {
    fs.rmSync(source, { recursive: true, force: true });
  }
  const floor = stats(times.get('floor').ping);
  result.startup = { runs, topics: o.startupTopics, floorMedianMs: h.round(floor.median, 1), targets: [] };
  for (const target of targets) {
    const rec = times.get(target.name);
    const ping = stats(rec.ping);
    const tcp = rec.tcp.length > 0 ? stats(rec.tcp) : null;
    const overFloor = ping.median - floor.median;
    const row = {
      name: target.name,
      pingMs: { median: h.round(ping.median, 1), min: h.round(ping.min, 1), max: h.round(ping.max, 1) },
      tcpAcceptMs: tcp === null ? null : { median: h.round(tcp.median, 1), max: h.round(tcp.max, 1) },
      overFloorMs: h.round(overFloor, 1),
      samplesMs: rec.ping.map((v) => h.round(v, 1)),
    };
    result.startup.targets.push(row);
    const tcpText = tcp === null ? '' : `TCP accept median ${h.fmt1(tcp.median)} / max ${h.fmt1(tcp.max)} ms; `;
    const over = target.name === 'floor' ? '' : `; +${h.fmt1(overFloor)} ms over the floor`;
    result.phases.push({
      phase: target.name,
      kind: 'startup',
      role: 'none',
      msgs: runs,
      bytes: 0,
      seconds: h.round(rec.ping.reduce((a, v) => a + v, 0) / 1000, 3),
      msgsPerSec: 0,
      mibPerSec: 0,
      generators: [],
      broker: null,
      machineCpuPct: null,
      otherCpuPct: null,
      timeline: [],
      note: `${tcpText}/ping median ${h.fmt1(ping.median)} / min ${h.fmt1(ping.min)} / max ${h.fmt1(ping.max)} ms${over}`,
    });
  }
  result.notes.push(`startup: ${runs} runs per target, ${h.round((performance.now() - t0) / 1000, 1)} s in all`);
}
