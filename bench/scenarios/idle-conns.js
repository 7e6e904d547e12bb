/**
 * `idle-conns`: --idle-connections connections from --idle-procs processes, each IDENTIFY with
 * heartbeat_interval --idle-heartbeat-interval and then silent except NOP for heartbeats. Rows:
 * the connect phase (connections/s, RSS once all are open), and --idle-seconds of idleness after
 * a 2 s settle (broker CPU, RSS).
 */
import fs from 'node:fs';
import { PERF_WORKER, waitReady } from '../lib/generators.js';
import { checked, int, seconds } from '../lib/options.js';
import { manualPhase } from '../lib/phase.js';
import { TARGETS } from '../lib/targets.js';
import { fmtInt, mib, round, sleep } from '../lib/util.js';

/**
 * @import { Scenario } from '../lib/types.js'
 */

/** Shared with idle-topics. */
export const idleSeconds = seconds('the idle window measured', 10);

export const options = {
  idleConnections: int('connections to open', 10_000),
  idleProcs: int('generator processes', 4),
  idleHeartbeatInterval: checked(
    int('IDENTIFY heartbeat_interval', 60_000, { arg: 'MS' }),
    (n) => n >= 1000 && n <= 60_000,
    '1000..60000 ms (nsqd rejects anything else by default)',
  ),
  idleSeconds,
};

/**
 * Open file descriptors and the soft fd limit of a local process (null if unreadable).
 * @param {number | null} pid
 */
function fdInfo(pid) {
  try {
    const open = fs.readdirSync(`/proc/${pid}/fd`).length;
    const m = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').match(/^Max open files\s+(\d+)/m);
    return { open, limit: m ? Number(m[1]) : null };
  } catch {
    return null;
  }
}

/** @type {Scenario} */
export default {
  name: 'idle-conns',
  description:
    '--idle-connections connections from --idle-procs processes, 64 handshakes at a time, each magic + IDENTIFY and then silent but for NOPs; 2 s settle, then --idle-seconds measured: connect rate, broker RSS, CPU and fds, KiB per connection (the broker gets ulimit -n 65536)',
  options,
  group: 'perf',
  // 10,000 connections need more descriptors than a default soft limit of 1024.
  broker: () => ({ nofile: 65_536 }),
  budgetSeconds: (o) => o.idleSeconds + 480,
  async run(b, result) {
    const o = b.opts;
    await b.deleteTopic(result.topic);
    const fds = fdInfo(b.nsqd.pid);
    result.brokerFdLimit = fds?.limit ?? null;
    if (fds?.limit && fds.limit < o.idleConnections + 64) {
      throw new Error(`broker fd limit ${fds.limit} < ${o.idleConnections} connections + 64`);
    }
    const base = b.brokerSample();
    const procs = Math.min(o.idleProcs, o.idleConnections);
    const gens = Array.from({ length: procs }, (_, i) =>
      b.worker(PERF_WORKER, 'idle', i, `idle#${i}`, {
        count: Math.floor(o.idleConnections / procs) + (i < o.idleConnections % procs ? 1 : 0),
        concurrency: 64,
        heartbeatIntervalMs: o.idleHeartbeatInterval,
      }),
    );
    let ready = 0;
    for (const g of gens) g.ready.then(() => ready++);
    const connectTimeline = await b.tick('connect', [gens], 120_000, {
      until: () => ready === procs,
      unit: 'conn/s',
      format: () => `${ready} of ${procs} processes have all their connections`,
    });
    await waitReady(gens, 1000);
    const connected = b.brokerSample();
    const connect = manualPhase(`connect ${fmtInt(o.idleConnections)}`, 'idle', {
      msgs: o.idleConnections,
      rate: true,
      timeline: connectTimeline,
    });
    for (const g of gens) g.start();
    await sleep(2000);
    const idleTimeline = await b.tick('idle', [gens], o.idleSeconds * 1000);
    const open = fdInfo(b.nsqd.pid);
    const end = b.brokerSample();
    for (const g of gens) g.stop();
    const rs = await b.results(gens);
    const idle = manualPhase(`idle ${o.idleSeconds} s`, 'idle', {
      msgs: o.idleConnections,
      timeline: idleTimeline,
      gens,
      rs,
    });
    // The generators' CPU while connecting (reported by them at the end; the tick counted it as
    // "other", since a generator's CPU is otherwise counted from its start).
    const connectWall = connectTimeline.wallMs;
    connect.generators = rs.map((r, i) => ({
      name: gens[i].name,
      connections: r.connections,
      cpuPct: round(((r.connect?.cpuMs ?? 0) / connectWall) * 100, 1),
      cpuMs: round(r.connect?.cpuMs ?? 0, 0),
      connectMs: round(r.connect?.wallMs ?? 0, 0),
    }));
    if (connect.otherCpuPct !== null) {
      const genPct = (rs.reduce((a, r) => a + (r.connect?.cpuMs ?? 0), 0) / connectWall) * 100;
      connect.otherCpuPct = round(Math.max(0, connect.otherCpuPct - genPct), 1);
    }
    const perConnKiB =
      base && end ? (((end.rssKiB ?? 0) - (base.rssKiB ?? 0)) * 1024) / o.idleConnections / 1024 : null;
    result.idle = {
      connections: o.idleConnections,
      processes: procs,
      heartbeatIntervalMs: o.idleHeartbeatInterval,
      brokerFds: open,
      baseRssMiB: mib(base?.rssKiB),
      connectedRssMiB: mib(connected?.rssKiB),
      idleEndRssMiB: mib(end?.rssKiB),
      rssPerConnectionKiB: perConnKiB === null ? null : round(perConnKiB, 1),
      idleCpuPct: idle.broker?.cpuPct ?? null,
      heartbeats: rs.reduce((a, r) => a + (r.heartbeats ?? 0), 0),
    };
    connect.note = `${procs} procs; RSS ${result.idle.baseRssMiB} → ${result.idle.connectedRssMiB} MiB`;
    idle.note =
      `${open?.open ?? '?'} broker fds (limit ${fds?.limit ?? '?'}); ${result.idle.rssPerConnectionKiB} KiB/conn; ` +
      `${result.idle.heartbeats} heartbeats`;
    result.phases.push(connect, idle);
    const { idleConnsRssMB: rssMB, idleConnsCpuPct: cpuPct } = TARGETS;
    if (end && (end.rssKiB ?? 0) / 1024 >= rssMB / 1.048576) result.notes.push(`idle-conns: RSS ≥ ${rssMB} MB target`);
    if ((idle.broker?.cpuPct ?? 0) >= cpuPct) {
      result.notes.push(`idle-conns: broker CPU ${idle.broker?.cpuPct}% ≥ ${cpuPct}% target`);
    }
  },
};
