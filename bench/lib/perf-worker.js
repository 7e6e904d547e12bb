/**
 * Raw-protocol generators for the performance scenarios of issue 9, run as child processes forked
 * by bench/run.js (IPC protocol: see load-worker.js; harness: worker-common.js).
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
import net from 'node:net';
import { encodeCommand, FrameDecoder, FrameType, HEARTBEAT, MESSAGE_HEADER_BYTES } from '@nsq-ts/protocol';
import { greet, nowMs, runWorker } from './worker-common.js';

const NOP = Buffer.from('NOP\n', 'latin1');
const FIN_PREFIX = Buffer.from('FIN ', 'latin1');
const FIN_LINE_BYTES = 4 + 16 + 1;
const ID_OFFSET = 10;
const TICK_MS = 1;

const isHeartbeat = (data) => data.length === HEARTBEAT.length && data.toString('latin1') === HEARTBEAT;
const isSoftError = (text) => /^E_(FIN|REQ|TOUCH)_FAILED/.test(text);

/** One connection with the magic and an IDENTIFY sent; `onFrame(type, data)` sees every frame. */
function open(config, identify, onFrame, onClose) {
  const socket = net.connect({ host: config.host, port: config.port, noDelay: true });
  const decoder = new FrameDecoder();
  socket.on('connect', () => greet(socket, config, identify));
  socket.on('data', (chunk) => decoder.push(chunk, onFrame));
  socket.on('error', (err) => onClose(`socket error: ${err.message}`));
  socket.on('close', () => onClose('connection closed by the broker'));
  return socket;
}

/** `n` PUB commands for `topic`, each with a `msgSize`-byte body of 'x', back to back. */
function pubCommands(topic, msgSize, n) {
  const one = encodeCommand('PUB', [topic], Buffer.alloc(msgSize, 'x'));
  const all = Buffer.allocUnsafe(one.length * n);
  for (let i = 0; i < n; i++) one.copy(all, i * one.length);
  return { one: one.length, all, bodyOffset: one.length - msgSize };
}

runWorker((config, w) => {
  const stats = w.stats;
  let closing = false;
  const onClose = (why) => {
    if (!closing && !w.finished) w.fail(why);
  };

  // ---- pub1 ---------------------------------------------------------------------------------
  if (config.role === 'pub1') {
    const cmds = pubCommands(config.topic, config.msgSize, config.window);
    let identified = false;
    let running = false;
    let stopping = false;
    let outstanding = 0;
    let oks = 0;
    const onFrame = (type, data) => {
      if (type === FrameType.Error) {
        w.fail(`error frame: ${data.toString('latin1')}`);
        return;
      }
      if (isHeartbeat(data)) {
        stats.heartbeats++;
        socket.write(NOP);
        return;
      }
      if (!identified) {
        identified = true;
        w.ready();
        return;
      }
      if (data.length !== 2 || data[0] !== 0x4f || data[1] !== 0x4b) {
        w.fail(`unexpected response to PUB: ${data.toString('latin1').slice(0, 200)}`);
        return;
      }
      oks++;
    };
    const socket = open(config, {}, onFrame, onClose);
    socket.on('data', () => {
      if (oks === 0 || w.finished) return;
      const n = oks;
      oks = 0;
      outstanding -= n;
      // One count per chunk read (not per OK): the progress numbers are the same, cheaper.
      const t = nowMs();
      if (stats.firstAt === 0) stats.firstAt = t;
      stats.lastAt = t;
      stats.msgs += n;
      stats.bytes += n * config.msgSize;
      stats.batches++;
      if (stopping) {
        if (outstanding === 0) {
          closing = true;
          w.finish();
        }
        return;
      }
      outstanding += n;
      socket.write(cmds.all.subarray(0, n * cmds.one));
    });
    return {
      start() {
        running = true;
        outstanding = config.window;
        socket.write(cmds.all);
      },
      stop() {
        stopping = true;
        if (!running || outstanding === 0) {
          closing = true;
          w.finish();
        }
      },
    };
  }

  // ---- paced --------------------------------------------------------------------------------
  if (config.role === 'paced') {
    // Room for one tick's worth at 4× the rate (a late timer sends what was due meanwhile).
    const perTick = Math.max(64, Math.ceil((config.rate / 1000) * TICK_MS * 4));
    let cmds = pubCommands(config.topic, config.msgSize, perTick);
    let identified = false;
    let stopping = false;
    let sent = 0;
    let acked = 0;
    let startedAt = 0;
    let timer = null;
    let maxOutstanding = 0;
    let maxBurst = 0;
    const onFrame = (type, data) => {
      if (type === FrameType.Error) {
        w.fail(`error frame: ${data.toString('latin1')}`);
        return;
      }
      if (isHeartbeat(data)) {
        stats.heartbeats++;
        socket.write(NOP);
        return;
      }
      if (!identified) {
        identified = true;
        w.ready();
        return;
      }
      if (data.length !== 2 || data[0] !== 0x4f || data[1] !== 0x4b) {
        w.fail(`unexpected response to PUB: ${data.toString('latin1').slice(0, 200)}`);
        return;
      }
      acked++;
    };
    const socket = open(config, {}, onFrame, onClose);
    const maybeFinish = () => {
      if (stopping && acked === sent && !w.finished) {
        closing = true;
        w.finish({ sent, maxOutstanding, maxBurst, rate: config.rate });
      }
    };
    socket.on('data', () => {
      const n = acked - stats.msgs;
      if (n > 0) {
        const t = nowMs();
        if (stats.firstAt === 0) stats.firstAt = t;
        stats.lastAt = t;
        stats.msgs += n;
        stats.bytes += n * config.msgSize;
        stats.batches++;
      }
      maybeFinish();
    });
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
    let phase = 'identify';
    let lat = new Float64Array(Math.max(1024, config.expected ?? 1 << 20));
    let n = 0;
    let firstStamp = -1;
    let warmupSkipped = 0;
    let toFin = [];
    let nopPending = false;
    let counting = true;
    let closeWait = false;
    let chunkAt = 0;
    const onFrame = (type, data) => {
      if (type === FrameType.Message) {
        toFin.push(data);
        if (!counting) return;
        if (data.readUInt16BE(8) > 1) {
          stats.redeliveries++;
          return;
        }
        stats.msgs++;
        stats.bytes += data.length - MESSAGE_HEADER_BYTES;
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
        return;
      }
      if (type === FrameType.Error) {
        const text = data.toString('latin1');
        if (isSoftError(text)) stats.softErrors++;
        else w.fail(`error frame: ${text}`);
        return;
      }
      if (isHeartbeat(data)) {
        stats.heartbeats++;
        nopPending = true;
        return;
      }
      const text = data.toString('latin1');
      if (phase === 'identify') {
        phase = 'sub';
        socket.write(encodeCommand('SUB', [config.topic, config.channel]));
      } else if (phase === 'sub') {
        if (text !== 'OK') {
          w.fail(`unexpected response to SUB: ${text.slice(0, 200)}`);
          return;
        }
        phase = 'subscribed';
        w.ready();
      } else if (phase === 'closing' && text === 'CLOSE_WAIT') {
        closeWait = true;
      } else {
        w.fail(`unexpected response frame: ${text.slice(0, 200)}`);
      }
    };
    const socket = open(config, {}, onFrame, onClose);
    // Listener order per chunk: this one (prepended) stamps its arrival, then open()'s decoder
    // calls onFrame for every frame, then the one below FINs them all in one write.
    socket.prependListener('data', () => {
      chunkAt = nowMs();
    });
    socket.on('data', () => {
      if (w.finished) return;
      const k = toFin.length;
      if (k > 0 && counting) {
        if (stats.firstAt === 0) stats.firstAt = chunkAt;
        stats.lastAt = chunkAt;
      }
      if (k > 0 || nopPending) {
        const out = Buffer.allocUnsafe(k * FIN_LINE_BYTES + (nopPending ? NOP.length : 0));
        let at = 0;
        for (let i = 0; i < k; i++) {
          FIN_PREFIX.copy(out, at);
          toFin[i].copy(out, at + 4, ID_OFFSET, ID_OFFSET + 16);
          out[at + 20] = 0x0a;
          at += FIN_LINE_BYTES;
        }
        if (nopPending) NOP.copy(out, at);
        toFin = [];
        nopPending = false;
        socket.write(out);
      }
      if (closeWait) {
        closing = true;
        w.finish({ latency: summarize(lat.subarray(0, n)), warmupSkipped });
      }
    });
    return {
      start() {
        socket.write(encodeCommand('RDY', [String(config.rdy)]));
      },
      stop() {
        if (phase === 'closing') return;
        counting = false;
        phase = 'closing';
        socket.write(encodeCommand('CLS'));
      },
    };
  }

  // ---- idle ---------------------------------------------------------------------------------
  if (config.role === 'idle') {
    const sockets = [];
    let identified = 0;
    let opened = 0;
    // CPU and time of the connect phase (the harness counts CPU only from `start`, which comes
    // after every connection is up).
    const connectFrom = { at: nowMs(), cpu: process.cpuUsage() };
    let connect = null;
    const openOne = () => {
      if (opened >= config.count || w.finished) return;
      const i = opened++;
      let done = false;
      let socket = null;
      const onFrame = (type, data) => {
        if (type === FrameType.Error) {
          w.fail(`connection ${i}: error frame: ${data.toString('latin1')}`);
          return;
        }
        if (isHeartbeat(data)) {
          stats.heartbeats++;
          socket.write(NOP);
          return;
        }
        if (!done) {
          done = true;
          identified++;
          stats.msgs = identified;
          if (identified === config.count) {
            stats.lastAt = nowMs();
            const cpu = process.cpuUsage(connectFrom.cpu);
            connect = { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: stats.lastAt - connectFrom.at };
            w.ready();
          }
          openOne();
        }
      };
      socket = open(
        { ...config, index: `${config.index}.${i}` },
        { heartbeat_interval: config.heartbeatIntervalMs },
        onFrame,
        (why) => onClose(`connection ${i}: ${why}`),
      );
      sockets.push(socket);
    };
    for (let i = 0; i < Math.min(config.concurrency, config.count); i++) openOne();
    return {
      start() {},
      stop() {
        closing = true;
        for (const s of sockets) s.destroy();
        w.finish({ connections: identified, connect });
      },
    };
  }

  throw new Error(`perf-worker: unknown role ${config.role}`);
});

/** p50 / p99 / p99.9 / max of latencies in ms (nearest rank), and a coarse histogram. */
function summarize(values) {
  const s = Float64Array.from(values).sort();
  const at = (p) => (s.length === 0 ? null : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]);
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
