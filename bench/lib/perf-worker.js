/**
 * Raw-protocol generators of the pub-single, latency and idle-conns scenarios, run as child
 * processes forked by bench/run.js (IPC protocol and harness: worker-common.js).
 *
 * Roles:
 *   pub1     single-message `PUB`, `window` commands in flight on one connection: every chunk of
 *            `OK`s read is answered by as many new `PUB`s in one write (pipelined, no batching
 *            on the wire beyond what TCP does). msgs = acknowledged.
 *   paced    latency publisher: offers `rate` msgs/s as single `PUB`s, open loop (it never waits
 *            for an `OK` to send the next). A 1 ms timer sends every message due by then in one
 *            write; each body carries, in its first 8 bytes, process.hrtime in ms (float64 LE)
 *            taken right before that write. msgs = acknowledged.
 *   lat-sub  consumer (IDENTIFY, SUB, `RDY rdy`, FIN everything) that records, per first delivery,
 *            receive time − the stamp in the body (receive time = when the chunk holding the
 *            message was read). process.hrtime is CLOCK_MONOTONIC on Linux, the same clock in
 *            every process, so publisher and consumer need no synchronisation. Messages stamped
 *            less than `warmupMs` after the first stamp seen are not counted in the percentiles.
 *   idle     opens `count` connections (`concurrency` handshakes at a time), each sending the
 *            magic and IDENTIFY { heartbeat_interval }, then only answering `_heartbeat_` with
 *            NOP. Ready once every connection has its IDENTIFY response; stays until `stop`.
 *            msgs = connections open.
 */
import { encodeCommand, FrameType, MESSAGE_HEADER_BYTES } from '@nsq-ts/protocol';
import { nowMs } from './util.js';
import { connect, isHeartbeat, NOP, publisherFrames, runWorker, subscriber } from './worker-common.js';

/**
 * @import { Socket } from 'node:net'
 * @import { LatencySummary, WorkerConfig } from './types.js'
 * @import { OnFrame } from './worker-common.js'
 */

/**
 * @typedef {WorkerConfig & { window: number, rate: number, expected?: number, warmupMs: number,
 *   count: number, concurrency: number, heartbeatIntervalMs: number }} PerfConfig
 */

const TICK_MS = 1;

/**
 * `n` PUB commands for `topic`, each with a `msgSize`-byte body of 'x', back to back.
 * @param {string} topic
 * @param {number} msgSize
 * @param {number} n
 */
function pubCommands(topic, msgSize, n) {
  const one = encodeCommand('PUB', [topic], Buffer.alloc(msgSize, 'x'));
  const all = Buffer.allocUnsafe(one.length * n);
  for (let i = 0; i < n; i++) one.copy(all, i * one.length);
  return { one: one.length, all, bodyOffset: one.length - msgSize };
}

runWorker((/** @type {PerfConfig} */ config, w) => {
  const stats = w.stats;
  /**
   * A publishing connection: `onOk()` per acknowledged PUB, `afterChunk()` per chunk read.
   * @param {() => void} onOk
   * @param {() => void} afterChunk
   * @returns {Socket}
   */
  const publisher = (onOk, afterChunk) => {
    const socket = connect(config, w, {
      onFrame: publisherFrames(w, (buf) => socket.write(buf), { command: 'PUB', onOk }),
      afterChunk,
    });
    return socket;
  };

  // ---- pub1 ---------------------------------------------------------------------------------
  if (config.role === 'pub1') {
    const cmds = pubCommands(config.topic, config.msgSize, config.window);
    let running = false;
    let stopping = false;
    let outstanding = 0;
    let oks = 0;
    const socket = publisher(
      () => oks++,
      () => {
        if (oks === 0 || w.finished) return;
        const n = oks;
        oks = 0;
        outstanding -= n;
        // One count per chunk read (not per OK): the progress numbers are the same, cheaper.
        w.count(n, n * config.msgSize);
        if (stopping) {
          if (outstanding === 0) w.finish();
          return;
        }
        outstanding += n;
        socket.write(cmds.all.subarray(0, n * cmds.one));
      },
    );
    return {
      start() {
        running = true;
        outstanding = config.window;
        socket.write(cmds.all);
      },
      stop() {
        stopping = true;
        if (!running || outstanding === 0) w.finish();
      },
    };
  }

  // ---- paced --------------------------------------------------------------------------------
  if (config.role === 'paced') {
    // Room for one tick's worth at 4× the rate (a late timer sends what was due meanwhile).
    const perTick = Math.max(64, Math.ceil((config.rate / 1000) * TICK_MS * 4));
    let cmds = pubCommands(config.topic, config.msgSize, perTick);
    let stopping = false;
    let sent = 0;
    let acked = 0;
    let startedAt = 0;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    let maxOutstanding = 0;
    let maxBurst = 0;
    const maybeFinish = () => {
      if (stopping && acked === sent && !w.finished) w.finish({ sent, maxOutstanding, maxBurst, rate: config.rate });
    };
    const socket = publisher(
      () => acked++,
      () => {
        const n = acked - stats.msgs;
        if (n > 0) w.count(n, n * config.msgSize);
        maybeFinish();
      },
    );
    const tick = () => {
      if (stopping) return;
      const t = nowMs();
      const due = Math.floor(((t - startedAt) * config.rate) / 1000) - sent;
      if (due > 0) {
        if (due > perTick && due * cmds.one > cmds.all.length) cmds = pubCommands(config.topic, config.msgSize, due);
        const out = Buffer.allocUnsafe(due * cmds.one);
        cmds.all.copy(out, 0, 0, due * cmds.one);
        const stamp = nowMs();
        for (let i = 0; i < due; i++) out.writeDoubleLE(stamp, i * cmds.one + cmds.bodyOffset);
        socket.write(out);
        sent += due;
        if (due > maxBurst) maxBurst = due;
        if (sent - acked > maxOutstanding) maxOutstanding = sent - acked;
      }
      timer = setTimeout(tick, TICK_MS);
    };
    return {
      start() {
        startedAt = nowMs();
        tick();
      },
      stop() {
        stopping = true;
        clearTimeout(timer);
        maybeFinish();
      },
    };
  }

  // ---- lat-sub ------------------------------------------------------------------------------
  if (config.role === 'lat-sub') {
    let lat = new Float64Array(Math.max(1024, config.expected ?? 1 << 20));
    let n = 0;
    let firstStamp = -1;
    let warmupSkipped = 0;
    let chunkAt = 0;
    /** @type {Socket | null} */
    let socket = null;
    const sub = subscriber(w, config, (buf) => socket?.write(buf), {
      onFirst: (data) => {
        const stamp = data.readDoubleLE(MESSAGE_HEADER_BYTES);
        if (firstStamp < 0) firstStamp = stamp;
        if (stamp - firstStamp < config.warmupMs) {
          warmupSkipped++;
          return;
        }
        if (n === lat.length) {
          const bigger = new Float64Array(lat.length * 2);
          bigger.set(lat);
          lat = bigger;
        }
        lat[n++] = chunkAt - stamp;
      },
    });
    socket = connect(config, w, {
      onFrame: sub.onFrame,
      afterChunk: () => {
        if (w.finished) return;
        if (sub.pending > 0 && sub.counting) {
          if (stats.firstAt === 0) stats.firstAt = chunkAt;
          stats.lastAt = chunkAt;
        }
        sub.flush();
        if (sub.closeWait) w.finish({ latency: summarize(lat.subarray(0, n)), warmupSkipped });
      },
    });
    // Prepended, so it runs first per chunk: the receive time of every message decoded from it.
    socket.prependListener('data', () => {
      chunkAt = nowMs();
    });
    return { start: sub.start, stop: sub.stop };
  }

  // ---- idle ---------------------------------------------------------------------------------
  if (config.role === 'idle') {
    /** @type {Socket[]} */
    const sockets = [];
    let identified = 0;
    let opened = 0;
    // CPU and time of the connect phase (the harness counts CPU only from `start`, which comes
    // after every connection is up).
    const connectFrom = { at: nowMs(), cpu: process.cpuUsage() };
    /** @type {{ cpuMs: number, wallMs: number } | null} */
    let connected = null;
    const openOne = () => {
      if (opened >= config.count || w.finished) return;
      const i = opened++;
      let done = false;
      /** @type {Socket | null} */
      let socket = null;
      /** @type {OnFrame} */
      const onFrame = (type, data) => {
        if (type === FrameType.Error) {
          w.fail(`connection ${i}: error frame: ${data.toString('latin1')}`);
          return;
        }
        if (isHeartbeat(data)) {
          stats.heartbeats++;
          socket?.write(NOP);
          return;
        }
        if (!done) {
          done = true;
          identified++;
          stats.msgs = identified;
          if (identified === config.count) {
            stats.lastAt = nowMs();
            const cpu = process.cpuUsage(connectFrom.cpu);
            connected = { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: stats.lastAt - connectFrom.at };
            w.ready();
          }
          openOne();
        }
      };
      socket = connect({ ...config, index: `${config.index}.${i}` }, w, {
        identify: { heartbeat_interval: config.heartbeatIntervalMs },
        onFrame,
        lost: (why) => w.fail(`connection ${i}: ${why}`),
      });
      sockets.push(socket);
    };
    for (let i = 0; i < Math.min(config.concurrency, config.count); i++) openOne();
    return {
      start() {},
      stop() {
        for (const s of sockets) s.destroy();
        w.finish({ connections: identified, connect: connected });
      },
    };
  }

  throw new Error(`perf-worker: unknown role ${config.role}`);
});

/**
 * p50 / p99 / p99.9 / max of latencies in ms (nearest rank), and a coarse histogram.
 * @param {Float64Array} values
 * @returns {LatencySummary}
 */
function summarize(values) {
  const s = Float64Array.from(values).sort();
  /** @param {number} p */
  const at = (p) => (s.length === 0 ? null : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]);
  /** @param {number | null} x */
  const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  let sum = 0;
  for (const v of s) sum += v;
  const bounds = [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, Number.POSITIVE_INFINITY];
  const counts = bounds.map(() => 0);
  let b = 0;
  for (const v of s) {
    while (v > bounds[b]) b++;
    counts[b]++;
  }
  return {
    n: s.length,
    minMs: r3(s.length ? s[0] : null),
    p50Ms: r3(at(0.5)),
    p90Ms: r3(at(0.9)),
    p99Ms: r3(at(0.99)),
    p999Ms: r3(at(0.999)),
    maxMs: r3(s.length ? s[s.length - 1] : null),
    meanMs: r3(s.length ? sum / s.length : null),
    histogramMs: bounds.map((le, i) => ({ le: Number.isFinite(le) ? le : 'inf', n: counts[i] })),
  };
}
