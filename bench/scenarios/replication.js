/**
 * `replication`: what a replica group's sync acks cost. Per round (--replication-rounds, 2), the
 * same load twice, one after the other on the same machine: 4 producers (@nsq-ts/client, in this
 * process) each sending MPUBs of --batch-size × --msg-size for --duration s, one MPUB in flight
 * each, against (1) one nsqd with --mem-queue-size=0 --sync-every=1 and (2) the leader of a group
 * of two nsqds with the same flags and --replication-ack=sync, coordinated by an etcd this
 * scenario starts (/usr/bin/etcd). Reported: msgs/s and p99 per MPUB of each, and the group's
 * rate over the lone nsqd's (the goal: ≥ 0.5). Both members share the machine's cores.
 * It starts its own processes: no --nsqd-* broker is used.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/broker.js';
import { int } from '../lib/options.js';
import { fmt1, fmtInt, log, round, sleep } from '../lib/util.js';

/**
 * @import { ChildProcess } from 'node:child_process'
 * @import { Scenario, Options } from '../lib/types.js'
 */

const ETCD_BIN = '/usr/bin/etcd';
const LOOPBACK = '127.0.0.1';
const PRODUCERS = 4;

export const options = {
  replicationRounds: int('replication: rounds of (one nsqd, group of 2)', 2),
};

/**
 * @typedef {object} Proc
 * @property {ChildProcess} child
 * @property {() => string} output
 */

/** @param {string} cmd @param {string[]} args @param {Proc[]} procs @returns {Proc} */
function start(cmd, args, procs) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const p = { child, output: () => out };
  procs.push(p);
  return p;
}

/**
 * Polls `check` every 50 ms until it returns a value; throws after `ms`.
 * @template T
 * @param {string} what
 * @param {() => T | Promise<T>} check
 * @returns {Promise<NonNullable<T>>}
 */
async function until(what, check, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`replication: timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** @param {Proc} p */
async function stop(p) {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000).then(() => p.child.kill('SIGKILL'))]);
}

/**
 * @param {Options} o
 * @param {string} tcpAddress
 * @returns {Promise<{ msgs: number, seconds: number, p99Ms: number, mpubs: number }>}
 */
async function load(o, tcpAddress) {
  const { Producer } = await import('@nsq-ts/client');
  const bodies = Array.from({ length: o.batchSize }, () => Buffer.alloc(o.msgSize, 120));
  /** @type {number[]} */
  const lat = [];
  let msgs = 0;
  const t0 = performance.now();
  const stopAt = t0 + o.duration * 1000;
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      const p = new Producer({ nsqdAddress: tcpAddress, logger: null });
      await p.connect();
      while (performance.now() < stopAt) {
        const t = performance.now();
        await p.publishMany('bench_replication', bodies);
        lat.push(performance.now() - t);
        msgs += bodies.length;
      }
      await p.close();
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { msgs, seconds, p99Ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] ?? 0, mpubs: lat.length };
}

/** @type {Scenario} */
export default {
  name: 'replication',
  description:
    'MPUB msgs/s and p99 per MPUB from 4 producers: one nsqd with --mem-queue-size=0 --sync-every=1 against the leader of a group of 2 with the same flags and sync acks (etcd started by the scenario), --replication-rounds rounds; the ratio',
  options,
  ownDaemons: true,
  budgetSeconds: (o) => o.replicationRounds * (2 * o.duration + 60) + 30,
  async run(b, result) {
    const o = b.opts;
    if (!fs.existsSync(ETCD_BIN)) {
      result.notes.push(`replication: skipped, no ${ETCD_BIN}`);
      return;
    }
    const nsqdBin = String(o.nsqdBin);
    /** @type {Proc[]} */
    const procs = [];
    /** @type {string[]} */
    const dirs = [];
    const tempDir = () => {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-repl-'));
      dirs.push(d);
      return d;
    };
    /** An nsqd with the durable flags; resolves with its process and TCP address once it logs it. */
    const nsqd = async (/** @type {string[]} */ extra) => {
      const tcp = `${LOOPBACK}:${await freePort()}`;
      const flags = [
        `--tcp-address=${tcp}`,
        `--http-address=${LOOPBACK}:${await freePort()}`,
        `--broadcast-address=${LOOPBACK}`,
        `--data-path=${tempDir()}`,
        '--mem-queue-size=0',
        '--sync-every=1',
        ...extra,
      ];
      const p = start(process.execPath, [nsqdBin, ...flags], procs);
      return { p, tcp };
    };
    try {
      const clientPort = await freePort();
      const peerPort = await freePort();
      const etcdUrl = `http://${LOOPBACK}:${clientPort}`;
      const peerUrl = `http://${LOOPBACK}:${peerPort}`;
      start(
        ETCD_BIN,
        [
          '--name=bench',
          `--data-dir=${tempDir()}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=bench=${peerUrl}`,
        ],
        procs,
      );
      await until('etcd', async () => (await fetch(`${etcdUrl}/health`).catch(() => null))?.ok);
      /** @type {number[]} */
      const ratios = [];
      for (let i = 0; i < o.replicationRounds; i++) {
        const solo = await nsqd([]);
        await until('the lone nsqd', () => /TCP: listening on/.test(solo.p.output()));
        const s = await load(o, solo.tcp);
        await stop(solo.p);

        const member = async (/** @type {string} */ id) =>
          nsqd([
            `--ha-group=bench${i}`,
            `--ha-member-id=${id}`,
            `--etcd-endpoints=${etcdUrl}`,
            `--replication-address=${LOOPBACK}:${await freePort()}`,
            '--replication-ack=sync',
          ]);
        const a = await member('a');
        await until('a leading', () => /REPLICATION: leading epoch/.test(a.p.output()));
        const m = await member('b');
        await until('b in sync', () => /b joined the in-sync set/.test(a.p.output()));
        const g = await load(o, a.tcp);
        await Promise.all([stop(a.p), stop(m.p)]);

        const soloRate = s.msgs / s.seconds;
        const groupRate = g.msgs / g.seconds;
        ratios.push(groupRate / soloRate);
        for (const [name, r, rate] of /** @type {const} */ ([
          ['one nsqd', s, soloRate],
          ['group of 2, sync acks', g, groupRate],
        ])) {
          result.phases.push({
            phase: `round ${i + 1}: ${name}`,
            kind: 'throughput',
            role: 'pub',
            msgs: r.msgs,
            bytes: r.msgs * o.msgSize,
            seconds: round(r.seconds, 3),
            msgsPerSec: round(rate, 0),
            mibPerSec: round((rate * o.msgSize) / 1024 / 1024, 1),
            generators: [],
            broker: null,
            machineCpuPct: null,
            otherCpuPct: null,
            timeline: [],
            connections: PRODUCERS,
            note: `${PRODUCERS} producers, MPUB ${o.batchSize} × ${o.msgSize} B; ${fmtInt(r.mpubs)} MPUBs, p99 ${fmt1(r.p99Ms)} ms`,
          });
        }
        log(`replication round ${i + 1}: ${fmtInt(soloRate)} vs ${fmtInt(groupRate)} msgs/s`);
      }
      const low = Math.min(...ratios);
      const high = Math.max(...ratios);
      result.notes.push(`group of 2 with sync acks / one nsqd = ${low.toFixed(2)}–${high.toFixed(2)} (goal ≥ 0.5)`);
    } finally {
      await Promise.all(procs.map(stop));
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  },
};
