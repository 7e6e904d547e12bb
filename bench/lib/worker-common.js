/**
 * The IPC harness shared by bench/lib/http-worker.js and bench/lib/client-worker.js: the same
 * protocol as load-worker.js (see its header), so `Generator` drives any of them.
 *
 *   runWorker((config, w) => ({ start(), stop(), control?(msg) }))
 *
 * `w.stats` is what the parent sees (msgs, bytes, startAt, firstAt, lastAt, stopAt, ...);
 * `w.count(n, bytes)` records n acknowledged / handled messages; `w.finish(extra)` reports the
 * result (plus `extra`, e.g. latencies) and exits; `w.fail(message)` reports an error and exits.
 */
import os from 'node:os';
import { encodeCommand, MAGIC_V2 } from '@nsq-ts/protocol';

const PROGRESS_INTERVAL_MS = 100;
/** After `stop`, how long a worker may take to report (outstanding replies, close). */
const STOP_GRACE_MS = 10_000;

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * What every raw-protocol generator sends first on a connection: the V2 magic and IDENTIFY
 * (client_id `<role>-<index>`, feature_negotiation) plus `extra` fields.
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

export function runWorker(createRole) {
  let config = null;
  let role = null;
  let finished = false;
  let progressTimer = null;
  let hardTimer = null;
  let cpuAtStart = null;
  const stats = {
    msgs: 0,
    bytes: 0,
    redeliveries: 0,
    batches: 0,
    heartbeats: 0,
    softErrors: 0,
    startAt: 0,
    firstAt: 0,
    lastAt: 0,
    stopAt: 0,
  };

  /** `done` runs once the message is handed to the IPC pipe (or at once without one). */
  const send = (msg, done) => {
    if (process.connected) process.send(msg, done);
    else done?.();
  };

  const snapshot = () => {
    const cpu = cpuAtStart === null ? null : process.cpuUsage(cpuAtStart);
    return { cpuMs: cpu === null ? 0 : (cpu.user + cpu.system) / 1000, ...stats };
  };

  const shutdown = (code) => {
    clearInterval(progressTimer);
    clearTimeout(hardTimer);
    if (process.connected) process.disconnect();
    setTimeout(() => process.exit(code), 50).unref();
  };

  const w = {
    stats,
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

  process.on('message', async (msg) => {
    try {
      if (msg.type === 'config') {
        config = msg;
        // Whatever happens, this process bounds itself in time.
        hardTimer = setTimeout(
          () => w.fail(`worker hard deadline (${config.hardDeadlineMs} ms) reached`),
          msg.hardDeadlineMs,
        );
        hardTimer.unref();
        role = await createRole(config, w);
      } else if (msg.type === 'start') {
        stats.startAt = nowMs();
        cpuAtStart = process.cpuUsage();
        progressTimer = setInterval(() => send({ type: 'progress', ...snapshot() }), PROGRESS_INTERVAL_MS);
        await role.start();
      } else if (msg.type === 'stop') {
        if (stats.stopAt === 0) stats.stopAt = nowMs();
        setTimeout(() => w.fail(`no result ${STOP_GRACE_MS} ms after stop`), STOP_GRACE_MS).unref();
        await role?.stop();
      } else if (role?.control) {
        // Anything else (e.g. the soak's pause / resume) is the role's own.
        await role.control(msg);
      }
    } catch (err) {
      w.fail(err?.stack ?? String(err));
    }
  });

  process.on('disconnect', () => {
    if (!finished) {
      finished = true;
      process.exit(1);
    }
  });
  process.on('uncaughtException', (err) => w.fail(`uncaught: ${err?.stack ?? err}`));
  process.on('unhandledRejection', (err) => w.fail(`unhandled rejection: ${err?.stack ?? err}`));
}
