/**
 * What the bench's generator processes share (load-worker.js, perf-worker.js, soak-worker.js,
 * http-worker.js, client-worker.js): the IPC harness, and the raw-protocol pieces (connection,
 * publisher and consumer frame handling, FIN batching).
 *
 * Parent → worker (IPC):  { type: 'config', ... }  { type: 'start' }  { type: 'stop' }  (+ a role's own,
 *                         e.g. the soak's pause / resume)
 * Worker → parent (IPC):  { type: 'ready' }  { type: 'progress', ... }  { type: 'done', ... }
 *                         { type: 'error', message }  { type: 'log', message }  { type: 'identify', info }
 *
 *   runWorker((config, w) => ({ start(), stop(), control?(msg), stopTimeout?(), close?() }))
 *
 * `w.stats` is what the parent sees (msgs, bytes, startAt, firstAt, lastAt, stopAt, ...);
 * `w.count(n, bytes)` records n acknowledged / handled messages; `w.finish(extra)` reports the
 * result (plus `extra`, e.g. latencies) and exits; `w.fail(message)` reports an error and exits.
 * A role's `stopTimeout()` replaces the default failure when no result came STOP_GRACE_MS after
 * `stop`; its `close()` runs when the worker shuts down.
 *
 * Times are process.hrtime (CLOCK_MONOTONIC on Linux: comparable across processes) in ms.
 */
import net from 'node:net';
import os from 'node:os';
import { encodeCommand, FrameDecoder, FrameType, HEARTBEAT, MAGIC_V2, MESSAGE_HEADER_BYTES } from '@nsq-ts/protocol';
import { emptyStats, nowMs } from './util.js';

/**
 * @import { Socket } from 'node:net'
 * @import { WorkerConfig, WorkerHandle, WorkerRole } from './types.js'
 */

/** @typedef {(type: number, data: Buffer) => void} OnFrame */
/** @typedef {(buffer: Buffer) => void} Write */

const PROGRESS_INTERVAL_MS = 100;
/** After `stop`, how long a worker may take to report (outstanding replies, close). */
export const STOP_GRACE_MS = 10_000;

export const NOP = Buffer.from('NOP\n', 'latin1');
const FIN_PREFIX = Buffer.from('FIN ', 'latin1');
const ID_OFFSET = 10;
/** `REQ <id> 0\n` after the ID instead of FIN's `\n` (config.requeue). */
const REQ_SUFFIX = Buffer.from(' 0\n', 'latin1');

/** @param {Buffer} data */
export const isHeartbeat = (data) => data.length === HEARTBEAT.length && data.toString('latin1') === HEARTBEAT;

/**
 * What every raw-protocol generator sends first on a connection: the V2 magic and IDENTIFY
 * (client_id `<role>-<index>`, feature_negotiation) plus `extra` fields.
 * @param {Socket} socket
 * @param {{ role: string, index: number | string }} config
 * @param {Record<string, unknown>} [extra]
 */
export function greet(socket, config, extra = {}) {
  socket.write(MAGIC_V2);
  const identify = {
    client_id: `${config.role}-${config.index}`,
    hostname: os.hostname(),
    user_agent: 'nsq-ts-bench/0.1',
    feature_negotiation: true,
    ...extra,
  };
  socket.write(encodeCommand('IDENTIFY', [], JSON.stringify(identify)));
}

/**
 * One raw-protocol connection to `config.host:port`: on connect the magic and IDENTIFY (`identify`:
 * extra fields, see greet), then every frame of each chunk read goes to `onFrame(type, data)` and,
 * once the chunk is decoded, `afterChunk()` runs. A socket error or close before the worker
 * finished is `lost(why)` (default: fatal).
 * @param {WorkerConfig} config
 * @param {WorkerHandle} w
 * @param {{ identify?: Record<string, unknown>, onFrame: OnFrame, afterChunk?: (() => void) | null, lost?: (why: string) => void }} handlers
 */
export function connect(config, w, { identify = {}, onFrame, afterChunk = null, lost = (why) => w.fail(why) }) {
  const socket = net.connect({ host: config.host, port: config.port, noDelay: true });
  const decoder = new FrameDecoder();
  socket.on('connect', () => greet(socket, config, identify));
  socket.on('data', (chunk) => {
    try {
      decoder.push(chunk, onFrame);
    } catch (err) {
      w.fail(`bad frame stream: ${/** @type {Error} */ (err).message}`);
      return;
    }
    afterChunk?.();
  });
  socket.on('error', (err) => {
    if (!w.finished) lost(`socket error: ${err.message}`);
  });
  socket.on('close', () => {
    if (!w.finished) lost('connection closed by the broker');
  });
  return socket;
}

/**
 * An error frame: E_FIN_FAILED / E_REQ_FAILED / E_TOUCH_FAILED are counted in `softErrors` (the
 * first `logFirst` of them logged); any other is fatal.
 * @param {WorkerHandle} w
 * @param {Buffer} data
 * @param {number} [logFirst]
 */
export function errorFrame(w, data, logFirst = 0) {
  const text = data.toString('latin1');
  if (/^E_(FIN|REQ|TOUCH)_FAILED/.test(text)) {
    w.stats.softErrors++;
    if (w.stats.softErrors <= logFirst) w.log(`non-fatal error frame: ${text}`);
    return;
  }
  w.fail(`error frame: ${text}`);
}

/**
 * `onFrame` for a publishing connection (`write(buffer)` writes to it): heartbeats are answered
 * with NOP; the IDENTIFY response makes the worker ready (after `onIdentify(data)`); from then on
 * every response must be `OK` to `command`, and calls `onOk()`. Error frames go to `onError(data)`
 * (default: fatal).
 * @param {WorkerHandle} w
 * @param {Write} write
 * @param {{ command: string, onOk: () => void, onIdentify?: ((data: Buffer) => void) | null, onError?: ((data: Buffer) => void) | null }} handlers
 * @returns {OnFrame}
 */
export function publisherFrames(w, write, { command, onOk, onIdentify = null, onError = null }) {
  let identified = false;
  return (type, data) => {
    if (type === FrameType.Error) {
      if (onError !== null) onError(data);
      else w.fail(`error frame: ${data.toString('latin1')}`);
      return;
    }
    if (type !== FrameType.Response) {
      w.fail(`unexpected frame type ${type} on a publisher connection`);
      return;
    }
    if (isHeartbeat(data)) {
      w.stats.heartbeats++;
      write(NOP);
      return;
    }
    if (!identified) {
      identified = true;
      onIdentify?.(data);
      w.ready();
      return;
    }
    // 'OK', compared byte by byte: this runs once per acknowledged command.
    if (data.length !== 2 || data[0] !== 0x4f || data[1] !== 0x4b) {
      w.fail(`unexpected response to ${command}: ${data.toString('latin1').slice(0, 200)}`);
      return;
    }
    onOk();
  };
}

/**
 * The consumer side of a raw-protocol connection (`write(buffer)` writes to it): the IDENTIFY
 * response (after `onIdentify(data)`) is answered with SUB, whose `OK` makes the worker ready;
 * `start()` sends `RDY config.rdy`; `stop()` stops counting and sends CLS, and the broker's
 * CLOSE_WAIT sets `closeWait` (then `onCloseWait()`). Every message is FINed (with
 * `config.requeue`, REQ'd with no delay) and every heartbeat answered with NOP, all in one write
 * per chunk read: call `flush()` once the chunk is decoded.
 * While counting, a first delivery (attempts 1) adds to msgs / bytes, then `onFirst(data)`; a
 * redelivery to redeliveries. `onMessage(data)` sees every message first (false: drop it, not
 * FINed). Error frames: see errorFrame (`logSoftErrors` = its `logFirst`).
 * @param {WorkerHandle} w
 * @param {WorkerConfig} config
 * @param {Write} write
 * @param {{ onIdentify?: (data: Buffer) => void, onMessage?: (data: Buffer) => boolean, onFirst?: (data: Buffer) => void, onCloseWait?: () => void, logSoftErrors?: number }} [hooks]
 */
export function subscriber(w, config, write, hooks = {}) {
  const { onIdentify, onMessage, onFirst, onCloseWait, logSoftErrors = 0 } = hooks;
  const stats = w.stats;
  const verb = config.requeue ? Buffer.from('REQ ', 'latin1') : FIN_PREFIX;
  const suffix = config.requeue ? REQ_SUFFIX : Buffer.from('\n', 'latin1');
  const lineBytes = 4 + 16 + suffix.length;
  /** @type {Buffer[]} frame data of the messages in the chunk being decoded, FINed by the next flush */
  let toFin = [];
  let nopPending = false;
  const sub = {
    /** @type {'identify' | 'sub' | 'subscribed' | 'closing'} */
    phase: 'identify',
    counting: true,
    closeWait: false,
    /** Messages received since the last flush. */
    get pending() {
      return toFin.length;
    },
    /** @type {OnFrame} */
    onFrame(type, data) {
      if (type === FrameType.Message) {
        if (onMessage !== undefined && onMessage(data) === false) return;
        toFin.push(data);
        if (!sub.counting) return;
        if (data.readUInt16BE(8) > 1) {
          stats.redeliveries++;
          return;
        }
        stats.msgs++;
        stats.bytes += data.length - MESSAGE_HEADER_BYTES;
        onFirst?.(data);
        return;
      }
      if (type === FrameType.Error) {
        errorFrame(w, data, logSoftErrors);
        return;
      }
      if (isHeartbeat(data)) {
        stats.heartbeats++;
        nopPending = true;
        return;
      }
      const text = data.toString('latin1');
      if (sub.phase === 'identify') {
        onIdentify?.(data);
        sub.phase = 'sub';
        write(encodeCommand('SUB', [config.topic, config.channel]));
      } else if (sub.phase === 'sub') {
        if (text !== 'OK') {
          w.fail(`unexpected response to SUB: ${text.slice(0, 200)}`);
          return;
        }
        sub.phase = 'subscribed';
        w.ready();
      } else if (sub.phase === 'closing' && text === 'CLOSE_WAIT') {
        // Messages sent before CLOSE_WAIT arrived before it: the flush after this chunk FINs them.
        sub.closeWait = true;
        onCloseWait?.();
      } else {
        w.fail(`unexpected response frame: ${text.slice(0, 200)}`);
      }
    },
    /** `FIN <id>\n` (or `REQ <id> 0\n`) for every message since the last flush, then NOP if a heartbeat came: one write. */
    flush() {
      const n = toFin.length;
      if (n === 0 && !nopPending) return;
      const out = Buffer.allocUnsafe(n * lineBytes + (nopPending ? NOP.length : 0));
      let at = 0;
      for (let i = 0; i < n; i++) {
        verb.copy(out, at);
        toFin[i].copy(out, at + 4, ID_OFFSET, ID_OFFSET + 16);
        suffix.copy(out, at + 20);
        at += lineBytes;
      }
      if (nopPending) NOP.copy(out, at);
      toFin = [];
      nopPending = false;
      write(out);
    },
    start() {
      write(encodeCommand('RDY', [String(config.rdy)]));
    },
    stop() {
      if (sub.phase === 'closing') return;
      sub.counting = false;
      sub.phase = 'closing';
      // CLS: the broker stops delivering and answers CLOSE_WAIT; FIN still goes out for whatever
      // was already on its way.
      write(encodeCommand('CLS'));
    },
  };
  return sub;
}

/**
 * Runs this process as a generator: waits for the config, makes the role, and answers the
 * parent's start / stop / role messages (see the top of this file).
 * @template {object} C the role's config
 * @param {(config: C & WorkerConfig, w: WorkerHandle) => WorkerRole | Promise<WorkerRole>} createRole
 */
export function runWorker(createRole) {
  /** @type {WorkerRole | null} */
  let role = null;
  let finished = false;
  /** @type {NodeJS.Timeout | undefined} */
  let progressTimer;
  /** @type {NodeJS.Timeout | undefined} */
  let hardTimer;
  /** @type {NodeJS.CpuUsage | null} */
  let cpuAtStart = null;
  const stats = emptyStats();

  /**
   * `done` runs once the message is handed to the IPC pipe (or at once without one).
   * @param {object} msg
   * @param {() => void} [done]
   */
  const send = (msg, done) => {
    if (process.connected && process.send) process.send(msg, undefined, undefined, done);
    else done?.();
  };

  const snapshot = () => {
    const cpu = cpuAtStart === null ? null : process.cpuUsage(cpuAtStart);
    return { cpuMs: cpu === null ? 0 : (cpu.user + cpu.system) / 1000, ...stats };
  };

  /** @param {number} code */
  const shutdown = (code) => {
    clearInterval(progressTimer);
    clearTimeout(hardTimer);
    role?.close?.();
    if (process.connected) process.disconnect();
    setTimeout(() => process.exit(code), 50).unref();
  };

  /** @type {WorkerHandle} */
  const w = {
    stats,
    send: (msg) => send(msg),
    log: (message) => send({ type: 'log', message }),
    ready: () => send({ type: 'ready' }),
    count(n, bytes) {
      const t = nowMs();
      if (stats.firstAt === 0) stats.firstAt = t;
      stats.lastAt = t;
      stats.msgs += n;
      stats.bytes += bytes;
      stats.batches++;
    },
    finish(extra = {}) {
      if (finished) return;
      finished = true;
      const end = nowMs();
      const cpu = process.cpuUsage(cpuAtStart ?? undefined);
      const wallMs = stats.startAt > 0 ? end - stats.startAt : 0;
      send(
        {
          type: 'done',
          ...snapshot(),
          ...extra,
          endAt: end,
          cpu: {
            userMs: cpu.user / 1000,
            systemMs: cpu.system / 1000,
            wallMs,
            pct: wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0,
          },
        },
        // A large result (the soak's bitmaps) must be written out before the channel closes.
        () => shutdown(0),
      );
    },
    fail(message) {
      if (finished) return;
      finished = true;
      send({ type: 'error', message, ...snapshot() }, () => shutdown(1));
    },
    get finished() {
      return finished;
    },
  };

  process.on('message', async (/** @type {{ type: string }} */ msg) => {
    try {
      if (msg.type === 'config') {
        const c = /** @type {C & WorkerConfig} */ (/** @type {unknown} */ (msg));
        // Whatever happens, this process bounds itself in time.
        hardTimer = setTimeout(() => w.fail(`worker hard deadline (${c.hardDeadlineMs} ms) reached`), c.hardDeadlineMs);
        hardTimer.unref();
        role = await createRole(c, w);
      } else if (msg.type === 'start') {
        stats.startAt = nowMs();
        cpuAtStart = process.cpuUsage();
        progressTimer = setInterval(() => send({ type: 'progress', ...snapshot() }), PROGRESS_INTERVAL_MS);
        await role?.start();
      } else if (msg.type === 'stop') {
        if (stats.stopAt === 0) stats.stopAt = nowMs();
        setTimeout(() => {
          if (finished) return;
          if (role?.stopTimeout) role.stopTimeout();
          else w.fail(`no result ${STOP_GRACE_MS} ms after stop`);
        }, STOP_GRACE_MS).unref();
        await role?.stop();
      } else if (role?.control) {
        // Anything else (e.g. the soak's pause / resume) is the role's own.
        await role.control(msg);
      }
    } catch (err) {
      w.fail(/** @type {Error} */ (err)?.stack ?? String(err));
    }
  });

  process.on('disconnect', () => {
    if (!finished) {
      finished = true;
      process.exit(1);
    }
  });
  process.on('uncaughtException', (err) => w.fail(`uncaught: ${err?.stack ?? err}`));
  process.on('unhandledRejection', (err) => w.fail(`unhandled rejection: ${/** @type {Error} */ (err)?.stack ?? err}`));
}
