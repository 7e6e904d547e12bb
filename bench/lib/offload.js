#!/usr/bin/env node
/**
 * What handing a connection's compression to a worker thread would save nsqd's event loop, per
 * flush (docs/scaling.md): the main thread's CPU per flush when it compresses inline (what nsqd
 * does: SnappyFrameEncoder, deflateSegment at level 6), against what it still spends when a
 * worker_threads Worker compresses instead — copying the flush into a transferable buffer,
 * postMessage, and taking the compressed result back as a message. A flush is a run of NSQ
 * message frames (4 B size, 4 B type, 8 B timestamp, 2 B attempts, 16 B ID, body) of the
 * transport scenario's JSON-like 200 B bodies, as nsqd writes them to a consumer. Thread CPU comes
 * from /proc/thread-self/stat (Linux), so the main thread's and the worker's are told apart.
 *
 *   node bench/lib/offload.js [--seconds S] [--sizes 4096,16384,65536] [--codecs snappy,deflate]
 *                             [--depth N]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { deflateSegment, SnappyFrameEncoder } from '@nsq-ts/protocol';
import { makeBodies } from './bodies.js';

const DEFLATE_LEVEL = 6;

function clockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * CPU time of the calling thread (ms).
 * @param {number} ticks clock ticks a second
 */
function threadCpuMs(ticks) {
  const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) / ticks) * 1000;
}

/**
 * @param {string} codec
 * @returns {(buf: Buffer) => Buffer}
 */
function compressor(codec) {
  if (codec === 'snappy') {
    const enc = new SnappyFrameEncoder();
    return (buf) => enc.encode([buf]);
  }
  if (codec === 'deflate') return (buf) => deflateSegment(buf, DEFLATE_LEVEL);
  throw new Error(`unknown codec ${codec}`);
}

/**
 * About `size` bytes of message frames, as nsqd writes them to a consumer.
 * @param {number} size
 */
function makeFlush(size) {
  const bodies = makeBodies(200, 200, 'json');
  const frames = [];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const body = bodies[i % bodies.length];
    const f = Buffer.alloc(4 + 4 + 8 + 2 + 16 + body.length);
    f.writeUInt32BE(f.length - 4, 0);
    f.writeUInt32BE(2, 4);
    f.writeBigInt64BE(BigInt(Date.now()) * 1_000_000n + BigInt(i), 8);
    f.writeUInt16BE(1, 16);
    f.write(i.toString(16).padStart(16, '0'), 18, 'latin1');
    body.copy(f, 34);
    frames.push(f);
    total += f.length;
  }
  return Buffer.concat(frames);
}

if (!isMainThread && parentPort !== null) {
  // The worker: compress what arrives, send it back (transferred: no second copy).
  const port = parentPort;
  const compress = compressor(workerData.codec);
  const ticks = workerData.ticks;
  port.on('message', (/** @type {'cpu' | ArrayBuffer} */ msg) => {
    if (msg === 'cpu') {
      port.postMessage({ cpuMs: threadCpuMs(ticks) });
      return;
    }
    const out = compress(Buffer.from(msg));
    const own = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength;
    const ab = /** @type {ArrayBuffer} */ (
      own ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength)
    );
    port.postMessage(ab, [ab]);
  });
} else {
  await main();
}

/**
 * Compress on this thread for `ms`: { flushes, mainCpuMs, wallMs, outBytes }.
 * @param {string} codec
 * @param {Buffer} flush
 * @param {number} ms
 * @param {number} ticks
 */
function inline(codec, flush, ms, ticks) {
  const compress = compressor(codec);
  const cpu0 = threadCpuMs(ticks);
  const t0 = performance.now();
  let flushes = 0;
  let outBytes = 0;
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 16; i++) outBytes += compress(flush).length;
    flushes += 16;
  }
  return { flushes, mainCpuMs: threadCpuMs(ticks) - cpu0, wallMs: performance.now() - t0, outBytes };
}

/**
 * Hand every flush to a worker for `ms`, `depth` in flight: as inline, plus the worker's CPU.
 * @param {string} codec
 * @param {Buffer} flush
 * @param {number} ms
 * @param {number} depth
 * @param {number} ticks
 */
async function offloaded(codec, flush, ms, depth, ticks) {
  const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { codec, ticks } });
  await new Promise((resolve) => worker.once('online', resolve));
  /** @returns {Promise<number>} */
  const askCpu = () =>
    new Promise((resolve) => {
      worker.once('message', (m) => resolve(m.cpuMs));
      worker.postMessage('cpu');
    });
  const workerCpu0 = await askCpu();
  const cpu0 = threadCpuMs(ticks);
  const t0 = performance.now();
  let flushes = 0;
  let outBytes = 0;
  let inFlight = 0;
  let stopping = false;
  const send = () => {
    // What nsqd would do with its output slab: copy it out, transfer the copy.
    const ab = new ArrayBuffer(flush.length);
    new Uint8Array(ab).set(flush);
    worker.postMessage(ab, [ab]);
    inFlight++;
  };
  await new Promise((resolve) => {
    worker.on('message', (/** @type {unknown} */ m) => {
      if (!(m instanceof ArrayBuffer)) return;
      inFlight--;
      flushes++;
      outBytes += m.byteLength;
      if (!stopping && performance.now() - t0 >= ms) stopping = true;
      if (!stopping) send();
      else if (inFlight === 0) resolve(undefined);
    });
    for (let i = 0; i < depth; i++) send();
  });
  const mainCpuMs = threadCpuMs(ticks) - cpu0;
  const wallMs = performance.now() - t0;
  worker.removeAllListeners('message');
  const workerCpuMs = (await askCpu()) - workerCpu0;
  await worker.terminate();
  return { flushes, mainCpuMs, wallMs, outBytes, workerCpuMs };
}

async function main() {
  const args = process.argv.slice(2);
  /**
   * @param {string} name
   * @param {string} dflt
   */
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const seconds = Number(opt('--seconds', '3'));
  const sizes = opt('--sizes', '4096,16384,65536').split(',').map(Number);
  const codecs = opt('--codecs', 'snappy,deflate').split(',');
  const depth = Number(opt('--depth', '4'));
  const ticks = clockTicks();
  /**
   * @param {number} ms
   * @param {number} n
   */
  const us = (ms, n) => (n > 0 ? ((ms * 1000) / n).toFixed(1) : '-');
  const rows = [];
  process.stdout.write(
    `offload: ${seconds} s per case, ${depth} flushes in flight to one worker; main-thread CPU per flush (µs)\n`,
  );
  for (const codec of codecs) {
    for (const size of sizes) {
      const flush = makeFlush(size);
      inline(codec, flush, 300, ticks); // warm-up
      const a = inline(codec, flush, seconds * 1000, ticks);
      const b = await offloaded(codec, flush, seconds * 1000, depth, ticks);
      const inlineMainUs = Number(us(a.mainCpuMs, a.flushes));
      const offloadMainUs = Number(us(b.mainCpuMs, b.flushes));
      const row = {
        codec,
        flushBytes: flush.length,
        ratio: Number((flush.length / (a.outBytes / a.flushes)).toFixed(2)),
        inlineMainUs,
        inlineFlushesPerSec: Math.round((a.flushes / a.wallMs) * 1000),
        offloadMainUs,
        offloadWorkerUs: Number(us(b.workerCpuMs, b.flushes)),
        offloadFlushesPerSec: Math.round((b.flushes / b.wallMs) * 1000),
        mainSavedPct: Number((100 * (1 - offloadMainUs / inlineMainUs)).toFixed(1)),
      };
      rows.push(row);
      process.stdout.write(
        `  ${codec.padEnd(7)} ${String(flush.length).padStart(6)} B (÷${row.ratio}): inline ${row.inlineMainUs} µs ` +
          `(${row.inlineFlushesPerSec}/s); offloaded: main ${row.offloadMainUs} µs + worker ${row.offloadWorkerUs} µs ` +
          `(${row.offloadFlushesPerSec}/s) → main thread saves ${row.mainSavedPct}%\n`,
      );
    }
  }
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify(rows)}\n`);
}
