/**
 * One load-generator connection, run as a child process forked by bench/run.js (one process per
 * connection, so the generator is not the bottleneck and its CPU use can be reported on its own).
 *
 * Parent → worker (IPC):  { type: 'config', ... }  { type: 'start' }  { type: 'stop' }
 * Worker → parent (IPC):  { type: 'ready' }  { type: 'progress', ... }  { type: 'done', ... }
 *                         { type: 'error', message }
 *
 * Roles:
 *   pub  MPUB batches of `batchSize` × `msgSize` bytes, `pipeline` batches outstanding, OK
 *        responses matched FIFO. Stops after `stop` (or after `maxMessages`), once every
 *        outstanding batch is acknowledged.
 *   sub  IDENTIFY (feature_negotiation), SUB topic channel, RDY `rdy` on start, FIN every message
 *        (all FINs for one chunk of received data in one write), NOP for every heartbeat.
 *
 * Times are process.hrtime (CLOCK_MONOTONIC on Linux: comparable across processes) in ms.
 */
import net from 'node:net';
import {
  decodeMessage,
  encodeCommand,
  encodeMpubBody,
  FrameDecoder,
  FrameType,
  HEARTBEAT,
  MESSAGE_HEADER_BYTES,
} from '@nsq-ts/protocol';
import { makeBodies } from './bodies.js';
import { greet } from './worker-common.js';

const PROGRESS_INTERVAL_MS = 100;
/** After `stop`, how long a publisher waits for outstanding OKs / a consumer for CLOSE_WAIT. */
const STOP_GRACE_MS = 10_000;
const NOP = Buffer.from('NOP\n', 'latin1');
const FIN_PREFIX = Buffer.from('FIN ', 'latin1');
const FIN_LINE_BYTES = 4 + 16 + 1;
const ID_OFFSET = 10;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

let config = null;
let socket = null;
let finished = false;
let progressTimer = null;
let hardTimer = null;

const stats = {
  /** pub: messages acknowledged; sub: first deliveries (attempts == 1). */
  msgs: 0,
  /** Payload bytes of `msgs`. */
  bytes: 0,
  /** sub: deliveries with attempts > 1. */
  redeliveries: 0,
  /** pub: batches acknowledged. */
  batches: 0,
  heartbeats: 0,
  /** Non-fatal error frames (E_FIN_FAILED ...). */
  softErrors: 0,
  /** sub: the broker answered CLS with CLOSE_WAIT. */
  closeWait: false,
  startAt: 0,
  firstAt: 0,
  lastAt: 0,
  stopAt: 0,
};
let cpuAtStart = null;

function send(msg) {
  if (process.connected) process.send(msg);
}

function fail(message) {
  if (finished) return;
  finished = true;
  send({ type: 'error', message, ...snapshot() });
  shutdown(1);
}

function snapshot() {
  const cpu = cpuAtStart === null ? null : process.cpuUsage(cpuAtStart);
  return {
    cpuMs: cpu === null ? 0 : (cpu.user + cpu.system) / 1000,
    msgs: stats.msgs,
    bytes: stats.bytes,
    redeliveries: stats.redeliveries,
    batches: stats.batches,
    heartbeats: stats.heartbeats,
    softErrors: stats.softErrors,
    closeWait: stats.closeWait,
    startAt: stats.startAt,
    firstAt: stats.firstAt,
    lastAt: stats.lastAt,
    stopAt: stats.stopAt,
  };
}

function finish() {
  if (finished) return;
  finished = true;
  const end = nowMs();
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  const wallMs = stats.startAt > 0 ? end - stats.startAt : 0;
  send({
    type: 'done',
    ...snapshot(),
    endAt: end,
    cpu: {
      userMs: cpu.user / 1000,
      systemMs: cpu.system / 1000,
      wallMs,
      pct: wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0,
    },
  });
  shutdown(0);
}

function shutdown(code) {
  clearInterval(progressTimer);
  clearTimeout(hardTimer);
  // end(), not destroy(): the last FINs / NOP may still be queued for writing.
  if (socket !== null) socket.end();
  // Let the IPC message flush before exiting.
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(code), 50).unref();
}

function connect(onReady) {
  socket = net.connect({ host: config.host, port: config.port, noDelay: true });
  socket.on('error', (err) => fail(`socket error: ${err.message}`));
  socket.on('close', () => {
    if (!finished) fail('connection closed by the broker');
  });
  socket.on('connect', () => {
    greet(socket, config, config.heartbeatInterval > 0 ? { heartbeat_interval: config.heartbeatInterval } : {});
    onReady();
  });
}

function errorText(data) {
  return data.toString('latin1');
}

function isHeartbeat(data) {
  return data.length === HEARTBEAT.length && data.toString('latin1') === HEARTBEAT;
}

/** Error frames: only E_FIN_FAILED / E_REQ_FAILED / E_TOUCH_FAILED are non-fatal. */
function onErrorFrame(data) {
  const text = errorText(data);
  if (/^E_(FIN|REQ|TOUCH)_FAILED/.test(text)) {
    stats.softErrors++;
    if (stats.softErrors <= 3) send({ type: 'log', message: `non-fatal error frame: ${text}` });
    return;
  }
  fail(`error frame: ${text}`);
}

function startProgress() {
  progressTimer = setInterval(() => send({ type: 'progress', ...snapshot() }), PROGRESS_INTERVAL_MS);
}

// ---------------------------------------------------------------------------------------------
// Publisher

function runPublisher() {
  // `bodyKind` 'json' (transport scenario): different, compressible bodies; default all 'x'.
  const bodies = makeBodies(config.batchSize, config.msgSize, config.bodyKind ?? 'x');
  const fullBatch = encodeCommand('MPUB', [config.topic], encodeMpubBody(bodies));
  /** Sizes of the batches sent and not yet acknowledged, oldest first. */
  const outstanding = [];
  let sent = 0;
  let identified = false;
  let running = false;
  let stopping = false;
  const decoder = new FrameDecoder();

  const batchFor = () => {
    if (config.maxMessages > 0) {
      const left = config.maxMessages - sent;
      if (left <= 0) return null;
      if (left < config.batchSize) {
        const cmd = encodeCommand('MPUB', [config.topic], encodeMpubBody(bodies.slice(0, left)));
        return { cmd, n: left };
      }
    }
    return { cmd: fullBatch, n: config.batchSize };
  };

  const pump = () => {
    while (running && !stopping && outstanding.length < config.pipeline) {
      const batch = batchFor();
      if (batch === null) {
        stopping = true;
        break;
      }
      outstanding.push(batch.n);
      sent += batch.n;
      socket.write(batch.cmd);
    }
    if (stopping && outstanding.length === 0) {
      stats.stopAt = stats.stopAt || nowMs();
      finish();
    }
  };

  const onFrame = (type, data) => {
    if (type === FrameType.Error) {
      onErrorFrame(data);
      return;
    }
    if (type !== FrameType.Response) {
      fail(`unexpected frame type ${type} on a publisher connection`);
      return;
    }
    if (isHeartbeat(data)) {
      stats.heartbeats++;
      socket.write(NOP);
      return;
    }
    if (!identified) {
      identified = true;
      checkIdentifyResponse(data);
      send({ type: 'ready' });
      return;
    }
    const text = data.toString('latin1');
    if (text !== 'OK') {
      fail(`unexpected response to MPUB: ${text.slice(0, 200)}`);
      return;
    }
    const n = outstanding.shift();
    if (n === undefined) {
      fail('OK received with no MPUB outstanding');
      return;
    }
    const t = nowMs();
    if (stats.firstAt === 0) stats.firstAt = t;
    stats.lastAt = t;
    stats.msgs += n;
    stats.bytes += n * config.msgSize;
    stats.batches++;
    pump();
  };

  connect(() => {
    socket.on('data', (chunk) => {
      try {
        decoder.push(chunk, onFrame);
      } catch (err) {
        fail(`bad frame stream: ${err.message}`);
      }
    });
  });

  return {
    start() {
      running = true;
      pump();
    },
    stop() {
      if (stopping) return;
      stopping = true;
      stats.stopAt = nowMs();
      pump();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Consumer

function runConsumer() {
  const decoder = new FrameDecoder();
  let phase = 'identify'; // identify → sub → subscribed → closing
  let checkedBody = false;
  /** Frame data of the messages in the chunk being decoded, FINed in one write after it. */
  let toFin = [];
  let nopPending = false;
  let counting = true;
  let closeWait = false;

  const onFrame = (type, data) => {
    if (type === FrameType.Message) {
      if (data.length < MESSAGE_HEADER_BYTES) {
        fail(`message frame of ${data.length} bytes`);
        return;
      }
      if (!checkedBody) {
        checkedBody = true;
        // The first message is checked in full (nsq-spec §2.4); the rest only for attempts.
        const msg = decodeMessage(data);
        const skewMs = Math.abs(Number(msg.timestamp / 1_000_000n) - Date.now());
        const bodyOk = msg.body.length === config.msgSize && msg.body.every((b) => b === 0x78);
        if (!bodyOk || !/^[0-9a-f]{16}$/.test(msg.id) || msg.attempts < 1 || skewMs > 3_600_000) {
          send({
            type: 'log',
            message:
              `unexpected message: id=${JSON.stringify(msg.id)} attempts=${msg.attempts} ` +
              `timestamp=${msg.timestamp} (${skewMs} ms from now) body ${msg.body.length} bytes${bodyOk ? '' : ' (wrong)'}`,
          });
        }
      }
      toFin.push(data);
      if (!counting) return;
      if (data.readUInt16BE(8) > 1) {
        stats.redeliveries++;
        return;
      }
      stats.msgs++;
      stats.bytes += data.length - MESSAGE_HEADER_BYTES;
      return;
    }
    if (type === FrameType.Error) {
      onErrorFrame(data);
      return;
    }
    if (isHeartbeat(data)) {
      stats.heartbeats++;
      nopPending = true;
      return;
    }
    const text = data.toString('latin1');
    if (phase === 'identify') {
      checkIdentifyResponse(data);
      phase = 'sub';
      socket.write(encodeCommand('SUB', [config.topic, config.channel]));
    } else if (phase === 'sub') {
      if (text !== 'OK') {
        fail(`unexpected response to SUB: ${text.slice(0, 200)}`);
        return;
      }
      phase = 'subscribed';
      send({ type: 'ready' });
    } else if (phase === 'closing' && text === 'CLOSE_WAIT') {
      // Messages sent before CLOSE_WAIT arrived before it; FIN them (flush), then finish.
      closeWait = true;
      stats.closeWait = true;
    } else {
      fail(`unexpected response frame: ${text.slice(0, 200)}`);
    }
  };

  const flush = () => {
    const n = toFin.length;
    if (n === 0 && !nopPending) return;
    const out = Buffer.allocUnsafe(n * FIN_LINE_BYTES + (nopPending ? NOP.length : 0));
    let at = 0;
    for (let i = 0; i < n; i++) {
      FIN_PREFIX.copy(out, at);
      toFin[i].copy(out, at + 4, ID_OFFSET, ID_OFFSET + 16);
      out[at + 20] = 0x0a;
      at += FIN_LINE_BYTES;
    }
    if (nopPending) NOP.copy(out, at);
    toFin = [];
    nopPending = false;
    socket.write(out);
  };

  connect(() => {
    socket.on('data', (chunk) => {
      const before = stats.msgs;
      try {
        decoder.push(chunk, onFrame);
      } catch (err) {
        fail(`bad frame stream: ${err.message}`);
        return;
      }
      if (finished) return;
      if (stats.msgs !== before) {
        const t = nowMs();
        if (stats.firstAt === 0) stats.firstAt = t;
        stats.lastAt = t;
      }
      flush();
      if (closeWait) finish();
    });
  });

  return {
    start() {
      socket.write(encodeCommand('RDY', [String(config.rdy)]));
    },
    stop() {
      if (phase === 'closing') return;
      counting = false;
      stats.stopAt = nowMs();
      phase = 'closing';
      // CLS: the broker stops delivering and answers CLOSE_WAIT; FIN still goes out for whatever
      // was already on its way.
      socket.write(encodeCommand('CLS'));
    },
  };
}

let warnedIdentify = false;
function checkIdentifyResponse(data) {
  const text = data.toString('utf8');
  if (text === 'OK') {
    if (!warnedIdentify) send({ type: 'log', message: 'IDENTIFY answered OK, not JSON (feature_negotiation ignored)' });
    warnedIdentify = true;
    return;
  }
  let info;
  try {
    info = JSON.parse(text);
  } catch {
    fail(`IDENTIFY response is not JSON: ${text.slice(0, 200)}`);
    return;
  }
  send({ type: 'identify', info });
  if (config.role === 'sub' && typeof info.max_rdy_count === 'number' && info.max_rdy_count < config.rdy) {
    send({ type: 'log', message: `max_rdy_count ${info.max_rdy_count} < RDY ${config.rdy}: using it` });
    config.rdy = info.max_rdy_count;
  }
}

// ---------------------------------------------------------------------------------------------

let role = null;

process.on('message', (msg) => {
  if (msg.type === 'config') {
    config = msg;
    // Whatever happens, this process bounds itself in time.
    hardTimer = setTimeout(
      () => fail(`worker hard deadline (${config.hardDeadlineMs} ms) reached`),
      msg.hardDeadlineMs,
    );
    hardTimer.unref();
    role = config.role === 'pub' ? runPublisher() : runConsumer();
  } else if (msg.type === 'start') {
    stats.startAt = nowMs();
    cpuAtStart = process.cpuUsage();
    startProgress();
    role.start();
  } else if (msg.type === 'stop') {
    role?.stop();
    setTimeout(() => {
      // A consumer whose broker never answers CLS, or a publisher missing OKs: report anyway.
      if (config.role === 'sub') {
        send({ type: 'log', message: `no CLOSE_WAIT ${STOP_GRACE_MS} ms after CLS` });
        finish();
      } else fail(`${stats.batches} batches acknowledged; still waiting for OKs ${STOP_GRACE_MS} ms after stop`);
    }, STOP_GRACE_MS).unref();
  }
});

process.on('disconnect', () => {
  if (!finished) {
    finished = true;
    if (socket !== null) socket.destroy();
    process.exit(1);
  }
});
