/**
 * `replication`: what a replica group's sync acks cost. Per round (--replication-rounds, 2), the
 * same load one after the other on the same machine: 4 producers (@nsq-ts/client, in this
 * process) each sending MPUBs of --batch-size × --msg-size for --duration s, one MPUB in flight
 * each, against (1) one nsqd with --mem-queue-size=0 --sync-every=1 and (2) the leader of a group
 * of each size in --replication-members (2 and 3) with the same flags and --replication-ack=sync,
 * coordinated by an etcd this scenario starts (/usr/bin/etcd). Reported: msgs/s and p99 per MPUB
 * of each, and each group's rate over the lone nsqd's (the goal: ≥ 0.5). Every member
 * shares the machine's cores and disk. It starts its own processes: no --nsqd-* broker is used.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lib/broker.js';
import { ETCD_BIN, startEtcd } from '../lib/etcd.js';
import { int, intList } from '../lib/options.js';
import { fmt1, fmtInt, log, round, sleep, until } from '../lib/util.js';

/**
 * @import { ChildProcess } from 'node:child_process'
 * @import { Scenario, Options, RunningResult } from '../lib/types.js'
 */

const LOOPBACK = '127.0.0.1';
const PRODUCERS = 4;

export const options = {
  replicationRounds: int('replication: rounds of (one nsqd, each group)', 2),
  replicationMembers: intList('replication: group sizes, one phase each per round', '2,3'),
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

/**
 * One load's row.
 * @param {RunningResult} result
 * @param {Options} o
 * @param {string} phase
 * @param {{ msgs: number, seconds: number, p99Ms: number, mpubs: number }} r
 * @param {number} rate
 */
function push(result, o, phase, r, rate) {
  result.phases.push({
    phase,
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

/** @type {Scenario} */
export default {
  name: 'replication',
  description:
    'MPUB msgs/s and p99 per MPUB from 4 producers: one nsqd with --mem-queue-size=0 --sync-every=1 against the leader of a group of each --replication-members size with the same flags and sync acks (etcd started by the scenario), --replication-rounds rounds; the ratios',
  options,
  ownDaemons: true,
  budgetSeconds: (o) => o.replicationRounds * ((1 + o.replicationMembers.length) * (o.duration + 30)) + 30,
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
    const etcd = await startEtcd();
    try {
      /** @type {Map<number, number[]>} */
      const ratios = new Map();
      for (let i = 0; i < o.replicationRounds; i++) {
        const solo = await nsqd([]);
        await until('the lone nsqd', () => /TCP: listening on/.test(solo.p.output()));
        const s = await load(o, solo.tcp);
        await stop(solo.p);
        const soloRate = s.msgs / s.seconds;
        push(result, o, `round ${i + 1}: one nsqd`, s, soloRate);
        const line = [`replication round ${i + 1}: one nsqd ${fmtInt(soloRate)}`];

        for (const size of o.replicationMembers) {
          const group = `bench${i}x${size}`;
          const member = async (/** @type {string} */ id) =>
            nsqd([
              `--ha-group=${group}`,
              `--ha-member-id=${id}`,
              `--etcd-endpoints=${etcd.url}`,
              `--replication-address=${LOOPBACK}:${await freePort()}`,
              '--replication-ack=sync',
            ]);
          const leader = await member('m0');
          await until('m0 leading', () => /REPLICATION: leading epoch/.test(leader.p.output()));
          const followers = [];
          for (let k = 1; k < size; k++) {
            followers.push(await member(`m${k}`));
            const joined = new RegExp(`m${k} joined the in-sync set`);
            await until(`m${k} in sync`, () => joined.test(leader.p.output()));
          }
          const g = await load(o, leader.tcp);
          await Promise.all([leader, ...followers].map((m) => stop(m.p)));
          const groupRate = g.msgs / g.seconds;
          ratios.set(size, [...(ratios.get(size) ?? []), groupRate / soloRate]);
          push(result, o, `round ${i + 1}: group of ${size}, sync acks`, g, groupRate);
          line.push(`group of ${size} ${fmtInt(groupRate)}`);
        }
        log(`${line.join(', ')} msgs/s`);
      }
      for (const [size, r] of ratios) {
        const low = Math.min(...r).toFixed(2);
        const high = Math.max(...r).toFixed(2);
        result.notes.push(`group of ${size} with sync acks / one nsqd = ${low}–${high} (goal ≥ 0.5)`);
      }
    } finally {
      await Promise.all(procs.map(stop));
      await etcd.stop();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  },
};
