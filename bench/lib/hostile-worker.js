/**
 * The hostile-memory scenario's generator, run as a child process forked by bench/run.js (IPC
 * protocol and harness: worker-common.js). Role `hostile`: `count` connection slots, at most
 * `concurrency` of them connecting at once; each slot runs `rounds` attacks one after another
 * (a new connection each), the attack of slot i in round r being ATTACKS[(i + r) % length]:
 *
 *   bad-magic       32 KiB of random bytes instead of the magic
 *   invalid         magic, `HELLO world\n`, 64 KiB of random bytes
 *   random          magic, 64 KiB of random bytes (the first line is some invalid command)
 *   pub-stall       magic, `PUB <topic>\n`, a size of `maxMsgSize`, 4–36 KiB of the body, then
 *                   `stallMs` of silence
 *   mpub-stall      magic, `MPUB <topic>\n`, a size of `maxBodySize`, a count of 100, a first
 *                   message announcing `maxMsgSize` bytes, 4–36 KiB of it, then the stall
 *   line-stall      magic and 16,000 bytes of a line that never ends (under nsqd's 16 KiB), stall
 *   identify-stall  magic, `IDENTIFY\n`, a 64 KiB size, 8 KiB of a JSON object, stall
 *   split-frames    magic and 20 PUBs written in pieces of 1–7 bytes, the last one cut short, stall
 *
 * After its stall an attack ends the connection, half-closing (`end`) on even rounds and
 * resetting it (`destroy`) on odd ones; attacks the broker closes (bad input) end there, or
 * after the stall if it does not. The slot's next round starts once the connection is closed.
 * msgs = attacks done, bytes = bytes written; `maxHeldBytes` is the most this process had written
 * at one time on connections still open (what a broker that keeps every byte it was sent holds).
 * The worker finishes once every slot is done.
 */

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { MAGIC_V2 } from '@nsq-ts/protocol';
import { runWorker } from './worker-common.js';

/**
 * @import { Socket } from 'node:net'
 * @import { WorkerConfig } from './types.js'
 */

/**
 * @typedef {WorkerConfig & { count: number, concurrency: number, rounds: number, stallMs: number,
 *   maxMsgSize: number, maxBodySize: number }} HostileConfig
 */

/** Random bytes every attack slices from (none of them needs to differ between connections). */
const POOL = randomBytes(1024 * 1024);
const KiB = 1024;

/** @param {number} at @param {number} n */
const random = (at, n) => POOL.subarray(at % (POOL.length - n), (at % (POOL.length - n)) + n);

/** @param {number} n */
function int32(n) {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

/**
 * What an attack writes: whole buffers, or `pieces` written one per tick (split-frames), and
 * whether it then waits `stallMs` (true) or for the broker to close (false: bad input).
 * @typedef {{ chunks: Buffer[], stall: boolean, pieces?: boolean }} Attack
 */

/** @type {((c: HostileConfig, seed: number) => Attack)[]} */
const ATTACKS = [
  (_c, seed) => ({ chunks: [Buffer.concat([Buffer.from('XV2 '), random(seed, 32 * KiB)])], stall: false }),
  (_c, seed) => ({ chunks: [MAGIC_V2, Buffer.from('HELLO world\n'), random(seed, 64 * KiB)], stall: false }),
  (_c, seed) => ({ chunks: [MAGIC_V2, Buffer.from('X'), random(seed, 64 * KiB)], stall: false }),
  (c, seed) => ({
    chunks: [MAGIC_V2, Buffer.from(`PUB ${c.topic}\n`), int32(c.maxMsgSize), random(seed, (4 + (seed % 33)) * KiB)],
    stall: true,
  }),
  (c, seed) => ({
    chunks: [
      MAGIC_V2,
      Buffer.from(`MPUB ${c.topic}\n`),
      int32(c.maxBodySize),
      int32(100),
      int32(c.maxMsgSize),
      random(seed, (4 + (seed % 33)) * KiB),
    ],
    stall: true,
  }),
  () => ({ chunks: [MAGIC_V2, Buffer.alloc(16_000, 'A')], stall: true }),
  (_c, seed) => ({
    chunks: [
      MAGIC_V2,
      Buffer.from('IDENTIFY\n'),
      int32(64 * KiB),
      Buffer.from('{"client_id":"'),
      random(seed, 8 * KiB),
    ],
    stall: true,
  }),
  (c, seed) => {
    const pub = Buffer.concat([Buffer.from(`PUB ${c.topic}\n`), int32(200), random(seed, 200)]);
    const all = Buffer.concat([MAGIC_V2, ...Array.from({ length: 20 }, () => pub)]);
    const cut = all.subarray(0, all.length - 100);
    /** @type {Buffer[]} */
    const chunks = [];
    for (let at = 0, i = 0; at < cut.length; i++) {
      const n = 1 + ((seed + i) % 7);
      chunks.push(cut.subarray(at, at + n));
      at += n;
    }
    return { chunks, stall: true, pieces: true };
  },
];

runWorker((/** @type {HostileConfig} */ config, w) => {
  const stats = w.stats;
  /** @type {Set<Socket>} */
  const open = new Set();
  let slotsDone = 0;
  let connecting = 0;
  let stopping = false;
  let held = 0;
  let maxHeld = 0;
  /** Slots waiting for a connect slot: [slot, round]. */
  /** @type {[number, number][]} */
  const queue = [];

  const result = () => ({ attacks: stats.msgs, bytesSent: stats.bytes, maxHeldBytes: maxHeld });
  const slotDone = () => {
    if (++slotsDone === config.count) w.finish(result());
  };

  /** @param {number} slot @param {number} round */
  const next = (slot, round) => {
    if (stopping) return;
    if (round >= config.rounds) {
      slotDone();
      return;
    }
    queue.push([slot, round]);
    pump();
  };

  const pump = () => {
    while (connecting < config.concurrency && queue.length > 0 && !stopping) {
      const [slot, round] = /** @type {[number, number]} */ (queue.shift());
      attack(slot, round);
    }
  };

  /** @param {number} slot @param {number} round */
  const attack = (slot, round) => {
    const kind = (slot + round) % ATTACKS.length;
    const seed = slot * 7919 + round * 104_729;
    const { chunks, stall, pieces = false } = ATTACKS[kind](config, seed);
    const socket = net.connect({ host: config.host, port: config.port, noDelay: true });
    open.add(socket);
    connecting++;
    let connected = false;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    let finished = false;
    let written = 0;
    const done = () => {
      if (finished) return;
      finished = true;
      held -= written;
      clearTimeout(timer);
      if (!connected) {
        connecting--;
        pump();
      }
      open.delete(socket);
      stats.msgs++;
      next(slot, round + 1);
    };
    socket.on('error', () => {});
    socket.on('close', done);
    // Replies (error frames) are read and dropped, so the broker's writes never back up.
    socket.on('data', () => {});
    socket.on('connect', () => {
      connected = true;
      connecting--;
      pump();
      let i = 0;
      const write = () => {
        if (finished) return;
        while (i < chunks.length) {
          const chunk = chunks[i++];
          stats.bytes += chunk.length;
          written += chunk.length;
          held += chunk.length;
          if (held > maxHeld) maxHeld = held;
          socket.write(chunk);
          if (pieces) {
            setImmediate(write);
            return;
          }
        }
        // After bad input the broker closes; the stall bounds the wait if it does not.
        timer = setTimeout(
          () => {
            if (round % 2 === 1) {
              socket.destroy();
              return;
            }
            socket.end();
            // A broker that keeps a half-closed connection open is not waited for twice.
            timer = setTimeout(() => socket.destroy(), config.stallMs);
          },
          stall ? config.stallMs : config.stallMs * 2,
        );
      };
      write();
    });
  };

  // Nothing to prepare: connections are made when the phase starts.
  w.ready();
  return {
    start() {
      for (let slot = 0; slot < config.count; slot++) next(slot, 0);
    },
    stop() {
      stopping = true;
      for (const s of open) s.destroy();
      w.finish({ ...result(), stopped: true });
    },
  };
});
