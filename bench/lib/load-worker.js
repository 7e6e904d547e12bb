/**
 * One load-generator connection, run as a child process forked by bench/run.js (one process per
 * connection, so the generator is not the bottleneck and its CPU use can be reported on its own).
 * IPC protocol and harness: worker-common.js.
 *
 * Roles:
 *   pub  MPUB batches of `batchSize` × `msgSize` bytes, `pipeline` batches outstanding, OK
 *        responses matched FIFO. Stops after `stop` (or after `maxMessages`), once every
 *        outstanding batch is acknowledged. `refusable`: E_MPUB_FAILED answers a batch (counted
 *        in softErrors, not in msgs) instead of failing the worker.
 *   sub  IDENTIFY (feature_negotiation), SUB topic channel, RDY `rdy` on start, FIN every message
 *        (`requeue`: REQ it; all answers for one chunk of received data in one write), NOP for
 *        every heartbeat.
 */
import { decodeMessage, encodeCommand, encodeMpubBody, MESSAGE_HEADER_BYTES } from '@nsq-ts/protocol';
import { makeBodies } from './bodies.js';
import { nowMs } from './util.js';
import { connect, errorFrame, publisherFrames, runWorker, STOP_GRACE_MS, subscriber } from './worker-common.js';

/**
 * @import { Socket } from 'node:net'
 * @import { WorkerConfig } from './types.js'
 */

/** Soft error frames logged (the rest only counted). */
const LOG_SOFT_ERRORS = 3;

runWorker((/** @type {WorkerConfig & { bodyKind?: string }} */ config, w) => {
  const stats = w.stats;
  /** sub: the broker answered CLS with CLOSE_WAIT. */
  stats.closeWait = false;
  const identify = config.heartbeatInterval > 0 ? { heartbeat_interval: config.heartbeatInterval } : {};
  /** @type {Socket | null} */
  let socket = null;
  /** @param {Buffer} buf */
  const write = (buf) => socket?.write(buf);
  // end(), not destroy(): the last FINs / NOP may still be queued for writing.
  const close = () => socket?.end();

  let warnedIdentify = false;
  /** @param {Buffer} data */
  const checkIdentifyResponse = (data) => {
    const text = data.toString('utf8');
    if (text === 'OK') {
      if (!warnedIdentify) w.log('IDENTIFY answered OK, not JSON (feature_negotiation ignored)');
      warnedIdentify = true;
      return;
    }
    let info;
    try {
      info = JSON.parse(text);
    } catch {
      w.fail(`IDENTIFY response is not JSON: ${text.slice(0, 200)}`);
      return;
    }
    w.send({ type: 'identify', info });
    if (config.role === 'sub' && typeof info.max_rdy_count === 'number' && info.max_rdy_count < config.rdy) {
      w.log(`max_rdy_count ${info.max_rdy_count} < RDY ${config.rdy}: using it`);
      config.rdy = info.max_rdy_count;
    }
  };

  // ---- pub ----------------------------------------------------------------------------------
  if (config.role === 'pub') {
    // `bodyKind` 'json' (transport scenario): different, compressible bodies; default all 'x'.
    const bodies = makeBodies(config.batchSize, config.msgSize, config.bodyKind ?? 'x');
    const fullBatch = encodeCommand('MPUB', [config.topic], encodeMpubBody(bodies));
    /** @type {number[]} sizes of the batches sent and not yet acknowledged, oldest first */
    const outstanding = [];
    let sent = 0;
    let running = false;
    let stopping = false;

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
        socket?.write(batch.cmd);
      }
      if (stopping && outstanding.length === 0) {
        stats.stopAt = stats.stopAt || nowMs();
        w.finish();
      }
    };

    const onOk = () => {
      const n = outstanding.shift();
      if (n === undefined) {
        w.fail('OK received with no MPUB outstanding');
        return;
      }
      w.count(n, n * config.msgSize);
      pump();
    };
    // A topic at its cap refused the batch (config.refusable): it is not sent again.
    const onRefused = () => {
      outstanding.shift();
      stats.softErrors++;
      pump();
    };
    socket = connect(config, w, {
      identify,
      onFrame: publisherFrames(w, write, {
        command: 'MPUB',
        onOk,
        onIdentify: checkIdentifyResponse,
        onError: (data) => {
          if (config.refusable && data.toString('latin1').startsWith('E_MPUB_FAILED')) onRefused();
          else errorFrame(w, data, LOG_SOFT_ERRORS);
        },
      }),
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
      stopTimeout() {
        w.fail(`${stats.batches} batches acknowledged; still waiting for OKs ${STOP_GRACE_MS} ms after stop`);
      },
      close,
    };
  }

  // ---- sub ----------------------------------------------------------------------------------
  let checkedBody = false;
  const sub = subscriber(w, config, write, {
    logSoftErrors: LOG_SOFT_ERRORS,
    onIdentify: checkIdentifyResponse,
    onCloseWait: () => {
      stats.closeWait = true;
    },
    onMessage: (data) => {
      if (data.length < MESSAGE_HEADER_BYTES) {
        w.fail(`message frame of ${data.length} bytes`);
        return false;
      }
      if (!checkedBody) {
        checkedBody = true;
        // The first message is checked in full (nsq-spec §2.4); the rest only for attempts.
        const msg = decodeMessage(data);
        const skewMs = Math.abs(Number(msg.timestamp / 1_000_000n) - Date.now());
        const bodyOk = msg.body.length === config.msgSize && msg.body.every((b) => b === 0x78);
        if (!bodyOk || !/^[0-9a-f]{16}$/.test(msg.id) || msg.attempts < 1 || skewMs > 3_600_000) {
          w.log(
            `unexpected message: id=${JSON.stringify(msg.id)} attempts=${msg.attempts} ` +
              `timestamp=${msg.timestamp} (${skewMs} ms from now) body ${msg.body.length} bytes${bodyOk ? '' : ' (wrong)'}`,
          );
        }
      }
      return true;
    },
  });
  let counted = 0;
  socket = connect(config, w, {
    identify,
    onFrame: sub.onFrame,
    afterChunk: () => {
      if (w.finished) return;
      if (stats.msgs !== counted) {
        counted = stats.msgs;
        const t = nowMs();
        if (stats.firstAt === 0) stats.firstAt = t;
        stats.lastAt = t;
      }
      sub.flush();
      if (sub.closeWait) w.finish();
    },
  });

  return {
    start: sub.start,
    stop: sub.stop,
    stopTimeout() {
      // A broker that never answers CLS: report what was received anyway.
      w.log(`no CLOSE_WAIT ${STOP_GRACE_MS} ms after CLS`);
      w.finish();
    },
    close,
  };
});
